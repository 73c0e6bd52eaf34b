"""The sans-I/O discovery cache: what it publishes, keeps, expires, and how it paces reads."""

from __future__ import annotations

import math
import random

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.discovery.cache import (
    DiscoveryCache,
    DiscoverySettings,
    Failed,
    Found,
    Gone,
    Query,
    Signal,
    Sleep,
)

BUNDLE = (
    Endpoint(id="a", address="10.0.0.1", port=80),
    Endpoint(id="b", address="10.0.0.2", port=80),
)
LIVE = (Endpoint(id="c", address="127.0.0.1", port=81),)


def cache(**settings: float) -> DiscoveryCache:
    return DiscoveryCache(BUNDLE, 0.0, DiscoverySettings(**settings), random.Random(1))  # type: ignore[arg-type]


def test_bundle_list_is_in_force_until_the_first_answer() -> None:
    c = cache()
    assert c.endpoints == BUNDLE
    assert c.next(0.0) == Query(None, c.settings.wait)
    update = c.receive(0.1, Found(LIVE, index=7))
    assert update.publish == LIVE
    assert c.next(0.2) == Query(7, c.settings.wait)  # blocking query from the index


def test_same_answer_publishes_nothing() -> None:
    c = cache()
    c.receive(0.1, Found(LIVE, index=7))
    assert c.receive(0.2, Found(LIVE, index=8)).publish is None


def test_failure_keeps_last_known_good_and_counts_staleness() -> None:
    c = cache(max_staleness=10.0)
    c.receive(1.0, Found(LIVE, index=3))
    update = c.receive(2.0, Failed("connection refused"))
    assert update.publish is None
    assert update.signals == (Signal.FAILED,)
    assert update.reason == "connection refused"
    assert c.endpoints == LIVE
    assert c.staleness(5.0) == pytest.approx(4.0)
    assert c.next(2.0) == Sleep(c._due)  # never re-read at once after a failure
    assert c._due > 2.0


def test_expiry_falls_back_to_the_bundle_then_recovery_publishes_again() -> None:
    c = cache(max_staleness=10.0, failure_threshold=2)
    c.receive(0.0, Found(LIVE, index=3))
    c.receive(1.0, Failed("down"))
    assert c.tick(9.0).publish is None
    assert c.expires_at() == pytest.approx(10.0)
    expired = c.tick(10.5)
    assert expired.publish == tuple(sorted(BUNDLE, key=lambda e: e.id))
    assert expired.signals == (Signal.EXPIRED,)
    assert c.tick(11.0).publish is None  # once
    back = c.receive(12.0, Found(LIVE, index=4))
    assert back.publish == LIVE
    assert Signal.RECOVERED in back.signals
    assert c.staleness(12.5) == 0.0


def test_none_passing_keeps_the_set_but_gone_held_for_gone_hold_empties_it() -> None:
    c = cache(gone_hold=5.0, retry_delay=0.5)
    c.receive(0.0, Found(LIVE, index=1))
    ignored = c.receive(1.0, Found((), index=2))
    assert ignored.publish is None
    assert ignored.signals == (Signal.EMPTY_IGNORED,)
    assert c.endpoints == LIVE
    once = c.receive(2.0, Gone(index=3))  # a restarted agent says this until it has synced
    assert once.publish is None and once.signals == (Signal.GONE_HELD,)
    assert c.endpoints == LIVE
    assert c.next(2.0) == Sleep(2.5)  # re-read plainly after retry_delay, not at once
    assert c.next(2.5) == Query(None, c.settings.wait)
    still = c.receive(6.9, Gone(index=3))
    assert still.publish is None and still.signals == ()  # the event is said once per hold
    gone = c.receive(7.0, Gone(index=3))
    assert gone.publish == ()
    assert c.endpoints == ()


def test_a_gone_answer_not_kept_up_for_the_hold_changes_nothing() -> None:
    c = cache(gone_hold=5.0)
    c.receive(0.0, Found(LIVE, index=1))
    assert c.receive(1.0, Gone(index=0)).publish is None
    assert c.receive(4.0, Found(LIVE, index=5)).publish is None  # back, nothing to publish
    assert c.receive(7.0, Gone(index=6)).publish is None  # a new "gone" starts a new hold
    assert c.receive(11.9, Gone(index=6)).publish is None
    assert c.endpoints == LIVE
    assert c.receive(12.0, Gone(index=6)).publish == ()


def test_a_zero_gone_hold_empties_at_once_and_gone_with_nothing_known_is_published() -> None:
    c = cache(gone_hold=0.0)
    c.receive(0.0, Found(LIVE, index=1))
    assert c.receive(1.0, Gone(index=2)).publish == ()
    assert c.receive(2.0, Found(LIVE, index=3)).publish == LIVE
    with pytest.raises(ValueError, match="gone_hold"):
        DiscoverySettings(gone_hold=-1.0)


def test_breaker_opens_at_threshold_and_probes_with_growing_jittered_backoff() -> None:
    c = cache(failure_threshold=3, retry_delay=0.2, backoff_base=1.0, backoff_cap=8.0)
    now, delays, signals = 0.0, [], []
    for _ in range(8):
        action = c.next(now)
        if isinstance(action, Sleep):
            now = action.until
            action = c.next(now)
        assert isinstance(action, Query)
        update = c.receive(now, Failed("timeout"))
        signals.append(update.signals)
        delays.append(c._due - now)
    assert [Signal.BREAKER_OPEN in s for s in signals] == [False, False, True, *[False] * 5]
    assert all(0.1 <= d <= 0.2 for d in delays[:2])
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for delay, ceiling in zip(delays[2:], ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[5:])) == 3  # jittered: the capped delays differ
    assert c.breaker_open


def test_index_going_backwards_restarts_from_zero() -> None:
    c = cache()
    c.receive(0.0, Found(LIVE, index=100))
    c.receive(1.0, Found(LIVE, index=5))  # the agent restarted
    assert c.index == 0


def test_ttl_answer_is_cached_for_its_ttl() -> None:
    c = cache()
    c.receive(0.0, Found(LIVE, ttl=5.0))
    assert c.next(1.0) == Sleep(5.0)
    assert isinstance(c.next(5.0), Query)


def test_reads_are_spaced_by_min_interval() -> None:
    c = cache(min_interval=0.5)
    assert isinstance(c.next(0.0), Query)
    c.receive(0.01, Found(LIVE, index=1))
    assert c.next(0.02) == Sleep(0.5)


def test_unbounded_staleness_never_expires() -> None:
    c = cache(max_staleness=math.inf)
    c.receive(0.0, Found(LIVE, index=1))
    c.receive(1.0, Failed("down"))
    assert c.tick(1e9).publish is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_staleness", 0.0), ("wait", -1.0), ("failure_threshold", 0), ("min_interval", -0.1)],
)
def test_bad_settings_are_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        DiscoverySettings(**{field: value})  # type: ignore[arg-type]
