from __future__ import annotations

import pytest
from meshspec_runtime.policy.bulkhead import Bulkhead


def test_admits_up_to_the_limit_and_frees_on_release() -> None:
    bulkhead = Bulkhead(3)
    assert [bulkhead.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    assert bulkhead.in_use == 3
    assert bulkhead.rejected_total == 2
    bulkhead.release()
    assert bulkhead.in_use == 2
    assert bulkhead.try_acquire()
    assert not bulkhead.try_acquire()


def test_release_without_acquire_is_a_bug() -> None:
    bulkhead = Bulkhead(1)
    with pytest.raises(RuntimeError, match="without a matching"):
        bulkhead.release()
    assert bulkhead.try_acquire()
    bulkhead.release()
    with pytest.raises(RuntimeError):
        bulkhead.release()
    assert bulkhead.in_use == 0


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Bulkhead(0)
    assert Bulkhead(7).limit == 7
