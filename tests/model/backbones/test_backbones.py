"""The backbone factory: lite0 from its pip package, local weight files, fast offline failure."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixtag.model.backbones import weights as backbones
from pixtag.model.backbones.pytorch import create_backbone, load_weights
from pixtag.model.backbones.weights import LITE0, BackboneError, cache_key, lite0_weights_path, resolve_name
from pixtag.model.features.decoding import decode_image
from tests.helpers import random_weights


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    monkeypatch.setattr(backbones, "_offline", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def undecided(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline-ness not yet decided and not forced by the environment."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    monkeypatch.setattr(backbones, "_offline", None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def test_lite0_loads_package_weights_by_position() -> None:
    model = create_backbone(LITE0)
    assert model.source.kind == "package"
    assert (model.dim, model.input_size, model.mean, model.std) == (1280, 224, (0.5,) * 3, (0.5,) * 3)
    package = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.model.conv_stem.weight, package["_conv_stem.weight"])
    assert not hasattr(model.model.classifier, "weight")  # head removed


def test_lite0_predicts_imagenet_classes_on_real_photos(photos: Path) -> None:
    """Positional loading + timm's normalisation give sensible ImageNet predictions."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0").eval()
    load_weights(model, torch.load(lite0_weights_path(), weights_only=True), LITE0)
    images = np.stack([decode_image(p.read_bytes(), 224)
                       for p in sorted((photos / "cat").glob("*.jpg"))[:4]])
    x = (torch.from_numpy(images).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        top5 = model(x).topk(5).indices
    cats = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert sum(bool(cats & set(row.tolist())) for row in top5) >= 3


def test_embed_gives_one_vector_per_image(photos: Path) -> None:
    model = create_backbone(LITE0)
    images = np.stack([decode_image(p.read_bytes(), 224)
                       for p in sorted((photos / "dog").glob("*.jpg"))[:3]])
    out = model.embed(images)
    assert out.shape == (3, 1280) and out.dtype == np.float32
    assert np.allclose(out[1], model.embed(images[1:2])[0], atol=1e-4)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("name", ["vit_base_patch16_224", "vgg16"])
def test_offline_missing_weights_fail_at_once_saying_how(name: str) -> None:
    start = time.monotonic()
    with pytest.raises(BackboneError) as err:
        create_backbone(name)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert name in message and "PIXTAG_WEIGHTS" in message and LITE0 in message


@pytest.mark.parametrize(("name", "dim"), [("vit_base_patch16_224", 768), ("vgg16", 4096)])
def test_local_weights_file_is_loaded(tmp_path: Path, name: str, dim: int) -> None:
    path = random_weights(name, tmp_path / f"{name}.pth")
    model = create_backbone(name, {name: str(path)})
    saved = torch.load(path, weights_only=True)
    assert model.source.kind == "file" and model.dim == dim
    shared = [k for k in model.model.state_dict() if k in saved][:3]
    assert shared and all(torch.equal(model.model.state_dict()[k], saved[k]) for k in shared)
    assert model.embed(np.zeros((1, 3, 224, 224), dtype=np.uint8)).shape == (1, dim)


def test_state_dict_without_head_loads(tmp_path: Path) -> None:
    import timm

    headless = timm.create_model("resnet18", num_classes=0).state_dict()
    torch.save(headless, tmp_path / "r18.pth")
    assert create_backbone("resnet18", {"resnet18": str(tmp_path / "r18.pth")}).dim == 512


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    torch.save({"a": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(BackboneError, match="do not fit"):
        create_backbone("resnet18", {"resnet18": str(tmp_path / "bad.pth")})
    with pytest.raises(BackboneError, match="not found"):
        create_backbone("resnet18", {"resnet18": str(tmp_path / "missing.pth")})
    with pytest.raises(BackboneError, match="unknown backbone"):
        create_backbone("no_such_net", {"no_such_net": str(tmp_path / "bad.pth")})


@pytest.mark.usefixtures("offline")
def test_auto_picks_vit_only_when_its_weights_can_be_had(tmp_path: Path) -> None:
    assert resolve_name("auto") == LITE0
    weights = {"vit_base_patch16_224": str(tmp_path / "vit.pth")}
    (tmp_path / "vit.pth").write_bytes(b"x")
    assert resolve_name("auto", weights) == "vit_base_patch16_224"
    assert resolve_name("vgg16") == "vgg16"


def test_cache_key_names_custom_weights(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"weights")
    assert cache_key(LITE0) == LITE0
    key = cache_key(LITE0, {LITE0: str(tmp_path / "w.pth")})
    assert key.startswith(f"{LITE0}@") and len(key) == len(LITE0) + 13


@pytest.mark.usefixtures("undecided")
def test_probe_decides_offline_quickly_and_sets_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import huggingface_hub.constants as constants

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(backbones, "PROBE_HOST", ("127.0.0.1", port))
    start = time.monotonic()
    assert backbones.is_offline() is True
    assert time.monotonic() - start < 3
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True


@pytest.mark.usefixtures("undecided")
def test_probe_sees_a_reachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(backbones, "PROBE_HOST", server.getsockname())
        assert backbones.is_offline() is False


def test_wrap_honours_bf16_and_channels_last_and_defaults_them_off_on_cpu() -> None:
    """CPU keeps fp32 and the default layout; asked for, bf16 autocast + channels-last give the
    same features within bf16 rounding (the path CUDA takes by default)."""
    import timm

    from pixtag.model.backbones.pytorch import wrap
    from pixtag.model.backbones.weights import WeightsSource

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 160, 160), dtype=np.uint8)
    plain = wrap("test_efficientnet", model, WeightsSource("random"), "cpu")
    assert (plain.autocast, plain.channels_last, plain.input_size) == (False, False, 160)
    reference = plain.embed(images)
    fast = wrap("test_efficientnet", model, WeightsSource("random"), "cpu", autocast=True,
                channels_last=True)
    assert (fast.autocast, fast.channels_last) == (True, True)
    out = fast.embed(images)
    assert out.dtype == np.float32 and out.shape == reference.shape
    assert not np.array_equal(out, reference)  # bf16 did run
    assert np.allclose(out, reference, rtol=0.05, atol=0.05 * np.abs(reference).max())
    assert create_backbone(LITE0).autocast is False
