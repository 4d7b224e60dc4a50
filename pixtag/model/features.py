"""Backbone features of a dataset's images, cached per (backbone, image sha256) in its storage.

Cache layout, below the dataset root::

    features/<cache key>/<shard hash>.npz   arrays ``sha256`` (str) and ``vectors`` (float32)

The cache key is the backbone name (plus a digest of a custom weights file), not the runtime:
ONNX Runtime's features agree with PyTorch's within ``settings.onnx_tolerance``, checked when the
graph is exported (:mod:`pixtag.model.runtime`; the graph is cached under ``features/<key>/onnx/``).
A run reads which sha256s every shard holds (not their vectors), computes only the images it
lacks, and writes what it computed as new shards (atomic writes, content-named, so parallel runs, e.g. one per class,
never clash). Memory stays flat as the dataset grows: computed vectors go to a shard every
:data:`SHARD_SIZE` images and are dropped; callers that need vectors load exactly those
(:meth:`FeatureRun.vectors`, :func:`load_vectors`), one shard at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core import logs
from pixtag.core.dataset import read_manifest
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.model.backbones import cache_key, resolve_name

if TYPE_CHECKING:
    import pandas as pd

    from pixtag.core.config import Settings
    from pixtag.model.backbones import Backbone
    from pixtag.model.runtime import OnnxBackbone

log = logging.getLogger(__name__)

FEATURES_DIR = "features"
SHARD_SIZE = 2048  # vectors per shard written; a crash loses at most this much work


class FeaturesError(PixtagError):
    """Features cannot be computed or are missing."""


# --- the cache -------------------------------------------------------------------------------
def shard_prefix(key: str) -> str:
    return f"{FEATURES_DIR}/{key}/"


def shards(store: Storage, key: str) -> list[str]:
    return [s for s in store.list(shard_prefix(key)) if s.endswith(".npz")]


@contextlib.contextmanager
def _open_shard(store: Storage, shard: str) -> Iterator[Any]:
    """The shard's lazy ``NpzFile`` (arrays are read when indexed); a local file is not slurped."""
    local = store.local_path(shard)
    with np.load(local if local is not None else io.BytesIO(store.read_bytes(shard)),
                 allow_pickle=False) as data:
        yield data


def read_cache(store: Storage, key: str) -> dict[str, np.ndarray]:
    """sha256 → vector, from every shard under ``features/<key>/`` (all in memory: small caches
    and tests; the stages use :func:`cached_sha256s` and :func:`load_vectors`)."""
    cache: dict[str, np.ndarray] = {}
    for shard in shards(store, key):
        with _open_shard(store, shard) as data:
            cache.update(zip(data["sha256"].tolist(), data["vectors"], strict=True))
    return cache


def cached_sha256s(store: Storage, key: str) -> set[str]:
    """The sha256s that have a vector under ``features/<key>/`` (the vectors are not read)."""
    done: set[str] = set()
    for shard in shards(store, key):
        with _open_shard(store, shard) as data:
            done.update(data["sha256"].tolist())
    return done


def load_vectors(store: Storage, key: str, sha256s: Sequence[str]) -> np.ndarray:
    """The cached vectors of ``sha256s`` in order, read shard by shard: memory holds the result
    and one shard. Raises :class:`FeaturesError` if any is missing."""
    wanted = list(dict.fromkeys(sha256s))
    slot = {s: i for i, s in enumerate(wanted)}
    out: np.ndarray | None = None
    found = np.zeros(len(wanted), dtype=bool)
    for shard in shards(store, key):
        if found.all():
            break
        with _open_shard(store, shard) as data:
            hits = [(i, slot[s]) for i, s in enumerate(data["sha256"].tolist()) if s in slot]
            if not hits:
                continue
            rows, slots = (np.asarray(v, dtype=np.intp) for v in zip(*hits, strict=True))
            vectors = data["vectors"]
            if out is None:
                out = np.empty((len(wanted), vectors.shape[1]), dtype=np.float32)
            out[slots] = vectors[rows]
            found[slots] = True
    if not found.all():
        missing = [s for s, ok in zip(wanted, found, strict=True) if not ok]
        raise FeaturesError(f"{len(missing)} images have no cached features (e.g. {missing[0]})")
    if out is None:  # nothing asked for
        return np.empty((0, 0), dtype=np.float32)
    return out[[slot[s] for s in sha256s]] if len(wanted) != len(sha256s) else out


def write_shard(store: Storage, key: str, sha256s: Sequence[str], vectors: np.ndarray) -> str:
    """Write one shard (named by a hash of its sha256s) atomically; return its key."""
    name = hashlib.sha256("\n".join(sorted(sha256s)).encode()).hexdigest()[:16]
    buf = io.BytesIO()
    np.savez(buf, sha256=np.asarray(sha256s, dtype="U64"),
             vectors=np.asarray(vectors, dtype=np.float32))
    shard = f"{shard_prefix(key)}{name}.npz"
    store.write_bytes(shard, buf.getvalue())
    return shard


def stack(cache: dict[str, np.ndarray], sha256s: Sequence[str]) -> np.ndarray:
    """The vectors of ``sha256s`` in order (raises :class:`FeaturesError` if any is missing)."""
    missing = [s for s in sha256s if s not in cache]
    if missing:
        raise FeaturesError(f"{len(missing)} images have no cached features (e.g. {missing[0]})")
    return np.stack([cache[s] for s in sha256s]).astype(np.float32, copy=False)


# --- decoding in DataLoader workers ----------------------------------------------------------
class ImageSet:
    """Map-style dataset: storage key → ``(3, size, size)`` uint8 array (decoded in workers)."""

    def __init__(self, store: Storage, keys: Sequence[str], size: int):
        self.keys = list(keys)
        self.size = size
        self._uri = store.uri
        self._endpoint = getattr(store, "endpoint_url", None)
        self._store: Storage | None = store
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.keys)

    def _storage(self) -> Storage:
        if self._store is None or self._pid != os.getpid():  # fresh client per worker process
            self._store, self._pid = open_storage(self._uri, self._endpoint), os.getpid()
        return self._store

    def __getitem__(self, index: int) -> np.ndarray:
        return decode_image(self._storage().read_bytes(self.keys[index]), self.size)


def decode_image(data: bytes, size: int) -> np.ndarray:
    """JPEG/PNG bytes → ``(3, size, size)`` uint8 RGB (the study's resize rule if not square;
    a larger JPEG decodes at the DCT scale the scraper uses, see :func:`pixtag.data.images.decode`)."""
    from PIL import Image

    from pixtag.data.images import square_resize

    try:
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG" and image.mode in ("RGB", "L") and image.size != (size, size):
            image.draft(image.mode, (size, size))
        image = image.convert("RGB")
    except Exception as exc:
        raise FeaturesError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    if image.size != (size, size):
        image, _ = square_resize(image, size)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def loader_workers(device_type: str) -> int:
    cpus = len(os.sched_getaffinity(0))
    return min(8, cpus) if device_type == "cuda" else max(1, cpus // 4)


def allow_worker_processes() -> bool:
    """Let this process start DataLoader workers even if it inherited a daemon flag.

    An Airflow task on a Celery worker runs in a process forked (by Airflow's supervisor) from
    a prefork pool child, which is daemonic, and daemonic processes may not have children:
    the DataLoader would fail with "daemonic processes are not allowed to have children". The
    task process is not that pool child (the supervisor waits for it, and the decode workers
    are daemons that end with it), so its inherited flag is cleared. Returns whether it was set.
    """
    import multiprocessing

    config = multiprocessing.current_process()._config  # no public way to clear it
    return bool(config.pop("daemon", False))


def iter_batches(images: ImageSet, batch_size: int, device_type: str,
                 workers: int | None = None) -> Iterator[Any]:
    """Batches of uint8 images, decoded ahead by DataLoader workers (pinned for CUDA)."""
    from torch.utils.data import DataLoader

    workers = loader_workers(device_type) if workers is None else workers
    if workers and allow_worker_processes():
        log.info("cleared the daemon flag this task process inherited (Celery prefork), for the decode workers")
    yield from DataLoader(
        images, batch_size=batch_size, num_workers=workers, pin_memory=device_type == "cuda",
        prefetch_factor=4, worker_init_fn=_worker_init, persistent_workers=False,
    )


def iter_batches_threaded(images: ImageSet, batch_size: int, ahead: int = 2) -> Iterator[np.ndarray]:
    """Batches of uint8 images decoded by a thread pool, ``ahead`` batches in advance.

    For ONNX Runtime on a CPU: Pillow releases the GIL while decoding, so threads keep up with
    the model without a worker process, its copy of the batches through shared memory, or torch.
    """
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, len(images), batch_size)
    with ThreadPoolExecutor(max(1, min(4, len(os.sched_getaffinity(0))))) as pool:
        def batch(start: int) -> np.ndarray:
            return np.stack(list(pool.map(images.__getitem__, range(start, min(start + batch_size, len(images))))))

        with ThreadPoolExecutor(1) as planner:
            pending = [planner.submit(batch, s) for s in starts[:ahead]]
            for i in range(len(starts)):
                if i + ahead < len(starts):
                    pending.append(planner.submit(batch, starts[i + ahead]))
                yield pending[i].result()
                pending[i] = None  # type: ignore[call-overload]  # drop decoded batches once used


def embed_keys(backbone: Backbone | OnnxBackbone, store: Storage, keys: Sequence[str],
               batch_size: int, workers: int | None = None) -> Iterator[np.ndarray]:
    """Feature vectors for images at ``keys``, one array per batch. PyTorch: decoded by DataLoader
    processes (``workers``, default :func:`loader_workers`); ONNX Runtime: by threads."""
    images = ImageSet(store, keys, backbone.input_size)
    if backbone.runtime == "onnx":
        batches: Iterator[Any] = iter_batches_threaded(images, batch_size)
    else:
        batches = iter_batches(images, batch_size, backbone.device.type, workers)
    for batch in batches:
        yield backbone.embed(batch)


def extractor(settings: Settings, name: str, store: Storage, key: str,
              paths: Sequence[str]) -> Backbone | OnnxBackbone:
    """The backbone on the configured runtime; an ONNX export is checked on the first few of
    the images it is about to embed (``paths``) and cached beside their features."""
    from pixtag.model.runtime import VERIFY_IMAGES, create_extractor

    def samples(size: int) -> np.ndarray:
        return np.stack([decode_image(store.read_bytes(p), size) for p in paths[:VERIFY_IMAGES]])

    return create_extractor(name, settings.weights, runtime=settings.runtime,
                            tolerance=settings.onnx_tolerance, store=store, key=key, samples=samples)


# --- the stage -------------------------------------------------------------------------------
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
