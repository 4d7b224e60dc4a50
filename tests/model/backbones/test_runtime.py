"""The backbone's runtime: ONNX export checked against PyTorch, cached beside the features,
fallback to PyTorch when the graph does not match, and features that agree across runtimes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pixtag.core.config import load_settings
from pixtag.core.dataset import read_manifest
from pixtag.core.storage import LocalStorage, open_storage
from pixtag.model.backbones import onnx_runtime as runtime
from pixtag.model.backbones.factory import create_extractor, resolve_runtime
from pixtag.model.backbones.onnx_runtime import OnnxBackbone, graph_key, record_key
from pixtag.model.backbones.pytorch import Backbone, create_backbone
from pixtag.model.backbones.weights import LITE0, cache_key
from pixtag.model.features.cache import load_vectors
from pixtag.model.features.compute import features
from pixtag.model.features.decoding import decode_image
from tests.helpers import make_dataset

KEY = cache_key(LITE0)


@pytest.fixture(scope="module")
def torch_lite0() -> Backbone:
    return create_backbone(LITE0, device="cpu")


@pytest.fixture(scope="module")
def images(photos: Path) -> np.ndarray:
    """Twelve real photos at 224 px, as the features stage decodes them."""
    files = [f for label in ("cat", "car", "flower") for f in sorted((photos / label).glob("*.jpg"))[:4]]
    return np.stack([decode_image(f.read_bytes(), 224) for f in files])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, images: np.ndarray) -> tuple[LocalStorage, OnnxBackbone]:
    """lite0 exported once into a store (checked on real photos), shared by the tests below."""
    store = LocalStorage(tmp_path_factory.mktemp("onnx"))
    extractor = create_extractor(LITE0, runtime="onnx", store=store, key=KEY, samples=lambda _: images[:4])
    assert isinstance(extractor, OnnxBackbone)
    return store, extractor


def test_auto_is_onnx_on_a_cpu_and_torch_on_cuda() -> None:
    assert resolve_runtime("auto") == "onnx"  # this machine has no GPU
    assert resolve_runtime("auto", "cuda:0") == "torch"
    assert resolve_runtime("auto", "cpu") == "onnx"
    assert resolve_runtime("torch") == "torch" and resolve_runtime("onnx", "cuda") == "onnx"
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        resolve_runtime("tensorrt")


def test_the_export_is_checked_and_cached_beside_the_features(exported, torch_lite0: Backbone,
                                                              images: np.ndarray) -> None:
    store, extractor = exported
    record = store.read_json(record_key(KEY))
    assert record["verified"] and record["verified_on"] == 4 and record["tolerance"] == 1e-4
    assert 0 < record["max_abs_diff"] <= 1e-4
    assert (record["backbone"], record["input_size"], record["dim"]) == (LITE0, 224, 1280)
    assert store.exists(graph_key(KEY)) and graph_key(KEY) == f"features/{KEY}/onnx/model.onnx"
    # On photos it was not checked on, and with a batch size it was not exported with.
    onnx, torch = extractor.embed(images[4:]), torch_lite0.embed(images[4:])
    assert onnx.shape == (8, 1280) and onnx.dtype == np.float32
    assert np.abs(onnx - torch).max() <= 1e-4
    assert (extractor.device.type, extractor.runtime, torch_lite0.runtime) == ("cpu", "onnx", "torch")


def test_a_cached_graph_is_used_without_exporting_again(exported, images: np.ndarray,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    store, first = exported
    graph = store.local_path(graph_key(KEY))
    mtime = graph.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="pixtag.model.backbones"):
        again = create_extractor(LITE0, runtime="auto", store=store, key=KEY)
    assert isinstance(again, OnnxBackbone) and "cached graph" in caplog.text
    assert graph.stat().st_mtime_ns == mtime
    assert np.array_equal(again.embed(images[:2]), first.embed(images[:2]))


def test_a_graph_outside_the_tolerance_falls_back_to_torch_and_is_remembered(
        tmp_path: Path, images: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    store = LocalStorage(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pixtag.model.backbones"):
        extractor = create_extractor(LITE0, runtime="onnx", tolerance=1e-12, store=store, key=KEY,
                                     samples=lambda _: images[:2])
    assert isinstance(extractor, Backbone) and extractor.runtime == "torch"
    assert "> tolerance 1e-12: using PyTorch" in caplog.text
    assert store.read_json(record_key(KEY))["verified"] is False
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pixtag.model.backbones"):
        again = create_extractor(LITE0, runtime="onnx", tolerance=1e-12, store=store, key=KEY)
    assert isinstance(again, Backbone) and "its cached ONNX graph differs" in caplog.text  # no new export
    # A looser tolerance accepts the graph already cached.
    assert isinstance(create_extractor(LITE0, runtime="onnx", store=store, key=KEY), OnnxBackbone)


def test_a_failed_export_falls_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def unsupported(*_: object) -> None:  # what the exporter raises for an op it lacks
        raise RuntimeError("Exporting the operator 'aten::fancy' to ONNX opset 17 is not supported")

    monkeypatch.setattr(runtime, "export", unsupported)
    store = LocalStorage(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pixtag.model.backbones"):
        extractor = create_extractor(LITE0, runtime="onnx", store=store, key=KEY)
    assert isinstance(extractor, Backbone)
    assert "ONNX export failed (RuntimeError: Exporting the operator 'aten::fancy'" in caplog.text
    assert not list(store.list("features/"))  # nothing cached: the next run tries again


def test_features_of_both_runtimes_share_one_cache(tmp_path: Path, photos: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(photos, open_storage(root), per_class=2)
    settings = load_settings(storage=str(root), backbone=LITE0, batch_size=4)
    cats = features(settings.model_copy(update={"runtime": "torch"}), labels=["cat"])
    rest = features(settings)  # auto: ONNX Runtime here
    assert (cats["runtime"], cats["computed"]) == ("torch", 2)
    assert (rest["runtime"], rest["computed"], rest["cached"]) == ("onnx", 8, 2)
    store = open_storage(root)
    rows = read_manifest(store)
    stored = load_vectors(store, LITE0, list(rows["sha256"]))
    images = np.stack([decode_image(store.read_bytes(p), 224) for p in rows["path"]])
    assert np.abs(stored - create_backbone(LITE0, device="cpu").embed(images)).max() <= 1e-4
    assert store.exists(graph_key(LITE0))  # checked on the dataset's own images
    assert store.read_json(record_key(LITE0))["verified_on"] == 8
