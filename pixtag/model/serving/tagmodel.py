"""Tag suggestions: the registered model is an MLflow pyfunc that goes from images to tags.

The model directory (``loader_module="pixtag.model.serving.loader"``) holds the classifier as plain arrays,
the backbone weights (except for ``efficientnet_lite0``, whose weights come from its pip
package) and ``config.json``; loading it needs no hub. It carries pixtag itself (``code/pixtag``,
MLflow's ``code_paths``, put on ``sys.path`` at load), requirements naming every package the
served path imports, and an input example, so it loads where this checkout is not installed
(``mlflow models serve`` with a fresh environment, ``mlflow models build-docker``). Serve it
with ``pixtag serve`` (or ``mlflow models serve -m models:/pixtag@champion``).

Requests carry a column ``image``: base64-encoded bytes, or a ``file://`` URL of a file inside
the folder ``file_root`` of the model's configuration (none by default).
Each answer lists every tag whose calibrated probability passes its own threshold (and beats
the background's, for a model trained with background images: :mod:`pixtag.model.classifier.openset`),
most likely first, at most top-k, as ``tags``: ``[{"tag", "probability"}, ...]``; or says
``no_confident_tag``. The thresholds are those training chose per tag (``thresholds`` in
``config.json``; a model logged before has one, ``trained_threshold``) unless the configuration or
the request sets one threshold for every tag. Non-square images (or all, with ``window: always``)
are scored as a sliding window of square crops, combined per tag by mean probability or by vote
(each view against the tag's threshold). Every request
appends the images' perceptual hashes to the suggestion ledger (:mod:`pixtag.data.ledger`).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import numpy as np

from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage
from pixtag.data import ledger
from pixtag.data.images import ASPECT_RANGE, decode, phash, square_resize, to_rgb
from pixtag.model.classifier.openset import DEFAULT_THRESHOLD, class_columns, tag_probabilities
from pixtag.model.serving.batching import Batcher

if TYPE_CHECKING:
    from PIL import Image

    from pixtag.model.backbones.onnx_runtime import OnnxBackbone
    from pixtag.model.backbones.pytorch import Backbone
    from pixtag.model.classifier.estimator import LinearSVMClassifier

SERVE_BATCH = 8  # crops per backbone call, for models logged before ``serve_batch`` was set
LEDGER_BATCH = 1024  # hashes in one ledger object written for concurrent requests
MAX_LEDGER_SOURCES = 64  # sources (request parameter) that get their own group writer

# Set while log_model runs: MLflow predicts on the input example to validate it, which is not
# a suggestion anyone receives, so it is not recorded in the ledger.
VALIDATING_EXAMPLE = contextvars.ContextVar("pixtag_validating_example", default=False)


class SuggestError(PixtagError):
    """Suggestions cannot be made (bad input, missing model)."""


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
            threshold: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-tag probability (mean over views), which tags pass, and vote shares (``vote``).

    ``threshold``: one for every tag, or one per tag (a vector). ``mean``: a tag passes when its
    mean probability reaches its threshold. ``vote``: when it reaches it in at least half of the
    views.
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


class TagModel:
    """Backbone + calibrated SVM + settings; what ``_load_pyfunc`` returns."""

    def __init__(self, backbone: Backbone | OnnxBackbone, classifier: LinearSVMClassifier,
                 config: dict[str, Any], ledger_store: Storage | None):
        self.backbone = backbone
        self.classifier = classifier
        self.fitted_labels = [str(c) for c in classifier.classes_]
        self.labels = [self.fitted_labels[i] for i in class_columns(self.fitted_labels)]
        self.ledger_store = ledger_store
        trained = config.get("thresholds") or {}
        one = float(config.get("trained_threshold", DEFAULT_THRESHOLD))
        #: each tag's threshold as training chose it (a model logged before: its one threshold)
        self.trained_thresholds = np.array([float(trained.get(tag, one)) for tag in self.labels])
        if config.get("threshold") is not None and float(config["threshold"]) < 0:
            config = config | {"threshold": None}
        if config.get("threshold") is None and not trained:  # a model logged before: its one threshold
            config = config | {"threshold": one}
        self.config = config
        # concurrent requests (the scoring server's threads) share backbone calls and ledger writes
        self.batcher = Batcher(backbone.embed, int(config.get("serve_batch", SERVE_BATCH)))
        self._ledgers: dict[str, Batcher] = {}
        self._lock = threading.Lock()

    def thresholds(self, threshold: float | None = None) -> np.ndarray:
        """Each tag's threshold: ``threshold`` for every tag when given (>= 0), else the
        configuration's one threshold when set, else the trained ones."""
        if threshold is None or threshold < 0:
            threshold = self.config.get("threshold")
        if threshold is None:
            return self.trained_thresholds
        return np.full(len(self.labels), float(threshold))

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
        thresholds = self.thresholds(threshold)
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
        if record and self.ledger_store is not None and where and not VALIDATING_EXAMPLE.get():
            self._ledger(source)([results[i]["phash"] for i in where])
        for i, probs in zip(where, self.view_probabilities(images), strict=True):
            mean, passed, votes = combine(probs, self.config["window_combine"], thresholds)
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
        items = request_items(model_input)
        return self.suggest(items, threshold=params.get("threshold"), top_k=params.get("top_k"),
                            source=str(params.get("source") or "serve"))


def request_items(model_input: Any) -> list[Any]:
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
