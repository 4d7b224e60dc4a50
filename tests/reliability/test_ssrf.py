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

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.scrape import scrape
from pixtag.sources.http import AddressPolicy, BlockedURL, HttpSession, TransientError
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


def test_a_name_that_rebinds_after_the_check_never_receives_a_request(rebinding: list[str]) -> None:
    """The server on 127.0.0.1 (where the name points after its first answer) counts requests:
    none arrives, because the one lookup's checked (public) address is what is connected to."""
    with scripted(lambda p, n: Reply(200, b"secret", {"Content-Type": "image/jpeg"})) as (url, seen):
        port = urlsplit(url).port
        session = HttpSession(policy=AddressPolicy({REBIND}), max_retries=1, timeout=0.3,
                              backoff_initial=0.01, backoff_max=0.01)
        # Attempt 1 connects to the public address (which does not answer here), attempt 2's own
        # lookup gives 127.0.0.1 and is refused before connecting.
        with pytest.raises(BlockedURL, match="non-public address 127.0.0.1"):
            session.request("GET", f"http://{REBIND}:{port}/internal.jpg", auth=False)
    assert seen == []
    assert rebinding == [REBIND, REBIND]  # one lookup per connection, none between check and connect


def test_a_name_resolving_to_loopback_first_is_refused_before_any_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    later = iter(["127.0.0.1"])
    asked = fake_dns(monkeypatch, {REBIND: lambda: next(later, PUBLIC)})
    with scripted(lambda p, n: Reply(200, b"secret")) as (url, seen):
        session = HttpSession(policy=AddressPolicy({REBIND}), max_retries=0)
        with pytest.raises(BlockedURL, match="non-public address 127.0.0.1"):
            session.request("GET", f"http://{REBIND}:{urlsplit(url).port}/x", auth=False)
    assert seen == [] and asked == [REBIND]


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (its own CA) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both names resolve to the server's 127.0.0.1; its certificate is for one of them only."""
    import ssl

    cert, key = _certificate(tmp_path, "pixtag.test")
    asked = fake_dns(monkeypatch, {"pixtag.test": lambda: "127.0.0.1", "other.test": lambda: "127.0.0.1"})
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with scripted(lambda p, n: Reply(200, b'{"ok": true}'), tls=tls) as (url, seen):
        port = urlsplit(url).port
        policy = AddressPolicy({"pixtag.test", "other.test"}, {"pixtag.test", "other.test"})
        session = HttpSession(policy=policy, max_retries=0, timeout=2)
        session._session.verify = str(cert)  # trust the test CA (and only it)
        got = session.request("GET", f"https://pixtag.test:{port}/api", auth=False)
        with pytest.raises(TransientError, match="SSLError"):
            session.request("GET", f"https://other.test:{port}/api", auth=False)
    assert got.content == b'{"ok": true}'
    assert [s.headers["Host"] for s in seen] == [f"pixtag.test:{port}"]  # the name, not the address
    assert asked == ["pixtag.test", "other.test"]


def test_the_configured_instance_host_is_trusted_other_private_hosts_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``allow_private_hosts``: the instance on 127.0.0.1 answers; a media host that resolves
    to a private address, and a redirect from the instance to another local name, are refused."""
    from pixtag.data.scrape import media_session
    from pixtag.sources.pixelfed import Client

    fake_dns(monkeypatch, {"private.evil.example": lambda: DNS_TRAPS["private.evil.example"],
                           "localhost.evil.example": lambda: "127.0.0.1"})

    def handler(path: str, n: int) -> Reply:
        if path == "/m/redirect":
            return Reply(302, b"", {"Location": f"http://localhost.evil.example:{port}/m/ok"})
        return Reply(200, b"img", {"Content-Type": "image/jpeg"})

    with scripted(handler) as (base, seen):
        port = urlsplit(base).port
        settings = load_settings(instance_url=base, allowed_media_hosts=["private.evil.example",
                                                                        "localhost.evil.example"],
                                 max_retries=0, **FAST_RETRIES)
        with Client(settings) as client:
            assert client.http.request("GET", base + "/api/v1/x", auth=False).status == 200
        media = media_session(settings, base)
        assert media.request("GET", base + "/m/ok", accept="image/*").content == b"img"
        with pytest.raises(BlockedURL, match="private.evil.example"):
            media.request("GET", f"http://private.evil.example:{port}/m/ok", accept="image/*")
        with pytest.raises(BlockedURL, match="localhost.evil.example"):
            media.request("GET", base + "/m/redirect", accept="image/*")
    assert [s.path for s in seen] == ["/api/v1/x", "/m/ok", "/m/redirect"]


def test_dns_traps_through_the_whole_scrape(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Media URLs on every trap name, allowed as media hosts (so only resolution can stop them),
    and a redirect from the instance to one of them: all dropped as ``blocked_url``; the
    rebinding name is connected at its checked public address (unreachable here) and never at
    127.0.0.1; the one honest image is kept."""
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
                                 storage=str(tmp_path / "store"), min_per_class=1, **FAST_RETRIES)
        scrape(settings, ["cat"], per_class=10, out=str(tmp_path / "ds"), progress=False)
    store = LocalStorage(tmp_path / "ds")
    manifest, dropped = store.read_parquet(dataset.MANIFEST), store.read_parquet(dataset.DROPPED)
    assert list(manifest["media_id"]) == ["0"]
    reasons = dict(zip(dropped["media_id"], dropped["reason"], strict=True))
    rebound = str(urls.index(f"http://{REBIND}:{{port}}/m/rebound"))
    assert reasons.pop(rebound) == "download_failed"
    assert reasons == {str(i): "blocked_url" for i in range(1, len(urls)) if str(i) != rebound}
    # No forbidden name, the rebinding one included, was ever connected to.
    assert {s.path for s in seen if s.path.startswith("/m/")} <= {"/m/ok", "/m/redirect"}


def status(i: int, url: str) -> dict[str, Any]:
    return {"id": str(1000 - i), "created_at": "2026-10-01T10:00:00.000Z", "visibility": "public",
            "sensitive": False, "spoiler_text": "", "content": "", "tags": [{"name": "cat"}],
            "account": {"id": str(i), "username": f"u{i}", "acct": f"u{i}", "locked": False, "note": ""},
            "media_attachments": [{"id": str(i), "type": "image", "url": url}]}
