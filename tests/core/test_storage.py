import os
from pathlib import Path

import pandas as pd
import pytest

from pixtag.core.storage import LocalStorage, S3Storage, StorageError, open_storage


def _roundtrip(store) -> None:
    store.write_bytes("a/b/c.bin", b"\x00\x01")
    assert store.exists("a/b/c.bin")
    assert store.read_bytes("a/b/c.bin") == b"\x00\x01"
    store.write_json("x.json", {"k": [1, 2]})
    assert store.read_json("x.json") == {"k": [1, 2]}
    frame = pd.DataFrame({"sha256": ["aa", "bb"], "n": [1, 2]})
    store.write_parquet("m.parquet", frame)
    pd.testing.assert_frame_equal(store.read_parquet("m.parquet"), frame)
    assert list(store.list("a")) == ["a/b/c.bin"]
    assert sorted(store.list()) == ["a/b/c.bin", "m.parquet", "x.json"]
    sub = store.child("a")
    assert sub.read_bytes("b/c.bin") == b"\x00\x01"
    store.delete("a/b/c.bin")
    assert not store.exists("a/b/c.bin")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("a/b/c.bin")


def test_local_roundtrip(tmp_path: Path) -> None:
    _roundtrip(open_storage(tmp_path / "store"))


def test_s3_roundtrip_against_moto_server(s3_endpoint: str) -> None:
    store = open_storage("s3://pixtag-test/some/prefix", endpoint_url=s3_endpoint)
    assert isinstance(store, S3Storage)
    _roundtrip(store)
    assert store.url("k.json") == "s3://pixtag-test/some/prefix/k.json"


def test_local_write_is_atomic_and_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStorage(tmp_path)
    store.write_bytes("f.bin", b"old")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_bytes("f.bin", b"new content")
    monkeypatch.undo()
    assert store.read_bytes("f.bin") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="escapes"):
        LocalStorage(tmp_path / "root").write_bytes("../outside.txt", b"x")


def test_unsupported_scheme() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        open_storage("gs://bucket/x")
