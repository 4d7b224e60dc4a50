"""The dataset layout shared by every stage (scrape writes it; review, describe, validate,
features and train read it).

A dataset lives under one storage root (a folder or ``s3://bucket/prefix``)::

    manifest.parquet            one row per kept image (MANIFEST_COLUMNS)
    dropped.parquet             one row per rejected post or media, with its reason
    originals/ab/<sha256>.<ext> the downloaded bytes, content-addressed (sha256 of the bytes)
    images/ab/<sha256>.jpg      the 224x224 RGB image the model sees (study's resize rule)
    exclusions.json             {"sha256": [...], "post_id": [...]} excluded by a reviewer
    dataset.json                {"classes": [...], "background": N}: what the scrape collected
    reports/                    contact sheets, figures, Data Docs

``sha256`` is the hash of the original bytes and is the image's identity everywhere
(feature cache keys, near-duplicate checks, exclusions).

An image may carry several class labels (a post tagged with two classes, kept under
``two_class_posts: all_tags``): ``label`` is still one of them (the class whose timeline it was
collected from: splits are stratified on it, contact sheets file it there) and the optional
column ``labels`` (:data:`LABELS`) lists them all, sorted and comma-separated. A manifest
without that column (written before it existed, or by hand) reads as one label per image
(:func:`label_sets`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixtag.core.storage import Storage

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.parquet"
DROPPED = "dropped.parquet"
EXCLUSIONS = "exclusions.json"
INFO = "dataset.json"
# The label of the images that show none of the classes (open set, pixtag.model.classifier.openset).
BACKGROUND = "_background"  # reserved: tags normalise to letters only, so no tag is spelt so

MANIFEST_COLUMNS: dict[str, str] = {
    "post_id": "string",
    "media_id": "string",
    "account": "string",
    "label": "string",
    "sha256": "string",
    "phash": "string",  # 16 hex digits (64-bit DCT perceptual hash, imagehash.phash)
    "mode": "string",  # mode of the stored image: always RGB
    "width": "int64",  # of the stored image: image_size
    "height": "int64",
    "orig_width": "int64",
    "orig_height": "int64",
    "cropped": "bool",
    "sensitive": "bool",
    "visibility": "string",
    "created_at": "string",
    "media_url": "string",
    "license": "string",
    "path": "string",  # key of images/...jpg relative to the dataset root
    "original_path": "string",
}

#: Optional manifest column: every class label of the image, sorted, comma-separated (``"cat,dog"``);
#: missing, empty or null means ``label`` alone. Not in MANIFEST_COLUMNS, so older manifests still
#: pass the manifest suite's column check.
LABELS = "labels"
LABEL_SEPARATOR = ","

DROPPED_COLUMNS: dict[str, str] = {
    "post_id": "string",
    "media_id": "string",
    "account": "string",
    "tag": "string",
    "label": "string",
    "reason": "string",
    "detail": "string",
    "media_url": "string",
}


def join_labels(labels: Any) -> str:
    """The ``labels`` value of an image: its labels, sorted and de-duplicated, comma-separated."""
    return LABEL_SEPARATOR.join(sorted(set(labels)))


def label_sets(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    """Each row's class labels: ``labels`` where the manifest has it (``label`` always among
    them), else ``(label,)``."""
    primary = [str(v) for v in frame["label"]]
    if LABELS not in frame:
        return [(p,) for p in primary]
    out = []
    for p, value in zip(primary, frame[LABELS], strict=True):
        extra = [v for v in str(value).split(LABEL_SEPARATOR) if v] if isinstance(value, str) else []
        out.append(tuple(sorted({p, *extra})))
    return out


def image_key(sha256: str) -> str:
    return f"images/{sha256[:2]}/{sha256}.jpg"


def original_key(sha256: str, ext: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}.{ext.lstrip('.')}"


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def to_frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """Rows as a frame with exactly ``columns`` in order and dtype (extra keys are kept last)."""
    import pandas as pd

    if not rows:
        return empty_frame(columns)
    frame = pd.DataFrame(rows)
    for col, dtype in columns.items():
        if col not in frame:
            frame[col] = None
        frame[col] = frame[col].astype(dtype)
    extra = [c for c in frame.columns if c not in columns]
    return frame[list(columns) + extra]


def read_manifest(store: Storage) -> pd.DataFrame:
    """The manifest, minus rows a reviewer excluded."""
    frame = store.read_parquet(MANIFEST)
    excl = read_exclusions(store)
    if excl["sha256"] or excl["post_id"]:
        frame = frame[~frame["sha256"].isin(excl["sha256"]) & ~frame["post_id"].isin(excl["post_id"])]
    return frame.reset_index(drop=True)


def read_exclusions(store: Storage) -> dict[str, set[str]]:
    if not store.exists(EXCLUSIONS):
        return {"sha256": set(), "post_id": set()}
    data = store.read_json(EXCLUSIONS)
    return {"sha256": set(data.get("sha256", [])), "post_id": set(data.get("post_id", []))}


def write_info(store: Storage, classes: list[str], background: int) -> None:
    """Record the class set and the background images wanted (later stages need no options)."""
    store.write_json(INFO, {"classes": list(classes), "background": int(background)})


def read_info(store: Storage) -> dict[str, Any]:
    """What :func:`write_info` recorded, or ``{}`` for a dataset written otherwise."""
    return dict(store.read_json(INFO)) if store.exists(INFO) else {}
