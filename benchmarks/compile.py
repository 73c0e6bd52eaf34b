"""Compile benchmark: a generated spec of 5,000 services, 4 instances and 3 upstreams each.

Prints, as medians over ``--runs`` runs: the whole compile (read, parse, validate, resolve,
emit, write every file of the bundle atomically), its stages, the time PyYAML's C loader
(``yaml.CSafeLoader``) needs merely to parse the same file, and the ratio of the two. The
target is a ratio below 1: compiling the mesh costs less than parsing its YAML with libyaml.

    python benchmarks/compile.py [--services 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate

from meshspec.compile import compile_spec
from meshspec.compile.api import collector_paused
from meshspec.compile.manifest import spec_digest
from meshspec.compile.pipeline import build_bundle, write_bundle
from meshspec.compile.resolve import resolve_mesh
from meshspec.spec import load_spec


def median_seconds(
    action: Callable[[], object], runs: int, untimed: Callable[[], object] = lambda: None
) -> float:
    times = []
    for _ in range(runs):
        untimed()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--upstreams", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meshspec-compile-bench-"))
    try:
        spec_path = work / "big.yaml"
        spec_path.write_text(generate(args.services, args.instances, args.upstreams))
        text = spec_path.read_text()

        def whole_compile() -> object:
            return compile_spec(spec_path, work / "out")

        def remove_output() -> None:  # each compile writes a fresh folder
            shutil.rmtree(work / "out", ignore_errors=True)

        def parse_only() -> object:
            return yaml.load(text, Loader=yaml.CSafeLoader)

        compile_time = median_seconds(whole_compile, args.runs, untimed=remove_output)
        parse_time = median_seconds(parse_only, args.runs)

        # Stages, for whoever optimises next (with the collector paused, as in a compile).
        with collector_paused():
            spec = load_spec(spec_path)
            load_time = median_seconds(lambda: load_spec(spec_path), args.runs)
            resolve_time = median_seconds(lambda: resolve_mesh(spec), args.runs)
            mesh = resolve_mesh(spec)
            digest = spec_digest(spec_path.read_bytes(), None, ())
            emit_time = median_seconds(lambda: build_bundle(mesh, digest), args.runs)
            bundle = build_bundle(mesh, digest)
            write_time = median_seconds(lambda: write_bundle(bundle, work / "written"), args.runs)

        edges = sum(len(service.edges) for service in mesh.services)
        size = sum(len(content) for content in bundle.files.values())
        print(
            f"spec: {args.services} services, {args.services * args.instances} instances, "
            f"{edges} edges, {len(text) / 1e6:.1f} MB of YAML"
        )
        print(f"bundle: {len(bundle.files)} files, {size / 1e6:.1f} MB")
        print(f"medians over {args.runs} runs:")
        print(f"  whole compile (parse+validate+resolve+emit+write): {compile_time:8.3f} s")
        print(f"    load_spec (parse+validate):                      {load_time:8.3f} s")
        print(f"    resolve (spec -> IR):                            {resolve_time:8.3f} s")
        print(f"    emit (all files + version + manifest):           {emit_time:8.3f} s")
        print(f"    write (atomic, every file):                      {write_time:8.3f} s")
        print(f"  yaml.CSafeLoader parse only:                       {parse_time:8.3f} s")
        print(
            f"  ratio whole compile / C parse:                     {compile_time / parse_time:8.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
