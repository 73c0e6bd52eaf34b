"""How long `meshspec validate` takes on a large spec, against merely parsing it.

Generates a spec of 5,000 services (4 instances and 3 upstreams each; see gen_spec.py),
then prints, as medians of a few runs: the time to validate it (parse, models, semantic
checks: what `meshspec validate` does), the time PyYAML's C loader needs only to parse it,
the time of the fastest parser we know of, and the ratios. The goal: validating costs less
than PyYAML's C loader parsing.

    python benchmarks/validate.py [--services 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_spec import generate

from meshspec.spec.loader import check_spec_file


def _median_seconds(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _optional_parsers(text: str) -> dict[str, Callable[[], Any]]:
    """Other fast parsers, measured when installed (they are not dependencies)."""
    found: dict[str, Callable[[], Any]] = {}
    try:
        import ryaml  # type: ignore[import-not-found]

        found["ryaml"] = lambda: ryaml.loads(text)
    except ImportError:
        pass
    try:
        import ryml  # type: ignore[import-not-found]

        data = text.encode()
        # builds its own tree, not Python data: a lower bound, not a usable alternative
        found["rapidyaml, tree only"] = lambda: ryml.parse_in_arena(data)
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="validate vs parse on a large spec")
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    text = generate(services=args.services, instances=4, upstreams=3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(text, encoding="utf-8")
        spec = check_spec_file(path)  # warm up, and make sure it is valid
        print(
            f"spec: {len(text) / 1e6:.1f} MB, {len(spec.services)} services, "
            f"{spec.edge_count()} edges; medians of {args.runs} runs"
        )
        validate = _median_seconds(lambda: check_spec_file(path), args.runs)
        loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        pyyaml = _median_seconds(lambda: yaml.load(text, Loader=loader), args.runs)
        parsers = {"yaml-rs (used)": lambda: yaml_rs.loads(text, parse_datetime=False)}
        parsers.update(_optional_parsers(text))
        parse_times = {name: _median_seconds(run, args.runs) for name, run in parsers.items()}

    print(f"validate (meshspec validate):       {validate:8.3f} s")
    print(f"parse, PyYAML CSafeLoader:          {pyyaml:8.3f} s")
    for name, seconds in parse_times.items():
        print(f"parse, {name + ':':<28} {seconds:8.3f} s")
    to_python = {name: t for name, t in parse_times.items() if "tree only" not in name}
    fastest_name = min(to_python, key=to_python.__getitem__)
    fastest = to_python[fastest_name]
    print(f"validate / CSafeLoader parse:       {validate / pyyaml:8.2f}")
    print(f"validate / fastest parse to Python data ({fastest_name}): {validate / fastest:.2f}")
    print(f"CSafeLoader parse / {fastest_name} parse: {pyyaml / fastest:.2f}")


if __name__ == "__main__":
    main()
