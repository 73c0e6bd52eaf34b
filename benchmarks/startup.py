"""Service start-up against the size of the mesh: ``Mesh.open`` for one service.

Compiles generated specs (see gen_spec.py: 4 instances and up to 3 upstreams per service) of
1,000, 5,000 and 20,000 services into bundle homes, then times, in interleaved rounds (the
order of the sizes alternates between rounds; each call after a full collection, the collector
left on as in a real start), ``Mesh.open(home, service=...)``: reading and verifying what the
service needs of the bundle and building its upstream policies. Each round opens another
service, the same service index for every size. Also times ``load_service`` alone.

Prints the median and range of each size, wall-clock and CPU time (the machine may be shared:
CPU time is what the process itself spent), and the ratio of the largest size's median to the
smallest's (the target: at most 1.5, i.e. start-up flat in the size of the mesh).

    python benchmarks/startup.py [--sizes 1000 5000 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate, service_name
from meshspec_runtime import Mesh
from meshspec_runtime.loader import load_service

from meshspec.compile import compile_spec


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``action``, after a full collection."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def describe(times: list[float]) -> str:
    median = 1000 * statistics.median(times)
    low, high = 1000 * min(times), 1000 * max(times)
    return f"median {median:6.2f} ms  range {low:6.2f} - {high:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    sizes: list[int] = sorted(args.sizes)

    work = Path(tempfile.mkdtemp(prefix="meshspec-startup-bench-"))
    try:
        homes: dict[int, Path] = {}
        for size in sizes:
            spec = work / f"mesh-{size}.yaml"
            spec.write_text(generate(size, 4, 3))
            homes[size] = work / f"home-{size}"
            result = compile_spec(spec, homes[size])
            print(f"{size:>6} services: {result.files} files in the bundle")
        smallest = sizes[0]
        for size in sizes:  # warm up: imports, caches; every size opens the same way
            Mesh.open(homes[size], service=service_name(0))

        # label -> size -> (wall, cpu) samples
        samples: dict[str, dict[int, list[tuple[float, float]]]] = {
            label: {size: [] for size in sizes} for label in ("Mesh.open", "load_service")
        }
        for round_index in range(args.rounds):
            name = service_name((round_index * 97) % smallest)
            order = sizes if round_index % 2 == 0 else sizes[::-1]
            for size in order:
                home = homes[size]
                opened = timed(lambda: Mesh.open(home, service=name))  # noqa: B023
                samples["Mesh.open"][size].append(opened)
                loaded = timed(lambda: load_service(home, name))  # noqa: B023
                samples["load_service"][size].append(loaded)

        print(f"medians and ranges of {args.rounds} interleaved rounds:")
        for label, by_size in samples.items():
            for size in sizes:
                wall = [sample[0] for sample in by_size[size]]
                cpu = [sample[1] for sample in by_size[size]]
                print(
                    f"  {label:<12} {size:>6} services: wall {describe(wall)}   cpu {describe(cpu)}"
                )
        largest = sizes[-1]
        for label, by_size in samples.items():
            for kind, column in (("wall", 0), ("cpu", 1)):
                top, bottom = (
                    statistics.median(sample[column] for sample in by_size[size])
                    for size in (largest, smallest)
                )
                print(
                    f"  ratio {label} {kind} {largest} / {smallest} services: "
                    f"{top / bottom:.2f} (target <= 1.5)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
