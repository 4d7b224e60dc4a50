"""Feature extraction: cache per (backbone, sha256), label filter, local and S3 storage."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pixtag import features as features_mod
from pixtag.backbones import LITE0, Backbone, create_backbone
from pixtag.cli import cli
from pixtag.config import load_settings
from pixtag.dataset import read_manifest
from pixtag.features import FeaturesError, decode_image, features, read_cache
from pixtag.storage import open_storage
from tests.helpers import make_dataset


def settings_for(storage: str, **extra: object):
    return load_settings(storage=storage, backbone=LITE0, batch_size=4, **extra)


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
        features(settings_for(str(small)))
    assert len(read_cache(open_storage(small), LITE0)) == 4
    again = features(settings_for(str(small)))
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


def test_cli_prints_the_summary(small: Path) -> None:
    result = CliRunner().invoke(cli, ["features", "--storage", str(small), "--backbone", LITE0,
                                      "--label", "bird", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["computed"], summary["labels"]) == (2, ["bird"])


def test_decode_applies_the_study_resize_rule(photos: Path) -> None:
    wide = next(p for p in sorted((photos / "car").glob("*.jpg")))
    assert decode_image(wide.read_bytes(), 224).shape == (3, 224, 224)
    with pytest.raises(FeaturesError, match="cannot decode"):
        decode_image(b"not an image", 224)
