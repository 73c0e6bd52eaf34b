"""Reporting what an attempt returned to its call: a step of every call, compiled with the
drivers (``drivers.classify``, which the integrations' errors subclass, stays plain Python)."""

from __future__ import annotations

from typing import Final

from meshspec_runtime.drivers.classify import Classifier, classify
from meshspec_runtime.policy.call import Call

PLAIN_RESULTS: Final = frozenset({type(None), bool, int, float, str, bytes, dict, list, tuple})
"""Exact types whose values have no ``status_code`` or ``status`` attribute: an answer without
a status, known without looking (two failed ``getattr`` cost more than the rest of a call's
bookkeeping)."""


def record_answer(
    call: Call, result: object, ended: float, latency: float, classifier: Classifier
) -> bool:
    """Report what an attempt returned to ``call``; True when it ends the call as its answer.

    The default classifier's common case, an answer with no status or an integer one, goes
    through ``record_success`` without building an ``Outcome``; anything else is classified
    and recorded (the call's next step then says whether it is over).
    """
    if classifier is classify:
        if type(result) in PLAIN_RESULTS:
            return call.record_success(ended, latency, None)
        status = getattr(result, "status_code", None)
        if status is None:
            status = getattr(result, "status", None)
        if status is None or type(status) is int:
            return call.record_success(ended, latency, status)
    call.record(ended, classifier(result, latency))
    return False
