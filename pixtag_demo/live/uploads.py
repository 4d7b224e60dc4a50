"""Uploaded files as Pixelfed's validation sees them: the MIME type sniffed from the bytes
(Laravel's ``mimetypes`` rule asks libmagic, not the client's Content-Type), the size cap, and
the pixel size read from the header only.

The bytes are never decoded: a truncated JPEG or a decompression bomb is stored and served as
sent, because a client (the bot) must be tested against exactly those.
"""

from __future__ import annotations

import io
import warnings
from urllib.parse import urlsplit

from PIL import Image

MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "video/mp4")  # MEDIA_TYPES (+ mp4)
MAX_PHOTO_SIZE_KB = 15000  # MAX_PHOTO_SIZE, in KB as Laravel's ``max`` rule counts files
MAX_ALTEXT_LENGTH = 1000  # PF_MEDIA_MAX_ALTTEXT_LENGTH
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "video/mp4": "mp4"}


def sniff_mime(data: bytes) -> str:
    """The MIME type libmagic would report for the first bytes (the types Pixelfed accepts, plus
    a few it refuses); ``application/x-empty`` for no bytes."""
    if not data:
        return "application/x-empty"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM":
        return "image/bmp"
    if data.lstrip()[:5].lower() in (b"<?xml", b"<svg ") or b"<svg" in data[:256].lower():
        return "image/svg+xml"
    return "application/octet-stream"


def header_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the image header (no decoding); (None, None) when unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Exception:  # a bomb, a cut header, not an image: size unknown
        return None, None


def mime_from_url(url: str) -> str:
    """A remote attachment's type from its file name (what a remote server announced)."""
    path = urlsplit(url).path.lower()
    for mime, ext in EXTENSIONS.items():
        if path.endswith("." + ext) or (ext == "jpg" and path.endswith(".jpeg")):
            return mime
    return "image/jpeg"
