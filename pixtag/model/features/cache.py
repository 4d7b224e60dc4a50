"""The feature cache, below the dataset root::

    features/<cache key>/<shard hash>.npz   arrays ``sha256`` (str) and ``vectors`` (float32)

The cache key is the backbone name (plus a digest of a custom weights file:
:func:`pixtag.model.backbones.weights.cache_key`), not the runtime: ONNX Runtime's features
agree with PyTorch's within ``settings.onnx_tolerance``, checked when the graph is exported (the
graph is cached under ``features/<key>/onnx/``). Shards are written atomically and named by
their content, so parallel runs (one per class) never clash; readers read which sha256s a shard
holds without its vectors, and load vectors one shard at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage
from pixtag.model.backbones.weights import cache_prefix

SHARD_SIZE = 2048  # vectors per shard written; a crash loses at most this much work


class FeaturesError(PixtagError):
    """Features cannot be computed or are missing."""


def shards(store: Storage, key: str) -> list[str]:
    return [s for s in store.list(cache_prefix(key)) if s.endswith(".npz")]


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
    shard = f"{cache_prefix(key)}{name}.npz"
    store.write_bytes(shard, buf.getvalue())
    return shard


def stack(cache: dict[str, np.ndarray], sha256s: Sequence[str]) -> np.ndarray:
    """The vectors of ``sha256s`` in order (raises :class:`FeaturesError` if any is missing)."""
    missing = [s for s in sha256s if s not in cache]
    if missing:
        raise FeaturesError(f"{len(missing)} images have no cached features (e.g. {missing[0]})")
    return np.stack([cache[s] for s in sha256s]).astype(np.float32, copy=False)
