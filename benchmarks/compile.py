"""Compile benchmark: a generated spec of 20,000 services, 4 instances and 3 upstreams each.

The whole compile (read, parse, validate, resolve, emit, publish every file of the bundle
atomically, fsync included) against merely parsing the same file, under the same conditions
(``fairbench``): in this process with the collector paused for every contender, and as whole
processes (``meshspec compile`` against a Python process that only parses the file), in
interleaved rounds whose order alternates. The parsers: PyYAML's C loader
(``yaml.CSafeLoader``) and yaml-rs, the fastest parse into Python data installed (the one
meshspec uses). Prints median and range of each, the ratios (targets: compile / C parse at
most 1.0, peak memory of the compile process at most 2x the parse process's), and with
``--stages`` the compile's stages.

    python benchmarks/compile.py [--services 20000] [--rounds 3] [--stages]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairbench import Samples, as_process, cli_process, describe, in_process, parse_process, ratio
from gen_spec import generate

from meshspec.compile import compile_spec
from meshspec.compile.manifest import spec_digest
from meshspec.compile.pipeline import build_bundle, write_bundle
from meshspec.compile.resolve import resolve_mesh
from meshspec.gcpause import collector_paused
from meshspec.spec import load_spec


def stages(spec_path: Path, work: Path) -> None:
    """Each stage once more, collector paused as in a compile (for whoever optimises next)."""
    with collector_paused():
        times: dict[str, float] = {}

        def stage(label: str, action: Callable[[], Any]) -> Any:
            started = time.perf_counter()
            result = action()
            times[label] = time.perf_counter() - started
            return result

        spec = stage("load_spec (read+parse+validate)", lambda: load_spec(spec_path))
        mesh = stage("resolve (spec -> IR)", lambda: resolve_mesh(spec))
        digest = spec_digest(spec_path.read_bytes(), None, ())
        bundle = stage("emit (files + version + manifest)", lambda: build_bundle(mesh, digest))
        stage("write (atomic, every file)", lambda: write_bundle(bundle, work / "staged"))
    size = sum(len(content) for content in bundle.files.values())
    print(f"stages (one run): bundle of {len(bundle.files)} files, {size / 1e6:.1f} MB")
    for label, seconds in times.items():
        print(f"  {label:<36} {seconds:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--upstreams", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meshspec-compile-bench-"))
    try:
        spec_path = work / "big.yaml"
        spec_path.write_text(generate(args.services, args.instances, args.upstreams))
        out = work / "out"
        print(
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {platform.python_version()}; "
            f"spec: {args.services} services, {spec_path.stat().st_size / 1e6:.1f} MB of YAML; "
            f"{args.rounds} interleaved rounds"
        )

        bundle_files: list[int] = []

        def compile_here() -> object:
            result = compile_spec(spec_path, out)
            bundle_files.append(result.files)
            return result

        def pyyaml_here() -> object:
            return yaml.load(spec_path.read_bytes(), Loader=yaml.CSafeLoader)

        def yaml_rs_here() -> object:
            return yaml_rs.loads(spec_path.read_text(), parse_datetime=False)

        cli = cli_process("compile", str(spec_path), "-o", str(out))
        here: dict[str, Callable[[], object]] = {
            "compile": compile_here,
            "PyYAML C parse": pyyaml_here,
            "yaml-rs parse": yaml_rs_here,
        }
        processes = {
            "compile": cli,
            "PyYAML C parse": parse_process("pyyaml", str(spec_path)),
            "yaml-rs parse": parse_process("yaml-rs", str(spec_path)),
        }
        measured_here = {label: Samples() for label in here}
        measured_process = {label: Samples() for label in processes}
        for round_index in range(args.rounds):
            order = list(here) if round_index % 2 == 0 else list(here)[::-1]
            for label in order:
                shutil.rmtree(out, ignore_errors=True)  # each compile publishes a new home
                wall, cpu = in_process(here[label])
                measured_here[label].wall.append(wall)
                measured_here[label].cpu.append(cpu)
                shutil.rmtree(out, ignore_errors=True)
                wall, cpu, peak = as_process(processes[label])
                measured_process[label].wall.append(wall)
                measured_process[label].cpu.append(cpu)
                measured_process[label].peak_mb.append(peak)
        print(f"bundle: {bundle_files[-1]} files")
        print("in process, collector paused for all:")
        for label, samples in measured_here.items():
            print(f"  {label:<16} wall {describe(samples.wall)}   cpu {describe(samples.cpu)}")
        print("whole processes:")
        for label, samples in measured_process.items():
            print(
                f"  {label:<16} wall {describe(samples.wall)}   cpu {describe(samples.cpu)}   "
                f"peak RSS {describe(samples.peak_mb, 'MB')}"
            )
        print("ratios (compile / parse; target: C parse <= 1.0, memory <= 2.0):")
        for parse in ("PyYAML C parse", "yaml-rs parse"):
            for where, measured in (("in process", measured_here), ("process", measured_process)):
                top, bottom = measured["compile"], measured[parse]
                print(f"  {where:<10} / {parse:<15} wall {ratio(top.wall, bottom.wall)}")
                print(f"  {where:<10} / {parse:<15} cpu  {ratio(top.cpu, bottom.cpu)}")
            top, bottom = measured_process["compile"], measured_process[parse]
            print(f"  peak RSS   / {parse:<15}      {ratio(top.peak_mb, bottom.peak_mb)}")
        if args.stages:
            stages(spec_path, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
