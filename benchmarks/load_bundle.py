"""Loading a bundle of 5,000 services: ``load_bundle`` and ``load_service`` against the loader
they replace.

Compiles a generated spec (5,000 services, 4 instances and 3 upstreams each; see gen_spec.py)
into a bundle home, then times, in interleaved rounds (each call after a full collection, with
the collector paused while it runs, the same for every contender):

- ``baseline``: the previous ``load_bundle``, copied below, reading the same files: every file
  hashed by path, ``policy.json`` read again to be parsed (its only changes: it reads a manifest
  entry's ``sha256`` where the old manifest held the digest itself, and the files listed by
  the indexes the manifest lists, where the old manifest listed every file);
- ``load_bundle``: the current loader (pinned folder, each file opened once with a size cap);
- ``load_service``: the manifest, one index and one service bucket only (another service each
  round).

Prints the median and range of each, and the ratios to the baseline (below 1: faster).

    python benchmarks/load_bundle.py [--services 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate
from meshspec_runtime.bundle import BundleIndex, Manifest, PolicyDocument
from meshspec_runtime.loader import load_bundle, load_service

from meshspec.compile import compile_spec

# --- the baseline: the loader as it was before bundle homes ---------------------------------


def baseline_load_bundle(root: Path) -> tuple[Manifest, PolicyDocument]:
    manifest = Manifest.model_validate_json((root / "manifest.json").read_bytes())
    files = dict(manifest.files)
    for index in manifest.files:
        files.update(BundleIndex.model_validate_json((root / index).read_bytes()).files)
    for relative, entry in files.items():
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or ".." in parts:
            raise ValueError(relative)
        path = root.joinpath(*parts)
        if path.is_symlink() or not path.is_file():
            raise ValueError(f"{relative}: missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry.sha256:
            raise ValueError(f"{relative}: changed")
    listed = files.keys()
    for folder, dirs, names in os.walk(root):
        for name in dirs:
            if Path(folder, name).is_symlink():
                raise ValueError(f"{name}: a link")
        for name in names:
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative != "manifest.json" and relative not in listed:
                raise ValueError(f"{relative}: not listed")
    policy = PolicyDocument.model_validate_json((root / "policy.json").read_bytes())
    return manifest, policy


# --- timing ------------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started
    finally:
        gc.enable()


def describe(times: list[float]) -> str:
    median, low, high = (1000 * value for value in (statistics.median(times), *minmax(times)))
    return f"median {median:9.2f} ms   range {low:8.2f} - {high:8.2f} ms"


def minmax(times: list[float]) -> tuple[float, float]:
    return min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meshspec-load-bench-"))
    try:
        spec = work / "big.yaml"
        spec.write_text(generate(args.services, 4, 3))
        result = compile_spec(spec, work / "home")
        home, folder = work / "home", result.folder
        whole = load_bundle(home)
        names = sorted(whole.policy.services)
        # every contender reads the same version and agrees on it before anything is timed
        assert baseline_load_bundle(folder)[1] == whole.policy
        assert load_service(home, names[0]).service == whole.policy.service(names[0])

        times: dict[str, list[float]] = {"baseline": [], "load_bundle": [], "load_service": []}
        for round_index in range(args.rounds):
            name = names[(round_index * 997) % len(names)]
            contenders: list[tuple[str, Callable[[], object]]] = [
                ("baseline", lambda: baseline_load_bundle(folder)),
                ("load_bundle", lambda: load_bundle(home)),
                ("load_service", lambda name=name: load_service(home, name)),  # type: ignore[misc]
            ]
            if round_index % 2:  # interleaved, and the order alternates between rounds
                contenders.reverse()
            for label, action in contenders:
                times[label].append(timed(action))

        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        count = sum(1 for path in folder.rglob("*") if path.is_file())
        manifest_size = (folder / "manifest.json").stat().st_size
        print(
            f"bundle: {args.services} services, {count} files, "
            f"{size / 1e6:.1f} MB (manifest {manifest_size / 1e6:.2f} MB); {args.rounds} rounds"
        )
        for label, measured in times.items():
            print(f"  {label:<13} {describe(measured)}")
        base = statistics.median(times["baseline"])
        for label in ("load_bundle", "load_service"):
            ratio = statistics.median(times[label]) / base
            print(f"  ratio {label} / baseline: {ratio:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
