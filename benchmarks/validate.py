"""How long `meshspec validate` takes on a large spec, against merely parsing it.

Generates a spec of 5,000 services (4 instances and 3 upstreams each; see gen_spec.py) and
measures, under the same conditions for every contender (``fairbench``: in this process with
the collector paused for all, and as whole processes, interleaved rounds whose order
alternates): validating it (parse, models, semantic checks: what `meshspec validate` does),
PyYAML's C loader (``yaml.CSafeLoader``) only parsing it, and yaml-rs (the fastest parse into
Python data installed, the one meshspec uses) only parsing it. Prints median and range of each
and the ratios. The goal: validating costs less than PyYAML's C loader parsing.

    python benchmarks/validate.py [--services 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
import yaml_rs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fairbench import Samples, as_process, cli_process, describe, in_process, parse_process, ratio
from gen_spec import generate

from meshspec.spec.loader import check_spec_file


def main() -> None:
    parser = argparse.ArgumentParser(description="validate vs parse on a large spec")
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    text = generate(services=args.services, instances=4, upstreams=3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(text, encoding="utf-8")
        spec = check_spec_file(path)  # warm up, and make sure it is valid
        print(
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {platform.python_version()}; "
            f"spec: {len(text) / 1e6:.1f} MB, {len(spec.services)} services, "
            f"{spec.edge_count()} edges; {args.rounds} interleaved rounds"
        )
        here: dict[str, Callable[[], object]] = {
            "validate": lambda: check_spec_file(path),
            "PyYAML C parse": lambda: yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader),
            "yaml-rs parse": lambda: yaml_rs.loads(path.read_text(), parse_datetime=False),
        }
        processes = {
            "validate": cli_process("validate", str(path)),
            "PyYAML C parse": parse_process("pyyaml", str(path)),
            "yaml-rs parse": parse_process("yaml-rs", str(path)),
        }
        measured_here = {label: Samples() for label in here}
        measured_process = {label: Samples() for label in processes}
        for round_index in range(args.rounds):
            order = list(here) if round_index % 2 == 0 else list(here)[::-1]
            for label in order:
                wall, cpu = in_process(here[label])
                measured_here[label].wall.append(wall)
                measured_here[label].cpu.append(cpu)
                wall, cpu, peak = as_process(processes[label])
                measured_process[label].wall.append(wall)
                measured_process[label].cpu.append(cpu)
                measured_process[label].peak_mb.append(peak)

    print("in process, collector paused for all:")
    for label, samples in measured_here.items():
        print(f"  {label:<16} wall {describe(samples.wall)}   cpu {describe(samples.cpu)}")
    print("whole processes:")
    for label, samples in measured_process.items():
        print(
            f"  {label:<16} wall {describe(samples.wall)}   cpu {describe(samples.cpu)}   "
            f"peak RSS {describe(samples.peak_mb, 'MB')}"
        )
    print("ratios (validate / parse; goal: C parse < 1.0):")
    for parse in ("PyYAML C parse", "yaml-rs parse"):
        for where, measured in (("in process", measured_here), ("process", measured_process)):
            top, bottom = measured["validate"], measured[parse]
            print(f"  {where:<10} / {parse:<15} wall {ratio(top.wall, bottom.wall)}")
            print(f"  {where:<10} / {parse:<15} cpu  {ratio(top.cpu, bottom.cpu)}")


if __name__ == "__main__":
    main()
