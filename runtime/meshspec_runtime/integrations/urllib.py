"""The standard library's ``urllib.request``: how its errors map to outcomes.

``urlopen`` raises ``HTTPError`` for every answer of 400 and above (an answer, with its status)
and wraps connection failures in ``URLError``, whose ``reason`` is the underlying ``OSError``.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Mapping

from meshspec_runtime.errors import ERRORS, Rule, answer
from meshspec_runtime.policy.outcome import Outcome


def _http_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, urllib.error.HTTPError)
    return answer(latency, int(error.code)) if isinstance(error.code, int) else None


def _url_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, urllib.error.URLError)
    reason = error.reason
    return ERRORS.known(reason, latency) if isinstance(reason, BaseException) else None


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {urllib.error.HTTPError: _http_error, urllib.error.URLError: _url_error}
