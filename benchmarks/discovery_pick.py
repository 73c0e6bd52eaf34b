"""Discovery benchmark: a call's pick with a discovery source attached vs the bundle's list.

Two meshes open the same bundle: one static, one with a discovery source whose thread runs
blocking reads the way a Consul watch does (each read waits for a change that never comes).
Each round times ``--calls`` calls ``mesh.call("payments", fn)`` (``fn`` returns at once, so
the time is the policies' pick and bookkeeping) on each mesh, the two interleaved, the
garbage collector disabled for both alike. Prints per-call medians, ranges and the ratio;
the target is a ratio within 5% of 1: a pick never touches discovery.

    python benchmarks/discovery_pick.py [--calls 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from discovery_kit import Instance, publish, shop_spec
from meshspec_runtime import Endpoint, Mesh
from meshspec_runtime.discovery import DiscoverySettings, Found, Query
from meshspec_runtime.discovery.cache import Answer


class BlockingSource:
    """Answers like a Consul agent with nothing changing: a read with an index waits."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self._endpoints = endpoints
        self._closed = threading.Event()

    def query(self, service: str, query: Query) -> Answer:
        if query.index is not None:
            self._closed.wait(query.wait)
        return Found(self._endpoints, index=1)

    def close(self) -> None:
        self._closed.set()


@dataclass(frozen=True)
class BlockingDiscovery:
    endpoints: tuple[Endpoint, ...]
    settings: DiscoverySettings = field(default_factory=lambda: DiscoverySettings(wait=30.0))

    def open(self) -> BlockingSource:
        return BlockingSource(self.endpoints)

    def describe(self) -> str:
        return "a blocking source with nothing changing"


def answer(endpoint: Endpoint, timeout: float) -> str:
    return endpoint.id


def per_call(mesh: Mesh, calls: int) -> float:
    upstream = mesh.upstream("payments")
    call = upstream.call
    start = time.perf_counter()
    for _ in range(calls):
        call(answer)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshspec-discovery-bench-") as work:
        home = Path(work) / "home"
        instances = [Instance(f"payments-{i}", 9000 + i) for i in range(4)]
        publish(shop_spec(instances), home, Path(work))
        static = Mesh.open(home, service="checkout")
        live_endpoints = tuple(
            Endpoint(id=f"payments-{i}", address="127.0.0.1", port=9100 + i) for i in range(4)
        )
        live = Mesh.open(home, service="checkout", discovery=BlockingDiscovery(live_endpoints))
        deadline = time.monotonic() + 10
        while {e.port for e in live.upstream("payments").endpoints} != {
            e.port for e in live_endpoints
        }:
            if time.monotonic() > deadline:
                raise SystemExit("the discovery source never published")
            time.sleep(0.01)
        per_call(static, args.calls // 10)  # warm both
        per_call(live, args.calls // 10)
        results: dict[str, list[float]] = {"static list": [], "discovery attached": []}
        gc.disable()
        try:
            for round_ in range(args.rounds):
                order = [("static list", static), ("discovery attached", live)]
                if round_ % 2:
                    order.reverse()
                for name, mesh in order:
                    results[name].append(per_call(mesh, args.calls))
                gc.collect()
        finally:
            gc.enable()
            static.close()
            live.close()
    print(f"{args.rounds} rounds of {args.calls} calls each, interleaved, gc disabled while timed")
    medians = {}
    for name, times in results.items():
        medians[name] = statistics.median(times)
        low, high = min(times) * 1e6, max(times) * 1e6
        print(f"  {name:20s} median {medians[name] * 1e6:7.3f} us/call  range {low:.3f}-{high:.3f}")
    ratio = medians["discovery attached"] / medians["static list"]
    print(f"  ratio discovery/static: {ratio:.3f} (target within 5% of 1)")


if __name__ == "__main__":
    main()
