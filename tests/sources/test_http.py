import itertools
import time

import pytest

from pixtag.sources.http import (
    AddressPolicy,
    BlockedURL,
    HTTPError,
    HttpSession,
    RateLimiter,
    ResponseTooLarge,
    TransientError,
    max_rate,
    parse_retry_after,
)
from tests.scripted_server import Reply, scripted

LOCAL = AddressPolicy({"127.0.0.1"}, {"127.0.0.1"})


def session(**kw) -> HttpSession:
    opts = dict(policy=LOCAL, rate=None, timeout=2, max_retries=3, backoff_initial=0.05, backoff_max=0.1)
    opts.update(kw)
    return HttpSession(**opts)


def test_429_with_retry_after_is_honoured() -> None:
    script = {0: Reply(429, b"slow down", {"Retry-After": "1"})}
    with scripted(lambda p, n: script.get(n, Reply(200, b"[]"))) as (url, seen):
        got = session().request("GET", url + "/x")
    assert got.content == b"[]"
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95


def test_retry_after_is_capped() -> None:
    script = {0: Reply(503, b"", {"Retry-After": "3600"})}
    with scripted(lambda p, n: script.get(n, Reply(200, b"{}"))) as (url, seen):
        t = time.monotonic()
        session(max_retry_after=0.2).request("GET", url)
    assert time.monotonic() - t < 2


def test_retries_are_bounded_then_a_clear_error() -> None:
    with scripted(lambda p, n: Reply(502, b"bad gateway")) as (url, seen):
        with pytest.raises(TransientError, match="HTTP 502"):
            session(max_retries=2).request("GET", url + "/api/v1/x")
    assert len(seen) == 3


def test_client_errors_are_not_retried() -> None:
    with scripted(lambda p, n: Reply(404, b'{"error":"Record not found"}')) as (url, seen):
        with pytest.raises(HTTPError) as err:
            session().request("GET", url + "/api/v1/statuses/1")
    assert err.value.status == 404
    assert "Record not found" in str(err.value)
    assert len(seen) == 1


def test_fatal_marker_on_5xx_is_not_retried() -> None:
    with scripted(lambda p, n: Reply(500, b'{"error":"Unauthenticated."}')) as (url, seen):
        with pytest.raises(HTTPError) as err:
            session(fatal_markers=(b"Unauthenticated",)).request("GET", url)
    assert not isinstance(err.value, TransientError)
    assert len(seen) == 1


def test_timeout_is_retried_then_reported() -> None:
    with scripted(lambda p, n: Reply(200, b"{}", delay=1.0)) as (url, seen):
        with pytest.raises(TransientError, match="timed out"):
            session(timeout=0.2, max_retries=1).request("GET", url)
    assert len(seen) == 2


def test_body_larger_than_cap_is_refused() -> None:
    with scripted(lambda p, n: Reply(200, b"x" * 5000)) as (url, _):
        with pytest.raises(ResponseTooLarge, match="cap of 1000"):
            session(max_bytes=1000).request("GET", url)


def test_truncated_body_is_a_transient_error() -> None:
    with scripted(lambda p, n: Reply(200, b"abc", declared_length=100)) as (url, seen):
        with pytest.raises(TransientError, match="cut short"):
            session(max_retries=1).request("GET", url)
    assert len(seen) == 2


def test_throttle_spaces_requests() -> None:
    with scripted(lambda p, n: Reply(200, b"{}")) as (url, seen):
        s = session(rate=5)
        for _ in range(6):
            s.request("GET", url)
    gaps = [b.at - a.at for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 0.18
    assert max_rate(s.sent) <= 5
    # As the server counts them: at most 5 in any second, with the margin that covers jitter.
    assert max_rate([r.at for r in seen]) <= 5


def test_limiters_are_shared_per_instance_and_rate() -> None:
    a = RateLimiter.shared("https://a.example", 5.0)
    assert RateLimiter.shared("https://a.example", 5.0) is a
    assert RateLimiter.shared("https://b.example", 5.0) is not a
    assert RateLimiter.shared("https://a.example", 2.0) is not a


def test_sessions_sharing_a_limiter_keep_to_the_rate_together() -> None:
    limiter = RateLimiter(10)
    with scripted(lambda p, n: Reply(200, b"{}")) as (url, seen):
        first, second = session(limiter=limiter), session(limiter=limiter)
        for _ in range(6):
            first.request("GET", url)
            second.request("GET", url)
    assert max_rate([r.at for r in seen]) <= 10
    assert len(first.sent) == len(second.sent) == 6


def test_token_travels_in_a_header_never_in_errors() -> None:
    with scripted(lambda p, n: Reply(403, b"forbidden")) as (url, seen):
        s = session()
        s.set_bearer("tok-very-secret-123")
        with pytest.raises(HTTPError) as err:
            s.request("GET", url + "/api/v1/timelines/tag/cat")
    assert seen[0].headers["Authorization"] == "Bearer tok-very-secret-123"
    assert "tok-very-secret-123" not in str(err.value)
    assert "tok-very-secret-123" not in repr(s)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/x.jpg",
        "http://[::1]/x.jpg",
        "http://localhost/x.jpg",
        "gopher://example.org/",
    ],
)
def test_guard_blocks_private_and_odd_urls(url: str) -> None:
    policy = AddressPolicy(any_host=True)
    with pytest.raises(BlockedURL):
        policy.check_url(url)


def test_guard_blocks_hosts_not_allowed() -> None:
    with pytest.raises(BlockedURL, match="not an allowed host"):
        AddressPolicy({"pixelfed.social"}).check_url("https://evil.example/x.jpg")


def test_loopback_needs_an_explicit_allowance() -> None:
    with scripted(lambda p, n: Reply(200, b"{}")) as (url, _):
        with pytest.raises(BlockedURL, match="non-public address 127.0.0.1"):
            session(policy=AddressPolicy({"127.0.0.1"})).request("GET", url)
        session(policy=AddressPolicy({"127.0.0.1"}, {"127.0.0.1"})).request("GET", url)


def test_redirect_to_a_forbidden_address_is_blocked() -> None:
    to_metadata = Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    with scripted(lambda p, n: to_metadata) as (url, _):
        with pytest.raises(BlockedURL, match="169.254.169.254"):
            session().request("GET", url + "/media.jpg")


def test_redirect_within_allowed_host_is_followed() -> None:
    script = {"/a.jpg": Reply(301, b"", {"Location": "/b.jpg"})}
    with scripted(lambda p, n: script.get(p, Reply(200, b"img", {"Content-Type": "image/jpeg"}))) as (url, seen):
        got = session().request("GET", url + "/a.jpg")
    assert got.content == b"img" and got.url.endswith("/b.jpg")
    assert [s.path for s in seen] == ["/a.jpg", "/b.jpg"]


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0 + 1


def test_rate_limiter_max_rate_counts_half_open_windows() -> None:
    assert max_rate([0.0, 0.5, 1.0, 1.5]) == 2
