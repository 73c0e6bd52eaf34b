"""OutlierDetector against Envoy's consecutive-5xx ejection rules (see docs/policies.md)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy import outlier
from meshspec_runtime.policy.config import OutlierDetectionConfig
from meshspec_runtime.policy.outlier import OutlierDetector


def fail(detector: OutlierDetector, now: float, endpoint: str, times: int, total: int) -> None:
    for _ in range(times):
        detector.on_failure(now, endpoint, total)


def config(**overrides: float) -> OutlierDetectionConfig:
    settings: dict[str, float] = {
        "consecutive_failures": 3,
        "base_ejection": 30.0,
        "max_ejection": 300.0,
        "max_ejected": 0.5,
    }
    settings.update(overrides)
    return OutlierDetectionConfig.model_validate(settings)


def test_ejects_after_consecutive_failures_and_a_success_resets_the_run() -> None:
    detector = OutlierDetector(config())
    fail(detector, 0.0, "a", 2, total=4)
    detector.on_success(0.0, "a")
    fail(detector, 0.0, "a", 2, total=4)
    assert not detector.is_ejected(0.0, "a")
    detector.on_failure(0.0, "a", 4)
    assert detector.is_ejected(0.0, "a")
    assert detector.ejected(0.0) == frozenset({"a"})
    assert detector.ejections_total == 1


def test_ejection_time_is_base_times_ejections_capped() -> None:
    detector = OutlierDetector(config(base_ejection=30.0, max_ejection=75.0))
    now = 0.0
    lengths = []
    for _ in range(4):
        fail(detector, now, "a", 3, total=2)
        start = now
        while detector.is_ejected(now, "a"):
            now += 1.0
        lengths.append(now - start)
    assert lengths == [30.0, 60.0, 75.0, 75.0]
    assert detector.ejection_count("a") == 4


def test_returned_endpoint_starts_a_fresh_run() -> None:
    detector = OutlierDetector(config())
    fail(detector, 0.0, "a", 3, total=2)
    fail(detector, 10.0, "a", 5, total=2)  # ignored while ejected
    assert detector.is_ejected(29.9, "a")
    assert not detector.is_ejected(30.0, "a")
    fail(detector, 31.0, "a", 2, total=2)
    assert not detector.is_ejected(31.0, "a")
    detector.on_failure(31.0, "a", 2)
    assert detector.is_ejected(31.0, "a")


def test_share_limits_concurrent_ejections() -> None:
    detector = OutlierDetector(config(max_ejected=0.3))
    for endpoint in "abcdef":
        fail(detector, 0.0, endpoint, 3, total=10)
    assert detector.ejected(0.0) == frozenset("abc")  # 3 of 10 = 30%
    assert detector.refused_total == 3


def test_one_endpoint_can_always_be_ejected() -> None:
    detector = OutlierDetector(config(max_ejected=0.1))
    for endpoint in "ab":
        fail(detector, 0.0, endpoint, 3, total=3)  # 10% of 3 rounds down to 0
    assert detector.ejected(0.0) == frozenset("a")


def test_a_refused_ejection_resets_the_run_like_envoy() -> None:
    detector = OutlierDetector(config(max_ejected=0.1))
    fail(detector, 0.0, "a", 3, total=3)
    fail(detector, 0.0, "b", 3, total=3)  # refused: "a" holds the only slot
    assert detector.ejected(30.0) == frozenset()  # "a" is back
    fail(detector, 30.0, "b", 2, total=3)
    assert not detector.is_ejected(30.0, "b")  # its earlier run does not carry over
    detector.on_failure(30.0, "b", 3)
    assert detector.is_ejected(30.0, "b")


def test_zero_endpoints_reported_only_allows_the_first_ejection() -> None:
    detector = OutlierDetector(config())
    fail(detector, 0.0, "a", 3, total=0)
    fail(detector, 0.0, "b", 3, total=0)
    assert detector.ejected(0.0) == frozenset("a")


def test_forget_drops_an_endpoint() -> None:
    detector = OutlierDetector(config())
    fail(detector, 0.0, "a", 3, total=2)
    detector.forget("a")
    assert detector.ejected(0.0) == frozenset()
    assert detector.ejection_count("a") == 0
    fail(detector, 0.0, "b", 3, total=2)
    assert detector.ejected(0.0) == frozenset("b")


def test_detectors_that_never_failed_share_one_map_that_stays_empty() -> None:
    fresh, used = OutlierDetector(config()), OutlierDetector(config())
    for detector in (fresh, used):  # what a detector without failures does: reads and pops
        detector.on_success(0.0, "a")
        detector.forget("a")
        assert detector.ejected(0.0) == frozenset() and detector.ejection_count("a") == 0
    fail(used, 0.0, "a", 3, total=2)
    used.forget("a")
    fail(used, 1.0, "b", 3, total=2)
    assert used.ejected(1.0) == frozenset("b") and fresh.ejected(1.0) == frozenset()
    assert outlier._NO_STATE == {}


class ModelDetector:
    """Naive: scans every endpoint on every call."""

    def __init__(self, c: OutlierDetectionConfig) -> None:
        self.c = c
        self.run: dict[str, int] = {}
        self.count: dict[str, int] = {}
        self.until: dict[str, float] = {}

    def ejected(self, now: float) -> set[str]:
        for e in [e for e, t in self.until.items() if t <= now]:
            del self.until[e]
            self.run[e] = 0
        return set(self.until)

    def record(self, now: float, endpoint: str, failed: bool, total: int) -> None:
        out = self.ejected(now)
        if endpoint in out:
            return
        if not failed:
            self.run[endpoint] = 0
            return
        self.run[endpoint] = self.run.get(endpoint, 0) + 1
        if self.run[endpoint] < self.c.consecutive_failures:
            return
        self.run[endpoint] = 0
        if out and (total < 1 or (len(out) + 1) / total > self.c.max_ejected):
            return
        self.count[endpoint] = self.count.get(endpoint, 0) + 1
        self.until[endpoint] = now + min(
            self.c.max_ejection, self.c.base_ejection * self.count[endpoint]
        )


@given(
    share=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]),
    threshold=st.integers(1, 3),
    total=st.integers(1, 8),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.0, 1.0, 10.0, 35.0]), st.integers(0, 7), st.booleans()),
        max_size=200,
    ),
)
def test_never_ejects_more_than_the_share_and_matches_the_model(
    share: float, threshold: int, total: int, steps: list[tuple[float, int, bool]]
) -> None:
    c = OutlierDetectionConfig(
        consecutive_failures=threshold, base_ejection=10.0, max_ejection=40.0, max_ejected=share
    )
    detector, model = OutlierDetector(c), ModelDetector(c)
    limit = max(1, math.floor(share * total + 1e-9))
    now = 0.0
    for dt, index, failed in steps:
        now += dt
        endpoint = f"e{index % total}"
        if failed:
            detector.on_failure(now, endpoint, total)
        else:
            detector.on_success(now, endpoint)
        model.record(now, endpoint, failed, total)
        out = detector.ejected(now)
        assert len(out) <= limit
        assert out == model.ejected(now)


@pytest.mark.parametrize("seed", [0, 1])
def test_identical_inputs_give_identical_ejections(seed: int) -> None:
    def run() -> list[frozenset[str]]:
        rng = random.Random(seed)
        detector = OutlierDetector(config(consecutive_failures=2, max_ejected=0.4))
        seen = []
        for step in range(500):
            endpoint = f"e{rng.randrange(5)}"
            if rng.random() < 0.6:
                detector.on_failure(step / 10, endpoint, 5)
            else:
                detector.on_success(step / 10, endpoint)
            seen.append(detector.ejected(step / 10))
        return seen

    first = run()
    assert first == run()
    assert any(first)  # the scenario does eject
