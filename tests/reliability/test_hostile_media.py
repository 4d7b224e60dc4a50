"""Hostile media and SSRF through the whole scrape: a scripted instance whose posts point at
corrupt, oversized, lying, animated, odd-mode and rotated images, and at addresses pixtag must
never fetch. Each is either handled correctly (converted, rotated) or dropped with its reason."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.scrape import scrape
from tests.scripted_server import Reply, scripted

pytestmark = pytest.mark.usefixtures("wordnet")
TOKEN = "hostile-test-token-123"


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def media_cases(photos: Path) -> dict[str, tuple[bytes, str, str | None]]:
    """name -> (bytes, content type, expected drop reason or None when it must be kept)."""
    files = sorted((photos / "cat").glob("*.jpg"))
    img = [Image.open(f).convert("RGB").resize((256, 256)) for f in files[:12]]
    exif = Image.Exif()
    exif[0x0112] = 6
    wide = img[7].resize((300, 200))
    gray16 = Image.fromarray(np.asarray(img[8].convert("L"), dtype=np.uint16) * 257)
    rgba = img[5].convert("RGBA")
    rgba.putalpha(180)
    frames = [img[9].resize((64, 64)), img[10].resize((64, 64))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    good_png = _encode(img[0], "PNG")
    return {
        "ok": (files[11].read_bytes(), "image/jpeg", None),
        "corrupt_jpeg": (files[1].read_bytes()[:400] + b"\x00garbage" * 50, "image/jpeg", "corrupt_image"),
        "corrupt_png": (good_png[:60] + b"\xff" * 40 + good_png[100:200], "image/png", "corrupt_image"),
        "bomb": (_png_header_bomb(30000, 30000), "image/png", "decompression_bomb"),
        "huge": (b"\xff\xd8" + b"\x00" * 400_000, "image/jpeg", "too_large"),
        "html_as_jpeg": (b"<html><body>not an image</body></html>", "image/jpeg", "not_image"),
        "jpeg_as_html": (_encode(img[2], "JPEG", quality=90), "text/html", None),
        "animated": (gif.getvalue(), "image/gif", "animated"),
        "cmyk": (_encode(img[3].convert("CMYK"), "JPEG"), "image/jpeg", None),
        "palette": (_encode(img[4].quantize(128), "PNG"), "image/png", None),
        "alpha": (_encode(rgba, "PNG"), "image/png", None),
        "gray16": (_encode(gray16, "PNG"), "image/png", "grayscale"),
        "rotated": (_encode(wide, "JPEG", exif=exif.tobytes()), "image/jpeg", None),
    }


SSRF_URLS = {
    "metadata": "http://169.254.169.254/latest/meta-data/iam.jpg",
    "private": "http://10.1.2.3/storage/m/x.jpg",
    "other_host": "http://media.evil.example/x.jpg",
    "loopback_alias": "http://localhost:{port}/m/ok",
    "file": "file:///etc/passwd",
    "redirect_to_metadata": "{base}/m/redirect",
}


def status(i: int, url: str) -> dict:
    return {"id": str(1000 - i), "created_at": "2026-10-01T10:00:00.000Z", "visibility": "public",
            "sensitive": False, "spoiler_text": "", "content": "", "tags": [{"name": "cat"}],
            "account": {"id": str(i), "username": f"u{i}", "acct": f"u{i}", "locked": False, "note": ""},
            "media_attachments": [{"id": str(i), "type": "image", "url": url}]}


def test_hostile_media_and_forbidden_addresses(photos: Path, tmp_path: Path) -> None:
    cases = media_cases(photos)
    posts: list[tuple[str, str, str | None]] = []  # (name, url template, expected)

    def handler(path: str, n: int) -> Reply:
        parts = urlsplit(path)
        if parts.path.startswith("/api/v1/timelines/tag/"):
            if "max_id" in parse_qs(parts.query) or not parts.path.endswith("/cat"):
                return Reply(200, b"[]")
            page = [status(i, url.format(base=base, port=port)) for i, (_, url, _) in enumerate(posts)]
            return Reply(200, json.dumps(page).encode())
        if parts.path.startswith("/api/"):
            return Reply(200, b"[]")
        if parts.path == "/m/redirect":
            return Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        name = parts.path.rsplit("/", 1)[-1]
        data, ctype, _ = cases[name]
        return Reply(200, data, {"Content-Type": ctype})

    with scripted(handler) as (base, seen):
        port = urlsplit(base).port
        posts += [(name, f"{{base}}/m/{name}", expected) for name, (_, _, expected) in cases.items()]
        posts += [(name, url, "blocked_url") for name, url in SSRF_URLS.items()]
        settings = load_settings(instance_url=base, token=TOKEN, allow_private_hosts=["127.0.0.1"],
                                 request_rate=50, max_image_bytes=300_000, max_retries=1, max_retry_after=0.1,
                                 storage=str(tmp_path / "store"), min_per_class=1)
        summary = scrape(settings, ["cat", "dog"], per_class=50, out=str(tmp_path / "ds"), progress=False)
    store = LocalStorage(tmp_path / "ds")
    manifest = store.read_parquet(dataset.MANIFEST)
    dropped = store.read_parquet(dataset.DROPPED)
    by_media = {row.media_id: row.reason for row in dropped.itertuples()}
    kept = set(manifest["media_id"])
    for i, (name, _, expected) in enumerate(posts):
        media_id = str(i)
        if expected is None:
            assert media_id in kept, (name, by_media.get(media_id))
        else:
            assert by_media.get(media_id) == expected, (name, by_media.get(media_id))
            assert media_id not in kept
    rotated = manifest[manifest["media_id"] == str([p[0] for p in posts].index("rotated"))].iloc[0]
    assert (rotated.orig_width, rotated.orig_height) == (200, 300)  # EXIF orientation applied
    for row in manifest.itertuples():
        with Image.open(store.local_path(row.path)) as img:
            assert img.mode == "RGB" and img.size == (224, 224)
    # Nothing was ever fetched from the redirect's target or any other forbidden address, and
    # the token went to the instance's API only, never with a media request.
    media_requests = [s for s in seen if s.path.startswith("/m/")]
    assert all("Authorization" not in s.headers for s in media_requests)
    assert summary.counts["cat"] == sum(1 for _, _, e in posts if e is None)
