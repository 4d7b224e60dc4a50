"""Test helpers: build pixtag datasets from the labelled photos (CLASS/*.jpg)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pixtag.core.dataset import MANIFEST, MANIFEST_COLUMNS, image_key, to_frame
from pixtag.core.storage import Storage
from pixtag.data.images import ImageRejected, prepare


def class_photos(photos: Path, per_class: int | None = None,
                 classes: list[str] | None = None) -> dict[str, list[Path]]:
    """The first ``per_class`` photos (sorted) of each class folder."""
    names = classes or sorted(p.name for p in photos.iterdir() if p.is_dir())
    return {c: sorted((photos / c).glob("*.jpg"))[:per_class] for c in names}


def _row(label: str, path: Path, store: Storage) -> dict | None:
    """The manifest row of one photo, its image stored; ``None`` when pixtag would not keep it
    (as the scraper drops it: e.g. a wide photo whose centre crop is grayscale)."""
    try:
        prepared = prepare(path.read_bytes())
    except ImageRejected:
        return None
    key = image_key(prepared.sha256)
    store.write_bytes(key, prepared.data)
    return {
        "post_id": f"{label}-{path.stem}", "media_id": path.stem, "account": f"tester-{path.stem}",
        "label": label, "sha256": prepared.sha256, "phash": prepared.phash, "mode": "RGB",
        "width": prepared.image.width, "height": prepared.image.height,
        "orig_width": prepared.orig_width, "orig_height": prepared.orig_height,
        "cropped": prepared.cropped, "sensitive": False, "visibility": "public",
        "created_at": "2026-11-01T00:00:00Z", "media_url": path.resolve().as_uri(), "license": "test",
        "path": key, "original_path": "",
    }


def make_dataset(photos: Path, store: Storage, per_class: int | None = None,
                 classes: list[str] | None = None) -> list[dict]:
    """Prepare the first ``per_class`` usable photos of each class into ``store`` as a dataset
    (images/ + manifest.parquet); return its rows."""
    rows: list[dict] = []
    with ThreadPoolExecutor(4) as pool:
        for label, paths in class_photos(photos, None, classes).items():
            kept: list[dict] = []
            while paths and (per_class is None or len(kept) < per_class):
                batch = paths[:per_class - len(kept)] if per_class is not None else paths
                paths = paths[len(batch):]
                kept += [row for row in pool.map(lambda p, c=label: _row(c, p, store), batch) if row]
            rows += kept
    store.write_parquet(MANIFEST, to_frame(rows, MANIFEST_COLUMNS))
    return rows


_SHARED: dict[tuple, Path] = {}


def shared_dataset(photos: Path, per_class: int) -> Path:
    """A dataset folder built once per test session (and per ``per_class``), reused by modules.

    Tests may add features to it (that is the point: they are computed once) but must not
    change its images or manifest.
    """
    import atexit
    import shutil
    import tempfile

    from pixtag.core.storage import open_storage

    key = (str(photos), per_class)
    if key not in _SHARED:
        root = Path(tempfile.mkdtemp(prefix=f"pixtag-ds{per_class}-"))
        atexit.register(shutil.rmtree, root, True)
        make_dataset(photos, open_storage(root), per_class)
        _SHARED[key] = root
    return _SHARED[key]


def random_weights(arch: str, path: Path, seed: int = 0) -> Path:
    """Save a randomly initialised timm model's state dict (a stand-in for real weights)."""
    import timm
    import torch

    torch.manual_seed(seed)
    torch.save(timm.create_model(arch, pretrained=False).state_dict(), path)
    return path


_CHAMPIONS: dict[str, str] = {}


def shared_champion(photos: Path, per_class: int = 40) -> str:
    """The tracking URI (SQLite) of a registry whose ``pixtag@champion`` was trained once per test
    session on :func:`shared_dataset` (EfficientNet-Lite0; the bot's tests all serve it). Tests may
    read it; one that moves the alias copies the database first."""
    import atexit
    import shutil
    import tempfile

    from pixtag.core.config import load_settings
    from pixtag.model.backbones.weights import LITE0
    from pixtag.model.promotion.register import register
    from pixtag.model.training.train import train

    key = f"{photos}:{per_class}"
    if key not in _CHAMPIONS:
        root = Path(tempfile.mkdtemp(prefix="pixtag-champion-"))
        atexit.register(shutil.rmtree, root, True)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        settings = load_settings(storage=str(shared_dataset(photos, per_class)), backbone=LITE0, mlflow_uri=uri,
                                 background=0)
        decision = register(settings, train(settings)["run_id"])
        assert decision["decision"] == "promoted", decision
        _CHAMPIONS[key] = uri
    return _CHAMPIONS[key]
