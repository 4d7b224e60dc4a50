"""The scraper's download memo: what it reuses as it is, and what it judges again."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.images import CHECKS_VERSION
from pixtag.data.scrape import Fetcher, _fetched_key


def jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def kept_under_old_checks(store: LocalStorage, url: str, data: bytes) -> None:
    """What an older scraper left: the original, the stored image and a record without ``checks``."""
    sha = hashlib.sha256(data).hexdigest()
    store.write_bytes(dataset.original_key(sha, "jpg"), data)
    store.write_bytes(dataset.image_key(sha), data)
    store.write_json(_fetched_key(url), {"sha256": sha, "ext": "jpg", "phash": "0" * 16,
                                         "content_type": "image/jpeg"})


def test_images_kept_under_older_checks_are_judged_again_offline(photos: Path, tmp_path: Path) -> None:
    photo = Image.open(photos / "car" / "car_0001.jpg").convert("RGB")
    colour = np.asarray(photo.resize((300, 300)))
    gray = np.asarray(photo.convert("L").convert("RGB").resize((300, 300)))
    edges_only = np.concatenate([colour[:, :150], gray, colour[:, 150:]], axis=1)  # 600x300: cropped
    store = LocalStorage(tmp_path / "store")
    kept_under_old_checks(store, "https://pix.example/a.jpg", jpeg(edges_only))
    kept_under_old_checks(store, "https://pix.example/b.jpg", jpeg(colour))

    fetcher = Fetcher(load_settings(storage=str(tmp_path / "store")), store, http=None)  # no network
    dropped = fetcher.fetch("https://pix.example/a.jpg")
    assert dropped["reason"] == "grayscale" and "centre crop" in dropped["detail"]
    kept = fetcher.fetch("https://pix.example/b.jpg")
    assert kept["checks"] == CHECKS_VERSION and "reason" not in kept
    assert (fetcher.downloaded, fetcher.reused) == (0, 2)
    # The new verdicts are remembered: the next run reuses them as they are.
    assert store.read_json(_fetched_key("https://pix.example/a.jpg")) == dropped
    assert Fetcher(load_settings(storage=str(tmp_path / "store")), store, http=None).fetch(
        "https://pix.example/b.jpg") == kept
