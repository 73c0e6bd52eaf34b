"""What ``MeshAdapter.send`` does for each request, compiled with the drivers.

Apart from ``integrations.requests``, which stays plain Python: its adapter, session and errors
are classes users subclass (and the errors subclass requests' and ``CallFailed`` at once), which
compiled classes would forbid. Here are the steps every request takes: reading its upstream
from the URL, pointing each attempt at its endpoint with the user's ``Host`` and the attempt's
timeout, and giving the request back as the user made it.

requests' objects, and what the user passes on to requests, are typed ``Any`` here: compiled
code checks annotations at run time, and requests takes more than its annotations say (a body
that is a generator, a ``stream`` of None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from urllib3.util import Timeout as Urllib3Timeout

from meshspec_runtime.deadline import TIMEOUT_HEADER, format_timeout_header

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import MeshUpstream

AttemptSend = Callable[..., Any]
"""``HTTPAdapter.send`` of the adapter: (request, *, stream, timeout, verify, cert, proxies)."""

_HOST: Final = "host"
_TIMEOUT_KEY: Final = TIMEOUT_HEADER.lower()


class Target:
    """What ``send`` needs from a request URL: its upstream, the Host header the user expects,
    and the URL pointed at an endpoint (cached: a service calls the same few URLs)."""

    def __init__(self, parts: SplitResult, upstream: str) -> None:
        self.parts = parts
        self.upstream = upstream
        self.host_header = parts.netloc.rpartition("@")[2]  # the upstream, with its port
        self.at_endpoint: dict[tuple[str, int], str] = {}

    def at(self, endpoint: Endpoint) -> str:
        address = (endpoint.address, endpoint.port)
        url = self.at_endpoint.get(address)
        if url is None:
            host = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
            url = urlunsplit(self.parts._replace(netloc=f"{host}:{endpoint.port}"))
            self.at_endpoint[address] = url
        return url


_TARGETS: dict[str, Target] = {}
_MAX_TARGETS: Final = 4096


def target_of(url: str) -> Target | None:
    """The :class:`Target` of ``url``; None when it has no host."""
    target = _TARGETS.get(url)
    if target is None:
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        target = Target(parts, parts.hostname)
        if len(_TARGETS) >= _MAX_TARGETS:
            _TARGETS.clear()
        _TARGETS[url] = target
    return target


def send(
    handle: MeshUpstream,
    send_attempt: AttemptSend,
    target: Target,
    request: Any,
    stream: Any,
    timeout: Any,
    verify: Any,
    cert: Any,
    proxies: Any,
) -> Any:
    """``request`` through ``handle``'s policies, each attempt sent by ``send_attempt``; the
    request is given back its URL and headers whether the call succeeds or not."""
    url = request.url
    policies = handle.policies
    hash_on = policies.policy.load_balancer.hash_on
    key = request.headers.get(hash_on) if hash_on is not None else None
    if request.body is not None:
        _buffer_body(request)
    headers = _Headers(request.headers)
    added_host = headers.add_if_missing(_HOST, "Host", target.host_header)
    own_timeout = headers.entry(_TIMEOUT_KEY, TIMEOUT_HEADER)  # usually None
    connect, read = _user_timeouts(timeout)
    # a hedged edge's attempts overlap: each sends a copy (else the request is pointed at
    # each attempt's endpoint in place, attempts running one after the other)
    hedged = policies.hedge is not None

    def attempt(endpoint: Endpoint, attempt_timeout: float) -> Any:
        sent = request.copy() if hedged else request
        sent.url = target.at(endpoint)
        _Headers(sent.headers).put(
            _TIMEOUT_KEY, TIMEOUT_HEADER, format_timeout_header(attempt_timeout)
        )
        # by keyword, as requests' Session.send calls adapters (``send(request, **kwargs)``)
        return send_attempt(
            sent,
            stream=stream,
            timeout=(
                attempt_timeout if connect is None or connect > attempt_timeout else connect,
                attempt_timeout if read is None or read > attempt_timeout else read,
            ),
            verify=verify,
            cert=cert,
            proxies=proxies,
        )

    try:
        return handle.call(attempt, key=key, discard=_close)
    finally:
        # The request as the user made it: redirects and ``response.request`` see its URL,
        # Host (a redirect to another upstream must not keep this one's) and headers.
        request.url = url
        if added_host:
            headers.remove(_HOST, "Host")
        headers.reset(_TIMEOUT_KEY, TIMEOUT_HEADER, own_timeout)


class _Headers:
    """A request's headers, changed through the dict under requests' ``CaseInsensitiveDict``
    (lower-cased name -> (name, value)) when it has one: a dict operation each, where the
    mapping's own methods are Python calls (and ``in`` raises and catches a ``KeyError`` for
    a missing name). Any other mapping is changed through its own methods."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers
        store = getattr(headers, "_store", None)
        self.store: dict[str, Any] | None = store if isinstance(store, dict) else None

    def add_if_missing(self, lower: str, name: str, value: str) -> bool:
        """Set ``name`` unless the request has it; True when it was set."""
        store = self.store
        if store is not None:
            if lower in store:
                return False
            store[lower] = (name, value)
            return True
        if name in self.headers:
            return False
        self.headers[name] = value
        return True

    def put(self, lower: str, name: str, value: str) -> None:
        store = self.store
        if store is not None:
            store[lower] = (name, value)
        else:
            self.headers[name] = value

    def remove(self, lower: str, name: str) -> None:
        store = self.store
        if store is not None:
            store.pop(lower, None)
        else:
            self.headers.pop(name, None)

    def entry(self, lower: str, name: str) -> Any:
        """``name``'s (name as written, value); None when the request has none. (``Any``: a
        value may be bytes.)"""
        store = self.store
        if store is not None:
            return store.get(lower)
        value = self.headers.get(name)
        return (name, value) if value is not None else None

    def reset(self, lower: str, name: str, entry: Any) -> None:
        """Give ``name`` back what :meth:`entry` read (remove it, if that was None)."""
        if entry is None:
            self.remove(lower, name)
        elif self.store is not None:
            self.store[lower] = entry
        else:
            self.headers[entry[0]] = entry[1]


def _buffer_body(request: Any) -> None:
    """Read a stream or generator body once, so that every attempt sends the same bytes."""
    body: Any = request.body
    if body is None or isinstance(body, bytes | str):
        return
    if hasattr(body, "read"):
        content = body.read()
    else:
        content = b"".join(c.encode() if isinstance(c, str) else c for c in body)
    data = content.encode() if isinstance(content, str) else bytes(content)
    request.body = data
    request.headers.pop("Transfer-Encoding", None)
    request.headers["Content-Length"] = str(len(data))


def _user_timeouts(timeout: Any) -> tuple[Any, Any]:
    """The (connect, read) timeouts the user asked for, None for "no limit" (urllib3's
    default-timeout marker included)."""
    if timeout is None:
        return None, None
    if isinstance(timeout, tuple):
        connect, read = timeout
    elif isinstance(timeout, Urllib3Timeout):
        connect, read = timeout.connect_timeout, timeout.read_timeout
    else:
        connect = read = timeout
    return _seconds(connect), _seconds(read)


def _seconds(timeout: object) -> float | None:
    return float(timeout) if isinstance(timeout, int | float) else None


def _close(response: Any) -> None:
    response.close()
