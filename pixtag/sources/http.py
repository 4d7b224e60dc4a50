"""HTTP with the manners pixtag needs when it talks to servers it does not control.

* a client-side throttle (requests per second) for API calls;
* retries with exponential backoff (``tenacity``) on 429/5xx and connection errors, honouring
  ``Retry-After`` (capped) and bounded in number;
* a timeout on every request and a cap on every response body (checked while streaming);
* an outbound-address guard: only http(s), only allowed hosts, never loopback, private,
  link-local, multicast or reserved addresses unless a host is explicitly allowed to be private
  (the configured instance's own host is). The check happens where the connection is made: the
  name is resolved once, every address is checked, and the socket connects to exactly a checked
  address (TLS is still verified against the name), so a name that rebinds between a check and
  the connection never receives a request; redirect hops go through the same connection code;
* error messages that name the method, path and status, never a header (where the token is).
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from pixtag.core import logs
from pixtag.core.errors import PixtagError

log = logs.get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
USER_AGENT = "pixtag/0.1 (+https://github.com/pixtag/pixtag; hashtag-suggestion research bot)"


class HTTPError(PixtagError, RuntimeError):
    """A request failed; ``status`` is the HTTP status or ``None`` for transport errors."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(logs.redact(message))
        self.status = status
        self.retry_after = retry_after


class TransientError(HTTPError):
    """Worth retrying: 429, 5xx, timeouts, resets."""


class ResponseTooLarge(HTTPError):
    """The body is bigger than the configured cap."""


class BlockedURL(HTTPError):
    """The URL's scheme, host or address is not allowed (SSRF guard)."""


def describe_url(url: str) -> str:
    """Host and path of a URL, without query string or credentials (safe for messages)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


# --------------------------------------------------------------------------------------------
class RateLimiter:
    """Spaces calls at least ``1/rate`` seconds apart (strictly, across threads).

    The spacing carries a margin (``MARGIN``) so that the server, whose clock sees requests
    with some jitter, never counts more than ``rate`` in any one-second window.
    """

    MARGIN: ClassVar[float] = 1.1
    _shared: ClassVar[dict[tuple[str, float | None], RateLimiter]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rate: float | None):
        self.interval = self.MARGIN / rate if rate else 0.0
        self._lock = threading.Lock()
        self._last = -float("inf")

    @classmethod
    def shared(cls, key: str, rate: float | None) -> RateLimiter:
        """One limiter per ``key`` (an instance) and rate in this process, so that clients made
        one after another or side by side (a scrape per class) keep to the rate together."""
        with cls._shared_lock:
            limiter = cls._shared.get((key, rate))
            if limiter is None:
                limiter = cls._shared[(key, rate)] = cls(rate)
            return limiter

    def acquire(self) -> float:
        """Wait for this call's turn; returns its time (``time.monotonic()``)."""
        with self._lock:
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            return self._last


def max_rate(times: Iterable[float], window: float = 1.0) -> float:
    """Most of ``times`` (sorted seconds) in any half-open window of ``window`` seconds, per second."""
    times = list(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best / window


# --------------------------------------------------------------------------------------------
@dataclass
class AddressPolicy:
    """Which hosts may be contacted, and which of them may resolve to non-public addresses."""

    allowed_hosts: set[str] = field(default_factory=set)
    private_ok_hosts: set[str] = field(default_factory=set)
    any_host: bool = False

    def check_url(self, url: str, *, resolve_host: bool = True) -> None:
        """Refuse a URL whose scheme or host is not allowed; with ``resolve_host``, also one
        whose name resolves to a forbidden address (a stand-alone check: requests check the
        addresses where they connect, see :meth:`checked_addresses`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise BlockedURL(f"blocked {describe_url(url)}: scheme {parts.scheme!r} is not http(s)")
        host = (parts.hostname or "").lower()
        if not host:
            raise BlockedURL(f"blocked {url[:80]!r}: no host")
        if not self.any_host and host not in self.allowed_hosts:
            raise BlockedURL(f"blocked {describe_url(url)}: host {host!r} is not an allowed host")
        if resolve_host:
            self.checked_addresses(host, parts.port or (443 if parts.scheme == "https" else 80))

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all of them checked; refuse the host
        when any of them is forbidden (a name must not mix public and internal answers)."""
        host = host.lower().rstrip(".")
        addresses = resolve(host, port)
        for address in addresses:
            self.check_address(host, address)
        return addresses

    def check_address(self, host: str, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
            # Link-local covers the cloud metadata service (169.254.169.254): never allowed.
            raise BlockedURL(f"blocked host {host!r}: it resolves to {ip}, a link-local/special address")
        if not ip.is_global and host not in self.private_ok_hosts:
            raise BlockedURL(
                f"blocked host {host!r}: it resolves to the non-public address {ip} "
                "(only the configured instance's host, or one named in PIXTAG_ALLOW_PRIVATE_HOSTS, may)"
            )


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (one DNS lookup), IPv4 first."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise TransientError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    found = {info[4][0] for info in infos}
    return sorted(found, key=lambda a: (":" in a, a))


class _GuardedConnection:
    """urllib3 connection mix-in: resolve once, check, connect to exactly a checked address.

    urllib3 keeps ``self.host`` (the name) for the Host header, SNI and certificate checks; only
    the socket's address comes from here.
    """

    policy: ClassVar[AddressPolicy]
    # Provided by urllib3's HTTPConnection:
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        addresses = self.policy.checked_addresses(self.host, self.port)
        error: Exception | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port), self.timeout,
                    source_address=self.source_address, socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"connection to {self.host} timed out")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"failed to connect to {self.host}: {exc}")  # type: ignore[arg-type]
            else:
                log.debug("connected to %s at %s:%d", self.host, address, self.port)
                return sock
        raise error or NewConnectionError(self, f"no address for {self.host}")  # type: ignore[arg-type]


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections go through :class:`_GuardedConnection` (and never
    through a proxy, which would connect on pixtag's behalf to an unchecked address)."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any):
        attrs = {"policy": policy}
        http_conn = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), attrs)
        https_conn = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), attrs)
        self._pool_classes = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise BlockedURL("blocked: pixtag does not send requests through a proxy")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --------------------------------------------------------------------------------------------
@dataclass
class Fetched:
    """A completed response: status, headers, body bytes and the final URL."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    parsed: Any = None  # what ``request(parse=...)`` made of the body

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class HttpSession:
    """A requests session with throttle, retries, timeouts, size caps and the address guard."""

    def __init__(
        self,
        *,
        policy: AddressPolicy,
        rate: float | None = None,
        timeout: float = 20.0,
        max_retries: int = 5,
        max_retry_after: float = 120.0,
        max_bytes: int = 10_000_000,
        pool_size: int = 10,
        headers: dict[str, str] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        fatal_markers: tuple[bytes, ...] = (),
        limiter: RateLimiter | None = None,
    ):
        self.policy = policy
        self.limiter = limiter or RateLimiter(rate)
        self.sent: list[float] = []  # times of this session's throttled requests
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self._backoff = wait_exponential_jitter(initial=backoff_initial, max=backoff_max)
        self._session = requests.Session()
        adapter = GuardedAdapter(policy, pool_connections=4, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.trust_env = False  # never route through an environment proxy
        self._auth: dict[str, str] = {}
        if headers:
            self._session.headers.update(headers)
        self.retries = 0
        # A 5xx whose body holds one of these is final, not transient (Pixelfed answers a
        # missing token with HTTP 500 {"error":"Unauthenticated."}).
        self.fatal_markers = fatal_markers

    def set_bearer(self, token: str | None) -> None:
        logs.register_secret(token)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def __repr__(self) -> str:
        rate = RateLimiter.MARGIN / self.limiter.interval if self.limiter.interval else None
        return f"HttpSession(rate={rate})"

    def close(self) -> None:
        self._session.close()

    # ----------------------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, HTTPError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return self._backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retry %d/%d in %.1fs after: %s",
            state.attempt_number, self.max_retries, state.next_action.sleep if state.next_action else 0, exc,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        auth: bool = True,
        throttle: bool = True,
        max_bytes: int | None = None,
        accept: str = "application/json",
        ok_statuses: Iterable[int] = (200,),
        parse: Callable[[Fetched], Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fetched:
        """Send with retries on transient failures; raise :class:`HTTPError` on the rest.

        ``parse`` runs on each completed response inside the retry loop (its result lands in
        :attr:`Fetched.parsed`): a body it rejects with a :class:`TransientError` (an HTML
        error page or JSON cut short, served with status 200) is asked for again, within the
        same bound as 429/5xx. ``headers`` are sent with this request only (an ``Idempotency-Key``
        stays the same on every retry, so a server that saw the first try refuses the second).
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        ok = set(ok_statuses)
        for attempt in retrying:
            with attempt:
                fetched = self._once(method, url, params, data, auth, throttle,
                                     max_bytes or self.max_bytes, accept, ok, headers)
                if parse is not None:
                    fetched.parsed = parse(fetched)
                return fetched
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, url: str, params: dict[str, Any] | None,
              data: dict[str, Any] | None, auth: bool, throttle: bool, max_bytes: int,
              accept: str, ok: set[int], extra: dict[str, str] | None = None) -> Fetched:
        current, hops = url, 0
        while True:
            self.policy.check_url(current, resolve_host=False)  # addresses: where it connects
            if throttle:
                self.sent.append(self.limiter.acquire())
            headers = {"Accept": accept, **(extra or {}), **(self._auth if auth else {})}
            try:
                resp = self._session.request(
                    method, current, params=params, data=data, headers=headers,
                    timeout=self.timeout, allow_redirects=False, stream=True,
                )
            except requests.Timeout:
                raise TransientError(f"{method} {describe_url(current)} timed out after {self.timeout}s") from None
            except requests.ConnectionError as exc:
                raise TransientError(
                    f"{method} {describe_url(current)} failed: {type(exc).__name__}"
                ) from None
            with resp:
                if resp.is_redirect and hops < MAX_REDIRECTS:
                    location = resp.headers.get("location", "")
                    if method == "GET" and location and not _is_login_redirect(location):
                        current, params, hops = urljoin(current, location), None, hops + 1
                        continue
                status = resp.status_code
                if status in RETRY_STATUSES:
                    excerpt = _read_excerpt(resp)
                    if not any(m in excerpt for m in self.fatal_markers):
                        raise TransientError(
                            f"{method} {describe_url(current)} returned HTTP {status}: "
                            f"{_excerpt(excerpt)}",
                            status=status,
                            retry_after=parse_retry_after(resp.headers.get("retry-after")),
                        )
                    raise HTTPError(
                        f"{method} {describe_url(current)} returned HTTP {status}: {_excerpt(excerpt)}",
                        status=status,
                    )
                body = _read_capped(resp, max_bytes, method, current)
                log.debug("%s %s -> HTTP %d, %d bytes", method, describe_url(current), status, len(body))
                fetched = Fetched(status, {k.lower(): v for k, v in resp.headers.items()}, body, current)
                if status not in ok:
                    raise HTTPError(
                        f"{method} {describe_url(current)} returned HTTP {status}: "
                        f"{_excerpt(body)}",
                        status=status,
                    )
                return fetched


def _is_login_redirect(location: str) -> bool:
    return urlsplit(location).path.rstrip("/").endswith("/login")


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ").strip()
    return logs.redact(text) + ("…" if len(body) > limit else "") if text else "(empty body)"


def _read_excerpt(resp: requests.Response, limit: int = 4096) -> bytes:
    try:
        return next(resp.iter_content(limit), b"")[:limit]
    except (requests.RequestException, StopIteration):
        return b""


def _read_capped(resp: requests.Response, max_bytes: int, method: str, url: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(
            f"{method} {describe_url(url)}: body of {int(declared)} bytes exceeds the cap of {max_bytes}"
        )
    chunks, size = [], 0
    try:
        for chunk in resp.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"{method} {describe_url(url)}: body exceeds the cap of {max_bytes} bytes"
                )
            chunks.append(chunk)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientError(f"{method} {describe_url(url)}: body cut short ({type(exc).__name__})") from None
    except requests.Timeout:
        raise TransientError(f"{method} {describe_url(url)}: body read timed out") from None
    body = b"".join(chunks)
    if declared and declared.isdigit() and len(body) < int(declared):
        raise TransientError(
            f"{method} {describe_url(url)}: body cut short ({len(body)} of {declared} bytes)"
        )
    return body
