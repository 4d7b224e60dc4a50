"""The features stage: every image of the dataset gets its vector in the cache, computing only the
ones it lacks. Memory stays flat as the dataset grows: computed vectors go to a shard every
:data:`~pixtag.model.features.cache.SHARD_SIZE` images and are dropped; callers that need vectors
load exactly those (:meth:`FeatureRun.vectors`), one shard at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core import logs
from pixtag.core.dataset import read_manifest
from pixtag.core.storage import Storage, open_storage
from pixtag.model.backbones.weights import cache_key, resolve_name
from pixtag.model.features.cache import SHARD_SIZE, FeaturesError, cached_sha256s, load_vectors, write_shard
from pixtag.model.features.decoding import decode_image, embed_keys

if TYPE_CHECKING:
    import pandas as pd

    from pixtag.core.config import Settings
    from pixtag.model.backbones.onnx_runtime import OnnxBackbone
    from pixtag.model.backbones.pytorch import Backbone

log = logging.getLogger(__name__)


def extractor(settings: Settings, name: str, store: Storage, key: str,
              paths: Sequence[str]) -> Backbone | OnnxBackbone:
    """The backbone on the configured runtime; an ONNX export is checked on the first few of
    the images it is about to embed (``paths``) and cached beside their features."""
    from pixtag.model.backbones.factory import create_extractor
    from pixtag.model.backbones.onnx_runtime import VERIFY_IMAGES

    def samples(size: int) -> np.ndarray:
        return np.stack([decode_image(store.read_bytes(p), size) for p in paths[:VERIFY_IMAGES]])

    return create_extractor(name, settings.weights, runtime=settings.runtime,
                            tolerance=settings.onnx_tolerance, store=store, key=key, samples=samples)


@dataclass
class FeatureRun:
    """Outcome of :func:`compute`: where the cache is and a JSON-able summary (no vectors)."""

    store: Storage
    key: str
    summary: dict[str, Any] = field(default_factory=dict)

    def vectors(self, sha256s: Sequence[str]) -> np.ndarray:
        """The cached vectors of ``sha256s``, in order (see :func:`load_vectors`)."""
        return load_vectors(self.store, self.key, sha256s)


def select(manifest: pd.DataFrame, labels: Collection[str] | None = None,
           sha256s: Collection[str] | None = None) -> pd.DataFrame:
    """Manifest rows for ``labels`` / ``sha256s`` (all when ``None``), sorted by sha256."""
    rows = manifest
    if labels is not None:
        unknown = set(labels) - set(rows["label"])
        if unknown:
            raise FeaturesError(f"labels not in the dataset: {sorted(unknown)}")
        rows = rows[rows["label"].isin(list(labels))]
    if sha256s is not None:
        rows = rows[rows["sha256"].isin(list(sha256s))]
    return rows.drop_duplicates("sha256").sort_values("sha256").reset_index(drop=True)


def compute(settings: Settings, rows: pd.DataFrame, store: Storage,
            backbone: str | None = None) -> FeatureRun:
    """Ensure every row of ``rows`` has cached features; compute only the missing ones."""
    start = time.perf_counter()
    name = resolve_name(backbone or settings.backbone, settings.weights)
    key = cache_key(name, settings.weights)
    cached = cached_sha256s(store, key)
    todo = [(s, p) for s, p in zip(rows["sha256"], rows["path"], strict=True) if s not in cached]
    del cached
    device, runtime, written = "none", "none", []
    if todo:
        model = extractor(settings, name, store, key, [p for _, p in todo])
        device, runtime = str(model.device), model.runtime
        done = 0
        parts: list[np.ndarray] = []
        pending = 0
        bar = logs.progress(total=len(todo), desc=f"features {name}", unit="img")
        for vectors in embed_keys(model, store, [p for _, p in todo], settings.batch_size):
            bar.update(len(vectors))
            parts.append(vectors)
            pending += len(vectors)
            if pending >= SHARD_SIZE or done + pending == len(todo):
                shas = [s for s, _ in todo[done:done + pending]]
                written.append(write_shard(store, key, shas, np.concatenate(parts)))
                done += pending
                parts, pending = [], 0  # the vectors are on storage now: drop them
                log.info("features %s: %d/%d computed", key, done, len(todo))
        bar.close()
    seconds = time.perf_counter() - start
    summary = {
        "backbone": name,
        "cache_key": key,
        "storage": store.uri,
        "device": device,
        "runtime": runtime,
        "images": len(rows),
        "computed": len(todo),
        "cached": len(rows) - len(todo),
        "seconds": round(seconds, 3),
        "shards_written": written,
    }
    log.info("features %s: %d images, %d computed, %d cached, %.1fs on %s (%s)", key, len(rows),
             len(todo), len(rows) - len(todo), seconds, device, runtime)
    return FeatureRun(store, key, summary)


def features(settings: Settings, *, labels: Collection[str] | None = None,
             backbone: str | None = None, store: Storage | None = None,
             sha256s: Collection[str] | None = None) -> dict[str, Any]:
    """Compute and cache the features of the dataset at ``settings.storage``.

    ``labels`` restricts the run to some classes (one Airflow task per class). Returns a small
    JSON-able summary (counts computed/cached, seconds, device, backbone, storage), never vectors.
    """
    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    rows = select(read_manifest(store), labels, sha256s)
    summary = compute(settings, rows, store, backbone).summary
    summary["labels"] = sorted(set(rows["label"]))
    return summary
