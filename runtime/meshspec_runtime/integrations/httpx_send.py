"""What ``MeshTransport`` does for each request, compiled with the drivers.

Apart from ``integrations.httpx``, which stays plain Python: its transports and errors are
classes users subclass (and the errors subclass httpx's and ``CallFailed`` at once), which
compiled classes would forbid. Here are the steps every request takes: finding its upstream,
pointing each attempt at its endpoint, and giving the request back as the user made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import httpx

from meshspec_runtime.deadline import TIMEOUT_HEADER, format_timeout_header

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import Mesh, MeshUpstream

_TIMEOUT_KEYS: Final = ("connect", "read", "write", "pool")
_NO_TIMEOUTS: Final = dict.fromkeys(_TIMEOUT_KEYS)
"""What httpx passes for a client without timeouts (the mesh's clients, by default)."""


def upstream_of(mesh: Mesh, request: Any) -> MeshUpstream | None:
    """The handle of the upstream the request's URL names; None when the URL has no host
    (an unknown name raises ``UnknownUpstreamError``)."""
    host = request.url.host
    return mesh.upstream(host) if host else None


def send(handle: MeshUpstream, inner: Any, request: Any) -> Any:
    """``request`` through ``handle``'s policies, each attempt sent by ``inner``."""
    request.read()  # buffered once: every attempt resends the same bytes
    as_sent = _AsSent(request, handle.policies.hedge is not None)

    def attempt(endpoint: Endpoint, timeout: float) -> Any:
        return inner.handle_request(as_sent.to(endpoint, timeout))

    try:
        return handle.call(attempt, key=_key(handle, request), discard=_close)
    finally:
        as_sent.restore()


async def send_async(handle: MeshUpstream, inner: Any, request: Any) -> Any:
    """:func:`send` for ``httpx.AsyncClient``."""
    await request.aread()
    as_sent = _AsSent(request, handle.policies.hedge is not None)

    async def attempt(endpoint: Endpoint, timeout: float) -> Any:
        return await inner.handle_async_request(as_sent.to(endpoint, timeout))

    try:
        return await handle.call_async(attempt, key=_key(handle, request), discard=_aclose)
    finally:
        as_sent.restore()


def _key(handle: MeshUpstream, request: Any) -> str | None:
    """The request's hash key: its value of the ``hash_on`` header, if the edge has one."""
    hash_on = handle.policies.policy.load_balancer.hash_on
    return request.headers.get(hash_on) if hash_on is not None else None


class _AsSent:
    """The user's request, pointed at each attempt's endpoint in place (attempts run one
    after the other; a copy would cost more than the rest of the call; on a hedged edge, whose
    attempts overlap, each attempt gets a copy instead) and given back its URL, extensions and
    headers when the call ends: ``response.request``, redirects and auth flows see the request
    the user made."""

    def __init__(self, request: Any, hedged: bool) -> None:
        self.request = request
        url = request.url
        self.url = url
        self.extensions = request.extensions
        self.hedged = hedged
        # Read once per call, not per attempt: each is a property that computes.
        self.sni_hostname = url.host if url.scheme == "https" else None
        self.cache_key = (url.raw_scheme, url.raw_path)
        self.timeout_header = _TimeoutHeader(request.headers)

    def to(self, endpoint: Endpoint, timeout: float) -> Any:
        request = self.request
        extensions = dict(self.extensions)
        extensions["timeout"] = _timeouts(extensions.get("timeout"), timeout)
        if self.sni_hostname is not None:
            extensions.setdefault("sni_hostname", self.sni_hostname)  # verify the name, not the IP
        at_endpoint = _endpoint_url(self.url, self.cache_key, endpoint)
        header = format_timeout_header(timeout)
        if self.hedged:  # attempts in flight together: each sends a request of its own
            headers = request.headers.copy()
            headers[TIMEOUT_HEADER] = header
            return httpx.Request(
                request.method,
                at_endpoint,
                headers=headers,
                stream=request.stream,
                extensions=extensions,
            )
        request.url = at_endpoint
        self.timeout_header.put(header)
        request.extensions = extensions
        return request

    def restore(self) -> None:
        request = self.request
        request.url = self.url
        request.extensions = self.extensions
        self.timeout_header.restore()


_TIMEOUT_KEY: Final = TIMEOUT_HEADER.lower().encode("ascii")


class _TimeoutHeader:
    """The attempt's :data:`TIMEOUT_HEADER` on the user's request, and the request's own value
    (usually none) put back when the call ends. Through the list under ``httpx.Headers`` (raw
    name, lower-cased name, value) when it has one: its own methods scan that list in Python,
    and a header left on the request would cost again as httpx reads the response's cookies."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers
        raw = getattr(headers, "_list", None)
        self.raw: list[Any] | None = raw if type(raw) is list else None
        self.own_entry: Any = None
        self.own_value: Any = None
        if self.raw is not None:
            index = self._index()
            if index is not None:
                self.own_entry = self.raw[index]
        else:
            self.own_value = headers.get(TIMEOUT_HEADER)

    def _index(self) -> int | None:
        raw = self.raw
        assert raw is not None
        for index, entry in enumerate(raw):
            if entry[1] == _TIMEOUT_KEY:
                return index
        return None

    def put(self, value: str) -> None:
        raw = self.raw
        if raw is None:
            self.headers[TIMEOUT_HEADER] = value
            return
        entry = (_TIMEOUT_KEY, _TIMEOUT_KEY, value.encode("ascii"))
        index = self._index()
        if index is None:
            raw.append(entry)
        else:
            raw[index] = entry

    def restore(self) -> None:
        raw = self.raw
        if raw is None:
            if self.own_value is None:
                self.headers.pop(TIMEOUT_HEADER, None)
            else:
                self.headers[TIMEOUT_HEADER] = self.own_value
            return
        index = self._index()
        if index is None:
            return
        if self.own_entry is None:
            del raw[index]
        else:
            raw[index] = self.own_entry


_ENDPOINT_URLS: dict[tuple[tuple[bytes, bytes], str, int], Any] = {}
_MAX_ENDPOINT_URLS: Final = 4096


def _endpoint_url(url: Any, cache_key: tuple[bytes, bytes], endpoint: Endpoint) -> Any:
    """``url`` with the endpoint's address and port (what the connection pool reads: scheme,
    host, port, path and query; ``cache_key`` is its scheme and its path with the query). Cached:
    building an ``httpx.URL`` parses and validates it, and a service calls the same few URLs
    again and again."""
    key = (cache_key, endpoint.address, endpoint.port)
    made = _ENDPOINT_URLS.get(key)
    if made is None:
        made = url.copy_with(host=endpoint.address, port=endpoint.port)
        if len(_ENDPOINT_URLS) >= _MAX_ENDPOINT_URLS:
            _ENDPOINT_URLS.clear()
        _ENDPOINT_URLS[key] = made
    return made


def _timeouts(configured: object, timeout: float) -> dict[str, float]:
    """The client's timeouts for this request (httpx passes a dict), each capped at the
    attempt's."""
    if type(configured) is not dict or configured == _NO_TIMEOUTS:
        return dict.fromkeys(_TIMEOUT_KEYS, timeout)
    return {key: _capped(configured.get(key), timeout) for key in _TIMEOUT_KEYS}


def _capped(configured: object, timeout: float) -> float:
    if isinstance(configured, int | float) and configured < timeout:
        return float(configured)
    return timeout


def _close(response: Any) -> None:
    response.close()


async def _aclose(response: Any) -> None:
    """An answer the call does not return (retried, or a hedge's loser): closed unread, its
    connection leaves the pool instead of staying checked out until the client closes."""
    await response.aclose()
