"""Derived and synthetic images of the demo world (deterministic bytes, encoded with Pillow)."""

from __future__ import annotations

import io
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps


@lru_cache(maxsize=512)
def synthetic_image(seed: int, number: int, width: int, height: int, fmt: str) -> bytes:
    """A deterministic abstract picture (soft colour field plus shapes) for off-topic posts."""
    rng = random.Random(f"synthetic:{seed}:{number}")
    grid = Image.new("RGB", (4, 3))
    grid.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(12)])
    img = grid.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(10, max(11, min(width, height) // 4))
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    return encode(img, "PNG" if fmt == "png" else "JPEG", quality=82)


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def fit_jpeg(data: bytes, side: int) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        return encode(img, "JPEG", quality=80)


def grayscale(path: Path, mode: str) -> Image.Image:
    with Image.open(path) as img:
        gray = ImageOps.exif_transpose(img).convert("L")
    return gray if mode == "L" else gray.convert("RGB")


def near_duplicate(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        size = (max(1, round(img.width * 0.75)), max(1, round(img.height * 0.75)))
        return img.resize(size, Image.Resampling.LANCZOS)


def animated_gif(path: Path) -> bytes:
    with Image.open(path) as img:
        base = ImageOps.exif_transpose(img).convert("RGB")
    base.thumbnail((320, 320))
    frames = [f.quantize(128, method=Image.Quantize.FASTOCTREE) for f in
              (base, ImageEnhance.Brightness(base).enhance(1.3), ImageOps.mirror(base))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=400,
                   loop=0)
    return buf.getvalue()


def fake_mp4(rng: random.Random) -> bytes:
    """Bytes that start like an MP4 (an ``ftyp`` box) and are not an image."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + b"\x00\x00\x00\x08free" + bytes(rng.randrange(256) for _ in range(2048))


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size
