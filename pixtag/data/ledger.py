"""The suggestion ledger: perceptual hashes of every image pixtag has suggested tags for.

The scraper reads it (:func:`read_phashes`) so that pixtag never trains on images whose tags
it may have suggested itself. S3 has no append, so each call of :func:`append` writes one
small, uniquely named JSON file (atomic, never rewritten)::

    ledger/YYYY/MM/DD/<UTC timestamp>-<random>.json   {"source", "at", "phashes": [...]}

:func:`compact` folds many small files into one; the DAG runs it once per run (``labels_of``,
before the scrapes read the ledger), so a scrape reads one object plus those appended since.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage

LEDGER_DIR = "ledger"
PHASH_RE = re.compile(r"^[0-9a-f]{16}$")


class LedgerError(PixtagError, ValueError):
    """A value is not a perceptual hash."""


def _store(storage: Storage | str) -> Storage:
    return open_storage(storage) if isinstance(storage, str) else storage


def _valid(phashes: Iterable[str]) -> list[str]:
    values = sorted({str(p).lower() for p in phashes})
    bad = [p for p in values if not PHASH_RE.match(p)]
    if bad:
        raise LedgerError(f"not 16-hex-digit perceptual hashes: {bad[:3]}")
    return values


def append(storage: Storage | str, phashes: Iterable[str], source: str) -> str | None:
    """Record ``phashes`` (16 hex digits each) as suggested by ``source``; return the new key."""
    values = _valid(phashes)
    if not values:
        return None
    now = datetime.now(UTC)
    key = f"{LEDGER_DIR}/{now:%Y/%m/%d}/{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.json"
    _store(storage).write_json(key, {"source": source, "at": now.isoformat(), "phashes": values})
    return key


def _files(store: Storage) -> list[str]:
    return [k for k in store.list(f"{LEDGER_DIR}/") if k.endswith(".json")]


def read_phashes(storage: Storage | str) -> set[str]:
    """Every perceptual hash ever recorded."""
    store = _store(storage)
    found: set[str] = set()
    for key in _files(store):
        found.update(store.read_json(key).get("phashes", []))
    return found


def compact(storage: Storage | str) -> str | None:
    """Merge all ledger files into one; concurrent appends are kept (only read files go)."""
    store = _store(storage)
    keys = _files(store)
    if len(keys) < 2:
        return None
    phashes = set()
    for key in keys:
        phashes.update(store.read_json(key).get("phashes", []))
    merged = append(store, phashes, f"compact:{len(keys)} files")
    for key in keys:
        store.delete(key)
    return merged
