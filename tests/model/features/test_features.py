"""Feature extraction: cache per (backbone, sha256), label filter, local and S3 storage."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.core.dataset import read_manifest
from pixtag.core.storage import open_storage
from pixtag.model.backbones.pytorch import Backbone, create_backbone
from pixtag.model.backbones.weights import LITE0
from pixtag.model.features import compute as features_mod
from pixtag.model.features.cache import FeaturesError, read_cache
from pixtag.model.features.compute import features
from pixtag.model.features.decoding import decode_image
from tests.helpers import make_dataset


def settings_for(storage: str, **extra: object):
    return load_settings(**{"storage": storage, "backbone": LITE0, "batch_size": 4, **extra})


@pytest.fixture
def small(tmp_path: Path, photos: Path) -> Path:
    root = tmp_path / "ds"
    make_dataset(photos, open_storage(root), per_class=2)
    return root


def test_second_run_computes_nothing(small: Path) -> None:
    first = features(settings_for(str(small)))
    assert (first["images"], first["computed"], first["cached"]) == (10, 10, 0)
    assert first["backbone"] == LITE0 and first["device"] == "cpu"
    assert first["storage"] == str(small) and first["seconds"] > 0
    assert len(json.dumps(first)) < 2000  # a summary, never the vectors
    second = features(settings_for(str(small)))
    assert (second["computed"], second["cached"], second["device"]) == (0, 10, "none")
    shards = list((small / "features" / LITE0).glob("*.npz"))
    assert [p.relative_to(small).as_posix() for p in shards] == first["shards_written"]


def test_label_filter_then_the_rest(small: Path) -> None:
    cats = features(settings_for(str(small)), labels=["cat"])
    assert (cats["images"], cats["computed"], cats["labels"]) == (2, 2, ["cat"])
    rest = features(settings_for(str(small)))
    assert (rest["computed"], rest["cached"]) == (8, 2)
    with pytest.raises(FeaturesError, match="not in the dataset"):
        features(settings_for(str(small)), labels=["unicorn"])


def test_cached_vectors_are_the_backbone_features(small: Path) -> None:
    features(settings_for(str(small)))
    store = open_storage(small)
    rows = read_manifest(store).head(3)
    cache = read_cache(store, LITE0)
    images = np.stack([decode_image(store.read_bytes(p), 224) for p in rows["path"]])
    direct = create_backbone(LITE0).embed(images)
    cached = np.stack([cache[s] for s in rows["sha256"]])
    assert cached.shape == (3, 1280)
    assert np.allclose(cached, direct, atol=1e-3)


def test_a_crash_keeps_the_shards_already_written(small: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features_mod, "SHARD_SIZE", 4)
    real = Backbone.embed
    calls = {"n": 0}

    def flaky(self: Backbone, images: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(self, images)

    monkeypatch.setattr(Backbone, "embed", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        features(settings_for(str(small), runtime="torch"))  # the crash is runtime-independent
    assert len(read_cache(open_storage(small), LITE0)) == 4
    again = features(settings_for(str(small), runtime="torch"))
    assert (again["computed"], again["cached"]) == (6, 4)


def test_features_on_s3(small: Path, s3_endpoint: str) -> None:
    uri = f"s3://pixtag-test/ds-{uuid.uuid4().hex[:8]}"
    store = open_storage(uri, s3_endpoint)
    local = open_storage(small)
    for key in local.list():
        store.write_bytes(key, local.read_bytes(key))
    settings = settings_for(uri, s3_endpoint_url=s3_endpoint)
    first = features(settings, labels=["dog", "car"])
    assert (first["computed"], first["storage"]) == (4, uri)
    assert any(k.startswith(f"features/{LITE0}/") for k in store.list("features/"))
    assert features(settings)["computed"] == 6


def test_cli_prints_the_summary_and_progress_outside_json_and_airflow(
        small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["features", str(small), "--backbone", LITE0,
                                      "--label", "bird", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["computed"], summary["labels"]) == (2, ["bird"])
    assert "100%|" not in result.stderr  # --json: no progress bar
    # A terminal run shows one (same store: the ONNX graph exported above is reused) ...
    args = ["features", str(small), "--backbone", LITE0]
    shown = CliRunner().invoke(cli, [*args, "--label", "car"])
    assert shown.exit_code == 0, shown.output
    assert f"features {LITE0}: 100%|" in shown.stderr and "2/2" in shown.stderr
    # ... but not inside an Airflow task (whose process has the AIRFLOW_CTX_* variables).
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "pixtag_retrain")
    quiet = CliRunner().invoke(cli, [*args, "--label", "cat"])
    assert quiet.exit_code == 0, quiet.output
    assert "2 computed" in quiet.stdout and "100%|" not in quiet.stderr


def test_decode_applies_the_study_resize_rule(photos: Path) -> None:
    wide = next(p for p in sorted((photos / "car").glob("*.jpg")))
    assert decode_image(wide.read_bytes(), 224).shape == (3, 224, 224)
    with pytest.raises(FeaturesError, match="cannot decode"):
        decode_image(b"not an image", 224)


class BigBackbone:
    """A stand-in backbone with 1 MiB vectors whose every value is the image's mean pixel."""

    DIM = 1 << 18
    input_size = 224
    runtime = "test"

    def __init__(self) -> None:
        import torch

        self.device = torch.device("cpu")

    def embed(self, images: object) -> np.ndarray:
        means = np.asarray(images, dtype=np.float32).mean(axis=(1, 2, 3))
        return np.repeat(means[:, None], self.DIM, axis=1)


def test_extraction_memory_does_not_grow_with_the_images(small: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """40 images of 1 MiB vectors (40 MiB in all): neither computing nor re-reading the cache, nor
    loading 3 of them, holds more than a few 2-vector shards' worth (tracemalloc sees numpy's
    buffers; it measured ~8.5 MiB, where keeping every vector, as before, takes > 40 MiB)."""
    import tracemalloc

    import pandas as pd

    from pixtag.model.features.cache import load_vectors
    from pixtag.model.features.compute import compute

    monkeypatch.setattr(features_mod, "SHARD_SIZE", 2)
    monkeypatch.setattr(features_mod, "extractor", lambda *a, **k: BigBackbone())
    store = open_storage(small)
    paths = list(read_manifest(store)["path"])
    rows = pd.DataFrame({"sha256": [f"{i:064x}" for i in range(40)],
                         "path": [paths[i % len(paths)] for i in range(40)]})
    settings = settings_for(str(small), batch_size=2)
    warm = rows.assign(sha256=[f"{i:063x}f" for i in range(40)]).head(2)
    compute(settings, warm, store)  # one-off imports (torch's DataLoader) are not what is measured
    peaks = []
    for _ in range(2):  # computes all, then finds all cached
        tracemalloc.start()
        run = compute(settings, rows, store)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    assert (run.summary["computed"], run.summary["cached"]) == (0, 40)
    assert max(peaks) < 16, peaks  # all 40 vectors held would be ≥ 40 MiB

    want = [rows["sha256"][i] for i in (37, 3, 37)]
    tracemalloc.start()
    got = run.vectors(want)
    loaded = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert loaded < 16, loaded
    means = [decode_image(store.read_bytes(rows["path"][i]), 224).astype(np.float32).mean()
             for i in (37, 3, 37)]
    assert got.shape == (3, BigBackbone.DIM) and got.dtype == np.float32
    assert np.allclose(got[:, 0], means) and np.allclose(got[:, -1], means)
    with pytest.raises(FeaturesError, match="1 images have no cached features"):
        load_vectors(store, LITE0, [want[0], "f" * 64])


def _start_child(clear: bool, results: Any) -> None:
    import multiprocessing

    from pixtag.model.features.decoding import allow_worker_processes

    cleared = allow_worker_processes() if clear else False
    try:
        child = multiprocessing.get_context("fork").Process(target=int)
        child.start()
        child.join()
        results.put((cleared, "started"))
    except AssertionError as exc:
        results.put((cleared, str(exc)))


def test_a_task_forked_from_a_daemonic_pool_process_can_start_decode_workers() -> None:
    """Celery's prefork children are daemonic, and an Airflow task forked from one inherits the
    flag: without clearing it the DataLoader's workers cannot start."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    for clear in (False, True):
        pool_child = ctx.Process(target=_start_child, args=(clear, results), daemon=True)
        pool_child.start()
        pool_child.join(30)
    assert results.get(timeout=10) == (False, "daemonic processes are not allowed to have children")
    assert results.get(timeout=10) == (True, "started")
