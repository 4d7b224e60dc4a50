"""Small builders for the dataset-command tests (the dataset itself comes from
:func:`tests.helpers.make_dataset`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixtag.core import dataset
from pixtag.core.storage import Storage, open_storage
from pixtag.data.images import prepare

if TYPE_CHECKING:
    import pandas as pd

CLASSES = ("cat", "dog", "bird", "flower", "car")


def add_image(store: Storage, data: bytes, label: str, n: int) -> dict[str, Any]:
    """Prepare ``data``, store its 224x224 image and return a manifest row for it."""
    p = prepare(data)
    store.write_bytes(dataset.image_key(p.sha256), p.data)
    return {
        "post_id": f"extra-{n}", "media_id": f"extra-{n}", "account": "tester", "label": label,
        "sha256": p.sha256, "phash": p.phash, "mode": "RGB", "width": p.image.width,
        "height": p.image.height, "orig_width": p.orig_width, "orig_height": p.orig_height,
        "cropped": p.cropped, "sensitive": False, "visibility": "public",
        "created_at": "2026-11-01T00:00:00Z", "media_url": "", "license": "test",
        "path": dataset.image_key(p.sha256), "original_path": "",
    }


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file below ``root`` (relative POSIX path → digest), minus ``skip`` prefixes."""
    digests = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip):
            digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def upload_subset(root: Path, uri: str, per_class: int) -> pd.DataFrame:
    """Copy the first ``per_class`` rows of each class of a local dataset (manifest and images)
    to a storage URI, e.g. the fake S3 of the ``aws`` fixture (small: moto is slow per object).
    """
    import pandas as pd

    frame = pd.read_parquet(root / dataset.MANIFEST)
    frame = frame.groupby("label", sort=False).head(per_class).reset_index(drop=True)
    store = open_storage(uri)
    for key in frame["path"]:
        store.write_bytes(key, (root / key).read_bytes())
    store.write_parquet(dataset.MANIFEST, frame)
    return frame
