import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixtag.data.images import (
    ImageRejected,
    PhashIndex,
    is_grayscale,
    near_duplicate_pairs,
    phash_distance,
    prepare,
    square_resize,
)


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(photos: Path) -> Image.Image:
    return Image.open(photos / "cat" / "cat_0001.jpg").convert("RGB")


@pytest.mark.parametrize(("size", "cropped"), [((300, 300), False), ((330, 300), False), ((400, 300), True),
                                               ((300, 500), True), ((270, 300), False), ((260, 300), True)])
def test_study_resize_rule(size: tuple[int, int], cropped: bool) -> None:
    out, was_cropped = square_resize(Image.new("RGB", size), 224)
    assert out.size == (224, 224)
    assert was_cropped is cropped


def test_centre_crop_keeps_the_centre() -> None:
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    img.paste((0, 0, 255), (100, 0, 200, 100))
    out, cropped = square_resize(img, 10)
    assert cropped
    assert np.asarray(out)[..., 2].min() > 200  # only the blue middle square is left


def test_prepare_a_real_photo(photo: Image.Image) -> None:
    data = jpeg(photo, quality=90)
    p = prepare(data)
    assert p.image.size == (224, 224) and p.image.mode == "RGB"
    assert len(p.sha256) == 64 and len(p.phash) == 16
    assert Image.open(io.BytesIO(p.data)).size == (224, 224)
    assert p.ext == "jpg"


def test_grayscale_by_content_not_only_by_mode(photo: Image.Image) -> None:
    gray_rgb = photo.convert("L").convert("RGB")
    assert is_grayscale(gray_rgb)
    assert is_grayscale(photo.convert("L"))
    assert not is_grayscale(photo)
    for data in (jpeg(gray_rgb, quality=75), jpeg(photo.convert("L"))):
        with pytest.raises(ImageRejected) as err:
            prepare(data)
        assert err.value.reason == "grayscale"


def test_grayscale_is_judged_on_the_stored_image(photo: Image.Image) -> None:
    """Colour only at the edges of a wide photo: the centre crop that is stored is grayscale."""
    gray = np.asarray(photo.convert("L").convert("RGB").resize((300, 300)))
    wide = np.concatenate([np.asarray(photo.resize((150, 300))), gray, np.asarray(photo.resize((150, 300)))], axis=1)
    assert not is_grayscale(Image.fromarray(wide))  # the whole picture has colour
    with pytest.raises(ImageRejected, match="after the centre crop") as err:
        prepare(jpeg(Image.fromarray(wide), quality=90))
    assert err.value.reason == "grayscale"
    squarish = np.concatenate([np.asarray(photo.resize((20, 300))), gray], axis=1)  # 320x300: no crop
    kept = prepare(jpeg(Image.fromarray(squarish), quality=90))
    assert not kept.cropped and not is_grayscale(Image.open(io.BytesIO(kept.data)))


def test_sepia_is_not_grayscale(photo: Image.Image) -> None:
    g = np.asarray(photo.convert("L"), dtype=np.float32)
    sepia = np.stack([g, g * 0.85, g * 0.65], axis=-1).clip(0, 255).astype(np.uint8)
    assert not is_grayscale(Image.fromarray(sepia))


def test_near_duplicates_are_close_and_other_photos_are_far(photos: Path, photo: Image.Image) -> None:
    original = prepare(jpeg(photo, quality=95)).phash
    small = photo.resize((photo.width * 3 // 4, photo.height * 3 // 4))
    near = prepare(jpeg(small, quality=60)).phash
    other = prepare((photos / "dog" / "dog_0001.jpg").read_bytes()).phash
    assert phash_distance(original, near) <= 6
    assert phash_distance(original, other) > 12
    index = PhashIndex(6)
    index.add(original, "a")
    assert index.nearest(near)[0] == "a"
    assert index.nearest(other) is None
    assert near_duplicate_pairs([original, other, near], 6) == [(0, 2, phash_distance(original, near))]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_image"),
        (b"<html>not an image</html>", "not_image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "not_image"),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as err:
        prepare(data)
    assert err.value.reason == reason


def test_truncated_jpeg_is_rejected(photo: Image.Image) -> None:
    data = jpeg(photo)
    with pytest.raises(ImageRejected) as err:
        prepare(data[: len(data) // 2])
    assert err.value.reason == "corrupt_image"


def test_decompression_bomb_is_rejected_before_decoding() -> None:
    big = encoded(Image.new("RGB", (5000, 5000), (10, 200, 30)), "PNG")
    with pytest.raises(ImageRejected) as err:
        prepare(big, max_pixels=10_000_000)
    assert err.value.reason == "decompression_bomb"


def test_animated_gif_is_rejected() -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ImageRejected) as err:
        prepare(buf.getvalue())
    assert err.value.reason == "animated"


def test_modes_are_converted(photo: Image.Image) -> None:
    small = photo.resize((120, 100))
    cmyk = prepare(jpeg(small.convert("CMYK")))
    assert cmyk.orig_mode == "CMYK" and cmyk.image.mode == "RGB"
    rgba = small.convert("RGBA")
    rgba.putalpha(128)
    assert prepare(encoded(rgba, "PNG")).image.mode == "RGB"
    assert prepare(encoded(small.quantize(64), "PNG")).orig_mode == "P"
    gray16 = Image.fromarray(np.asarray(small.convert("L"), dtype=np.uint16) * 257)
    with pytest.raises(ImageRejected, match="grayscale"):
        prepare(encoded(gray16, "PNG"))


def test_exif_rotation_is_applied(photo: Image.Image) -> None:
    wide = photo.resize((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    p = prepare(jpeg(wide, exif=exif.tobytes()))
    assert (p.orig_width, p.orig_height) == (100, 200)
