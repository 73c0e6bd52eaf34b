"""Service start-up against the size of the mesh: ``Mesh.open`` for one service.

Compiles generated specs (see gen_spec.py: 4 instances and up to 3 upstreams per service) of
1,000, 5,000 and 20,000 services into bundle homes, then times, in interleaved rounds (the
order of the sizes alternates between rounds; each call after a full collection, the collector
left on as in a real start), ``Mesh.open(home, service=...)``: reading and verifying what the
service needs of the bundle and building its upstream policies. Each round opens another
service, the same service index for every size. Also times ``load_service`` alone.

Prints the median and range of each size and the ratio of the largest to the smallest
(the target: at most 1.5, i.e. start-up flat in the size of the mesh).

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


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def describe(times: list[float]) -> str:
    median = 1000 * statistics.median(times)
    low, high = 1000 * min(times), 1000 * max(times)
    return f"median {median:7.2f} ms   range {low:7.2f} - {high:7.2f} ms"


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

        opened: dict[int, list[float]] = {size: [] for size in sizes}
        loaded: dict[int, list[float]] = {size: [] for size in sizes}
        for round_index in range(args.rounds):
            name = service_name((round_index * 97) % smallest)
            order = sizes if round_index % 2 == 0 else sizes[::-1]
            for size in order:
                home = homes[size]
                opened[size].append(timed(lambda: Mesh.open(home, service=name)))  # noqa: B023
                loaded[size].append(timed(lambda: load_service(home, name)))  # noqa: B023

        print(f"medians and ranges of {args.rounds} interleaved rounds:")
        for size in sizes:
            print(f"  Mesh.open     {size:>6} services: {describe(opened[size])}")
        for size in sizes:
            print(f"  load_service  {size:>6} services: {describe(loaded[size])}")
        largest = sizes[-1]
        for label, times in (("Mesh.open", opened), ("load_service", loaded)):
            ratio = statistics.median(times[largest]) / statistics.median(times[smallest])
            print(f"  ratio {label} {largest} / {smallest} services: {ratio:.2f} (target <= 1.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
