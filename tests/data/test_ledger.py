"""The suggestion ledger: append-only small files, read back as a set, local or S3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pixtag.core.storage import open_storage
from pixtag.data import ledger
from pixtag.data.ledger import LedgerError, append, compact, read_phashes

A, B, C = "0123456789abcdef", "fedcba9876543210", "00000000ffffffff"


def test_append_then_read(tmp_path: Path) -> None:
    store = open_storage(tmp_path)
    first = append(store, [A, B, A.upper()], "serve")
    second = append(str(tmp_path), [C], "cli")
    assert first != second and first.startswith("ledger/") and first.endswith(".json")
    assert store.read_json(first)["phashes"] == [A, B] and store.read_json(first)["source"] == "serve"
    assert read_phashes(store) == {A, B, C}
    assert append(store, [], "serve") is None


def test_many_appends_in_the_same_instant_never_overwrite(tmp_path: Path) -> None:
    store = open_storage(tmp_path)
    keys = {append(store, [f"{i:016x}"], "serve") for i in range(50)}
    assert len(keys) == 50 and len(read_phashes(store)) == 50


def test_only_perceptual_hashes_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="16-hex-digit"):
        append(open_storage(tmp_path), ["not-a-hash"], "serve")
    assert read_phashes(open_storage(tmp_path)) == set()


def test_compact_keeps_everything(tmp_path: Path) -> None:
    store = open_storage(tmp_path)
    for value in (A, B, C):
        append(store, [value], "serve")
    merged = compact(store)
    assert list(store.list(f"{ledger.LEDGER_DIR}/")) == [merged]
    append(store, ["1111111111111111"], "serve")
    assert read_phashes(store) == {A, B, C, "1111111111111111"}


def test_ledger_on_s3(s3_endpoint: str) -> None:
    store = open_storage(f"s3://pixtag-test/ledger-{uuid.uuid4().hex[:8]}", s3_endpoint)
    append(store, [A], "serve")
    append(store, [B], "serve")
    assert read_phashes(store) == {A, B}


def test_the_dags_scrape_step_compacts_the_ledger_before_the_scrapes_read_it(tmp_path: Path) -> None:
    """One object per served request piles up; the run's ``labels_of`` step (flow.scrape_labels,
    once, before the mapped scrapes) folds them so each scrape reads one object (plus any new)."""
    from pixtag.core.config import load_settings
    from pixtag.pipeline.flow import scrape_labels

    store = open_storage(tmp_path / "store")
    values = {f"{i:016x}" for i in range(40)}
    for value in values:
        append(store, [value], "serve")
    settings = load_settings(storage=str(tmp_path / "store"), background=0)
    assert scrape_labels(settings, ["cat", "dog"]) == ["cat", "dog"]
    assert len(list(store.list(f"{ledger.LEDGER_DIR}/"))) == 1
    assert read_phashes(store) == values
    # Nothing to fold: left alone.
    only = list(store.list(f"{ledger.LEDGER_DIR}/"))
    scrape_labels(settings, ["cat", "dog"])
    assert list(store.list(f"{ledger.LEDGER_DIR}/")) == only
