"""Results as they arrive: one JSON line per run in ``runs.jsonl``, keyed by combination and
seed, so an interrupted sweep resumes where it stopped.

The first line names the sweep's inputs (a hash of the spec, the scenario, the environment and
the meshspec version). Results stay valid when the grid or the seed count changes, so growing
a sweep only runs what is new; a different spec or scenario is refused rather than mixed in.
A line cut short by a kill is ignored (that run simply runs again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

from meshspec.sweep.work import Inputs, RunResult

FORMAT = 1
FILE_NAME = "runs.jsonl"


class StoreError(Exception):
    """The results file cannot be used (unreadable, or from another sweep)."""


def fingerprint(inputs: Inputs) -> str:
    digest = hashlib.sha256()
    for part in (
        inputs.spec_text,
        inputs.scenario_text,
        inputs.env or "",
        version("meshspec"),
        version("meshspec-runtime"),
    ):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class ResultStore:
    """Append-only results; ``results`` holds what is already known (the latest per run)."""

    def __init__(self, path: Path | None, inputs: Inputs) -> None:
        self.path = path
        self.fingerprint = fingerprint(inputs)
        self.results: dict[tuple[str, int], RunResult] = {}
        self.resumed = 0
        self._stream: IO[str] | None = None
        if path is not None:
            self._open(path)

    def _open(self, path: Path) -> None:
        try:
            exists = path.is_file() and path.stat().st_size > 0
            if exists:
                self._read(path)
            self._stream = path.open("a", encoding="utf-8")
            if not exists:
                header = {"format": FORMAT, "inputs": self.fingerprint}
                self._stream.write(json.dumps(header) + "\n")
                self._stream.flush()
        except OSError as error:
            raise StoreError(f"{path}: {error.strerror or error}") from None

    def _read(self, path: Path) -> None:
        with path.open(encoding="utf-8") as stream:
            lines = stream.read().split("\n")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise StoreError(f"{path}: not a results file of meshspec sweep (remove it)")
        if header.get("inputs") != self.fingerprint:
            raise StoreError(
                f"{path}: holds results of a different spec, scenario, environment or meshspec "
                "version; pass --fresh to discard them, or choose another --report folder"
            )
        for line in lines[1:]:
            try:
                result = RunResult.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short when the sweep was killed: that run runs again
            self.results[(result.combination, result.seed)] = result
        self.resumed = sum(r.ok for r in self.results.values())
        if lines[-1]:  # the cut-short line: end it, so the next result starts on its own line
            with path.open("a", encoding="utf-8") as stream:
                stream.write("\n")

    def done(self, combination: str, seed: int) -> bool:
        """True when the run finished; a failed run runs again."""
        result = self.results.get((combination, seed))
        return result is not None and result.ok

    def add(self, result: RunResult) -> None:
        self.results[(result.combination, result.seed)] = result
        if self._stream is not None:
            self._stream.write(json.dumps(result.as_dict(), separators=(",", ":")) + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def discard(path: Path) -> None:
    """``--fresh``: forget earlier results."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def load_results(path: Path) -> list[dict[str, Any]]:
    """Every stored run (for tools and tests)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [json.loads(line) for line in lines if line]
