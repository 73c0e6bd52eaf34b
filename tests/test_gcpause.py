"""The collector pause: the collector is back on afterwards, and ``freeze`` puts what the
block made out of the collector's reach (reference counting still frees it)."""

from __future__ import annotations

import gc
import weakref

from meshspec.gcpause import collector_paused


class _Node:
    def __init__(self) -> None:
        self.children: list[_Node] = []


def test_the_collector_is_off_in_the_block_and_back_on_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause does not switch it on early
    assert gc.isenabled()


def test_freeze_moves_what_the_block_made_out_of_the_collectors_reach() -> None:
    try:
        with collector_paused(freeze=True):
            made = _Node()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert not any(obj is made for obj in gc.get_objects())  # frozen: in no generation
        watch = weakref.ref(made)
        del made
        assert watch() is None  # reference counting freed it all the same
    finally:
        gc.unfreeze()


def test_without_freeze_nothing_is_frozen() -> None:
    gc.unfreeze()
    with collector_paused():
        made = _Node()
    assert gc.get_freeze_count() == 0
    assert any(obj is made for obj in gc.get_objects())
