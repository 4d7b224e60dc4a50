"""The pyfunc loader: every logged model names this module as its ``loader_module`` (models
logged before the model layer was split into rooms name :mod:`pixtag.model.suggest`, which
re-exports :func:`_load_pyfunc`). The model directory (``pixtag_model/``) holds the classifier as
plain arrays, ``config.json``, and the backbone as an ONNX graph or PyTorch weights."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.storage import open_storage
from pixtag.model.serving.tagmodel import SuggestError, TagModel

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.model.backbones.onnx_runtime import OnnxBackbone
    from pixtag.model.backbones.pytorch import Backbone

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
DATA_DIR = "pixtag_model"
ONNX_FILE = "backbone.onnx"  # the backbone's graph (normalisation included), when it matches PyTorch


def load_backbone(path: Path, config: dict[str, Any]) -> Backbone | OnnxBackbone:
    """The model directory's backbone on its runtime: the shipped ONNX graph on ONNX Runtime
    (no torch, no timm) when ``runtime`` resolves to ``onnx``, else PyTorch."""
    from pixtag.model.backbones.factory import resolve_runtime
    from pixtag.model.backbones.onnx_runtime import from_graph

    device = config.get("device") or None
    runtime = resolve_runtime(config.get("runtime") or "auto", device)
    graph = path / ONNX_FILE
    if runtime == "onnx" and graph.is_file() and config.get("onnx"):
        return from_graph(graph, config["onnx"], server=True)
    if runtime == "onnx":
        log.warning("model %s has no ONNX graph: its backbone runs on PyTorch", path)
    from pixtag.model.backbones.pytorch import create_backbone

    name = config["backbone"]
    weights = {name: str(path / "backbone.pt")} if (path / "backbone.pt").is_file() else {}
    return create_backbone(name, weights, device=device)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> TagModel:
    """MLflow loader: ``data_path`` is the model's ``pixtag_model`` folder.

    ``model_config`` (logged with the model; override any key at load time with
    ``load_model(..., model_config=...)`` or env ``MLFLOW_PYFUNC_INFERENCE_CONFIG``) holds the
    tunable settings: threshold, top_k, window, window_combine, storage (of the ledger), ...
    """
    from pixtag.model.classifier.estimator import LinearSVMClassifier

    path = Path(data_path)
    config = json.loads((path / "config.json").read_text()) | dict(model_config or {})
    backbone = load_backbone(path, config)
    with np.load(path / "classifier.npz", allow_pickle=False) as arrays:
        classifier = LinearSVMClassifier.from_arrays(dict(arrays))
    store = open_storage(config["storage"], config.get("s3_endpoint_url") or None) \
        if config.get("storage") else None
    return TagModel(backbone, classifier, config, store)


def load_tag_model(model_uri: str, settings: Settings | None = None,
                   **config: Any) -> TagModel:
    """Download a logged model and load it directly (no pyfunc wrapper)."""
    import mlflow
    import yaml

    from pixtag.model.tracking import connect

    if settings is not None:
        connect(settings)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except mlflow.exceptions.MlflowException as exc:
        raise SuggestError(f"cannot load model {model_uri}: {exc.message}") from None
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    return _load_pyfunc(str(local / flavor["data"]), (flavor.get("config") or {}) | config)
