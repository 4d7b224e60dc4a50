"""Image checks and the study's preprocessing, as pure functions on bytes.

``prepare`` turns downloaded bytes into the 224x224 RGB image the model sees, or raises
:class:`ImageRejected` with a machine-readable reason. It never trusts the declared content
type: the bytes are identified by Pillow, decoded fully, and checked for animation,
decompression bombs and grayscale content.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pixtag.core.errors import PixtagError

ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
ASPECT_RANGE = (0.9, 1.1)
GRAY_MEAN_SPREAD = 1.0  # mean of max(|R-G|,|G-B|,|R-B|) below this ...
GRAY_P99_SPREAD = 6.0  # ... and its 99th percentile below this: grayscale content
#: Bumped whenever what :func:`prepare` accepts changes; images kept under an older version are
#: judged again (from their stored original) by the scraper.
CHECKS_VERSION = 2


class ImageRejected(PixtagError):
    """The bytes are not an image pixtag may train on; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Prepared:
    """A decoded, checked and resized image."""

    sha256: str  # of the original bytes
    ext: str  # extension for the original's format
    phash: str  # 64-bit perceptual hash of the whole (upright) image, 16 hex digits
    orig_width: int
    orig_height: int
    orig_mode: str
    cropped: bool
    data: bytes  # the size x size RGB image, JPEG-encoded (quality 95, 4:4:4)
    image: Image.Image


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, max_pixels: int, draft: int | None = None) -> tuple[Image.Image, str, tuple[int, int]]:
    """Identify, bound and fully decode ``data``.

    Returns the upright image, its format and its upright original size. With ``draft``, a
    JPEG is decoded at the smallest DCT scale that keeps both sides >= ``draft`` pixels (2-8x
    less work on the 1080 px images Pixelfed serves; the stored original is untouched).
    """
    if not data:
        raise ImageRejected("not_image", "empty body")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format or ""
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    "decompression_bomb", f"{width}x{height} exceeds {max_pixels} pixels"
                )
            if fmt not in ALLOWED_FORMATS:
                raise ImageRejected("unsupported_format", fmt or "unknown")
            if getattr(image, "n_frames", 1) > 1:
                raise ImageRejected("animated", f"{fmt} with {image.n_frames} frames")
            if draft and fmt == "JPEG" and image.mode in ("RGB", "L"):
                image.draft(image.mode, (draft, draft))
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", str(exc)[:120]) from None
    except UnidentifiedImageError:
        raise ImageRejected("not_image", "bytes are not a known image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("corrupt_image", f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        width, height = height, width
    image = ImageOps.exif_transpose(image) or image
    return image, fmt, (width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: alpha composited on white, CMYK/palette converted, 16-bit scaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def small_copy(image: Image.Image, side: int = 64) -> Image.Image:
    """A side x side RGB copy (aspect ignored), cheap to make: for colour and phash checks."""
    return to_rgb(image).resize((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)


def is_grayscale(image: Image.Image) -> bool:
    """True when the colour channels are practically equal (judged on content, not mode)."""
    if image.mode in GRAY_MODES:
        return True
    arr = np.asarray(small_copy(image), dtype=np.int16)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    spread = np.maximum(np.maximum(np.abs(r - g), np.abs(g - b)), np.abs(r - b))
    return bool(spread.mean() < GRAY_MEAN_SPREAD and np.percentile(spread, 99) < GRAY_P99_SPREAD)


def square_resize(image: Image.Image, size: int = 224,
                  aspect_range: tuple[float, float] = ASPECT_RANGE) -> tuple[Image.Image, bool]:
    """The study's rule: aspect in range → plain resize; else centre-crop the short side."""
    width, height = image.size
    aspect = width / height
    cropped = not (aspect_range[0] <= aspect <= aspect_range[1])
    if cropped:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0), cropped


def phash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) of the whole image, as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(small_copy(image)))


def phash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def encode_jpeg(image: Image.Image) -> bytes:
    """High-quality, 4:4:4 JPEG: ~5x smaller and ~8x faster to write than PNG, deterministic."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


def prepare(data: bytes, *, max_pixels: int = 40_000_000, size: int = 224,
            reject_grayscale: bool = True) -> Prepared:
    """Bytes → checked, upright, RGB, size x size image (raises :class:`ImageRejected`)."""
    image, fmt, (orig_width, orig_height) = decode(data, max_pixels, draft=size)
    orig_mode = image.mode
    if reject_grayscale and orig_mode in GRAY_MODES:
        raise ImageRejected("grayscale", f"mode {orig_mode}")
    rgb = to_rgb(image)
    resized, cropped = square_resize(rgb, size)
    stored = encode_jpeg(resized)
    # Judged on the image that is stored and trained on, as validation judges it: a photo whose
    # only colour is at the edges can be grayscale once centre-cropped.
    if reject_grayscale and is_grayscale(Image.open(io.BytesIO(stored))):
        raise ImageRejected("grayscale", f"mode {orig_mode}, channels practically equal"
                            + (" after the centre crop" if cropped else ""))
    return Prepared(
        sha256=sha256_hex(data),
        ext=ALLOWED_FORMATS[fmt],
        phash=phash(rgb),
        orig_width=orig_width,
        orig_height=orig_height,
        orig_mode=orig_mode,
        cropped=cropped,
        data=stored,
        image=resized,
    )


class PhashIndex:
    """Perceptual hashes seen so far; finds one within a Hamming distance (vectorised)."""

    def __init__(self, distance: int):
        self.distance = distance
        self._hashes = np.empty(0, dtype=np.uint64)
        self._keys: list[str] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, phash_hex: str, key: str) -> None:
        self._hashes = np.append(self._hashes, np.uint64(int(phash_hex, 16)))
        self._keys.append(key)

    def nearest(self, phash_hex: str) -> tuple[str, int] | None:
        """The closest stored key within ``distance``, with its distance, else ``None``."""
        if not self._keys:
            return None
        dist = np.bitwise_count(self._hashes ^ np.uint64(int(phash_hex, 16)))
        best = int(np.argmin(dist))
        return (self._keys[best], int(dist[best])) if dist[best] <= self.distance else None


def near_duplicate_pairs(phashes: list[str], distance: int) -> list[tuple[int, int, int]]:
    """All index pairs (i < j) whose hashes are within ``distance`` (i, j, distance)."""
    values = np.array([int(h, 16) for h in phashes], dtype=np.uint64)
    pairs = []
    for i in range(len(values) - 1):
        dist = np.bitwise_count(values[i + 1:] ^ values[i])
        for j in np.nonzero(dist <= distance)[0]:
            pairs.append((i, i + 1 + int(j), int(dist[j])))
    return pairs
