"""SSRF through DNS: media hosts whose names resolve to metadata, loopback, private, carrier-NAT
and IPv6 local addresses, a redirect to one of them, and a name that rebinds between the check
and the connection. (Literal addresses, schemes and redirects: test_hostile_media.py.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pixtag import dataset
from pixtag.config import load_settings
from pixtag.http import AddressPolicy, BlockedURL, HttpSession
from pixtag.scrape import scrape
from pixtag.storage import LocalStorage
from tests.reliability.cases import DNS_TRAPS, FAST_RETRIES
from tests.scripted_server import Reply, scripted

pytestmark = pytest.mark.usefixtures("wordnet")
PUBLIC = "93.184.216.34"
REBIND = "rebind.evil.example"


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Callable[[], str]]) -> list[str]:
    """Resolve the names in ``answers`` (each call asks its function again); the rest as usual."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(name)
        address = answers[name]()
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("host", list(DNS_TRAPS))
def test_a_name_resolving_to_a_forbidden_address_is_blocked(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {host: lambda h=host: DNS_TRAPS[h]})
    with pytest.raises(BlockedURL, match="resolves to") as err:
        AddressPolicy({host}).check_url(f"http://{host}/storage/m/x.jpg")
    assert repr(host) in str(err.value)  # the message names the host and the address


def test_the_metadata_address_is_blocked_even_for_a_host_allowed_to_be_private(
        monkeypatch: pytest.MonkeyPatch) -> None:
    host = "metadata.evil.example"
    fake_dns(monkeypatch, {host: lambda: DNS_TRAPS[host]})
    with pytest.raises(BlockedURL, match="link-local"):
        AddressPolicy({host}, private_ok_hosts={host}).check_url(f"http://{host}/latest/meta-data/")


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``rebind.evil.example``: public on the first lookup, 127.0.0.1 on every later one."""
    first = iter([PUBLIC])
    yield fake_dns(monkeypatch, {REBIND: lambda: next(first, "127.0.0.1")})


def test_a_name_that_rebinds_after_the_check_is_caught_on_the_connected_socket(rebinding: list[str]) -> None:
    with scripted(lambda p, n: Reply(200, b"secret", {"Content-Type": "image/jpeg"})) as (url, seen):
        port = urlsplit(url).port
        session = HttpSession(policy=AddressPolicy({REBIND}), max_retries=0)
        with pytest.raises(BlockedURL, match="non-public address 127.0.0.1"):
            session.request("GET", f"http://{REBIND}:{port}/internal.jpg", auth=False)
    assert len(rebinding) >= 2  # checked once (public), connected after a second lookup


def test_dns_traps_through_the_whole_scrape(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Media URLs on every trap name, allowed as media hosts (so only resolution can stop them),
    a redirect from the instance to one of them, and the rebinding name: all dropped as
    ``blocked_url``; the one honest image is kept."""
    names = list(DNS_TRAPS)
    first = iter([PUBLIC])
    fake_dns(monkeypatch, {**{h: (lambda h=h: DNS_TRAPS[h]) for h in names},
                           REBIND: lambda: next(first, "127.0.0.1")})
    ok = sorted((photos / "cat").glob("*.jpg"))[0].read_bytes()

    def handler(path: str, n: int) -> Reply:
        parts = urlsplit(path)
        if parts.path == "/api/v1/timelines/tag/cat" and "max_id" not in parse_qs(parts.query):
            return Reply(200, json.dumps([status(i, url.format(base=base, port=port))
                                          for i, url in enumerate(urls)]).encode())
        if parts.path == "/m/ok":
            return Reply(200, ok, {"Content-Type": "image/jpeg"})
        if parts.path == "/m/redirect":
            return Reply(302, b"", {"Location": f"http://private.evil.example:{port}/m/ok"})
        if parts.path.startswith("/m/"):  # only reachable through a forbidden name
            return Reply(200, ok[:-1] + b"\xd9", {"Content-Type": "image/jpeg"})
        return Reply(200, b"[]")

    with scripted(handler) as (base, seen):
        port = urlsplit(base).port
        urls = ["{base}/m/ok", "{base}/m/redirect", f"http://{REBIND}:{{port}}/m/rebound"]
        urls += [f"http://{h}:{{port}}/m/{h}" for h in names]
        settings = load_settings(instance_url=base, token="dns-test-token", request_rate=100,
                                 allow_private_hosts=["127.0.0.1"],
                                 allowed_media_hosts=[*names, REBIND], max_retries=0,
                                 storage=str(tmp_path / "store"), **FAST_RETRIES)
        scrape(settings, ["cat"], per_class=10, out=str(tmp_path / "ds"), progress=False)
    store = LocalStorage(tmp_path / "ds")
    manifest, dropped = store.read_parquet(dataset.MANIFEST), store.read_parquet(dataset.DROPPED)
    assert list(manifest["media_id"]) == ["0"]
    reasons = dict(zip(dropped["media_id"], dropped["reason"], strict=True))
    assert reasons == {str(i): "blocked_url" for i in range(1, len(urls))}
    # Only the rebinding name ever reached a socket (and its answer was refused); no other
    # forbidden name was connected to.
    assert {s.path for s in seen if s.path.startswith("/m/")} <= {"/m/ok", "/m/redirect", "/m/rebound"}


def status(i: int, url: str) -> dict[str, Any]:
    return {"id": str(1000 - i), "created_at": "2026-10-01T10:00:00.000Z", "visibility": "public",
            "sensitive": False, "spoiler_text": "", "content": "", "tags": [{"name": "cat"}],
            "account": {"id": str(i), "username": f"u{i}", "acct": f"u{i}", "locked": False, "note": ""},
            "media_attachments": [{"id": str(i), "type": "image", "url": url}]}
