"""The integrations change headers through the store under httpx's and requests' header mappings
when there is one, and through the mapping's own methods otherwise: both ways give the same
headers."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from meshspec_runtime.deadline import TIMEOUT_HEADER
from meshspec_runtime.integrations.httpx_send import _TimeoutHeader
from meshspec_runtime.integrations.requests_send import _Headers
from requests.structures import CaseInsensitiveDict


class PlainHeaders(MutableMapping[str, Any]):
    """A header mapping with no store under it (case-insensitive, as header mappings are)."""

    def __init__(self, items: dict[str, Any]) -> None:
        self.items_ = {k.lower(): (k, v) for k, v in items.items()}

    def __getitem__(self, key: str) -> Any:
        return self.items_[key.lower()][1]

    def __setitem__(self, key: str, value: Any) -> None:
        self.items_[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self.items_[key.lower()]

    def __iter__(self) -> Any:
        return iter(name for name, _ in self.items_.values())

    def __len__(self) -> int:
        return len(self.items_)


@pytest.mark.parametrize("kind", [CaseInsensitiveDict, PlainHeaders])
def test_requests_headers_are_set_and_given_back_through_either_way(kind: Any) -> None:
    headers = kind({"Accept": "*/*", TIMEOUT_HEADER: b"900"})
    changed = _Headers(headers)
    assert (changed.store is not None) == (kind is CaseInsensitiveDict)
    assert changed.add_if_missing("host", "Host", "payments")
    assert not changed.add_if_missing("accept", "Accept", "text/plain")
    own = changed.entry(TIMEOUT_HEADER.lower(), TIMEOUT_HEADER)
    changed.put(TIMEOUT_HEADER.lower(), TIMEOUT_HEADER, "250")
    assert dict(headers) == {"Accept": "*/*", "Host": "payments", TIMEOUT_HEADER: "250"}
    changed.remove("host", "Host")
    changed.reset(TIMEOUT_HEADER.lower(), TIMEOUT_HEADER, own)
    assert dict(headers) == {"Accept": "*/*", TIMEOUT_HEADER: b"900"}
    changed.reset(TIMEOUT_HEADER.lower(), TIMEOUT_HEADER, None)
    assert dict(headers) == {"Accept": "*/*"}


@pytest.mark.parametrize("kind", [httpx.Headers, PlainHeaders])
@pytest.mark.parametrize("own", [None, "900"])
def test_the_httpx_timeout_header_is_set_and_given_back_through_either_way(
    kind: Any, own: str | None
) -> None:
    headers = kind({"accept": "*/*", **({TIMEOUT_HEADER: own} if own is not None else {})})
    before = dict(headers)
    header = _TimeoutHeader(headers)
    assert (header.raw is not None) == (kind is httpx.Headers)
    header.put("250")
    header.put("120")  # a retry's attempt replaces the first one's value
    assert {k.lower(): v for k, v in headers.items()} == {"accept": "*/*", TIMEOUT_HEADER: "120"}
    header.restore()
    assert dict(headers) == before
