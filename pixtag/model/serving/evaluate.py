"""Score a registered model on a labelled folder of photos (``CLASS/*.jpg``).

Reports top-1 accuracy (the most probable tag, whatever the thresholds), accuracy among the
images that got a confident tag, the abstention rate (no tag passed its threshold) and the
coverage (1 - it), per-class precision and recall, the confusion matrix (rows: folder classes,
columns: model tags), and, from the suggestions the served model makes (every tag past its own
threshold, ranked, at most ``top_k``: :func:`pixtag.model.serving.tagmodel.pick_tags`), the
precision of suggestions, precision and recall at k (k = ``top_k``) and each tag's precision,
recall and support (:func:`pixtag.model.classifier.openset.suggestion_metrics`).
With ``--others DIR`` (photos of none of the classes, in any sub-folders), also the
false-suggestion rate (share of those photos that got a tag) and the precision of suggestions
on a timeline where ``in_class_share`` of the posts show a class.
Evaluation does not write to the suggestion ledger.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core import logs
from pixtag.core.errors import PixtagError
from pixtag.data.images import decode, to_rgb
from pixtag.model.classifier.openset import BACKGROUND, class_columns, suggestion_metrics, tag_probabilities
from pixtag.model.serving.loader import load_tag_model
from pixtag.model.serving.suggest import champion_uri
from pixtag.model.serving.tagmodel import combine, pick_tags

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.model.serving.tagmodel import TagModel

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
CHUNK = 64


class EvaluateError(PixtagError):
    """The folder cannot be evaluated."""


def labelled_files(photos: Path) -> list[tuple[str, Path]]:
    """(class, file) for every image in ``photos/CLASS/``, sorted."""
    if not photos.is_dir():
        raise EvaluateError(f"{photos} is not a folder")
    files = [(d.name, f) for d in sorted(photos.iterdir()) if d.is_dir()
             for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise EvaluateError(f"no images in {photos}/CLASS/ (expected CLASS/*.jpg)")
    return files


def other_files(others: Path) -> list[tuple[str, Path]]:
    """(BACKGROUND, file) for every image anywhere below ``others``, sorted."""
    if not others.is_dir():
        raise EvaluateError(f"{others} is not a folder")
    files = [(BACKGROUND, f) for f in sorted(others.rglob("*"))
             if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise EvaluateError(f"no images below {others}")
    return files


def summarise(truth: list[str], top: list[str], confident: list[bool],
              labels: list[str]) -> dict[str, Any]:
    """The report from true classes, top-1 tags and whether a tag passed the threshold."""
    t, p, c = np.asarray(truth), np.asarray(top), np.asarray(confident, dtype=bool)
    classes = sorted(set(truth))
    by_class = {}
    for cls in classes:
        mine, predicted = t == cls, p == cls
        by_class[cls] = {
            "n": int(mine.sum()),
            "recall": float(np.mean(p[mine] == cls)),
            "precision": float(np.mean(t[predicted] == cls)) if predicted.any() else 0.0,
            "abstention_rate": float(np.mean(~c[mine])),
        }
    confusion = [[int(np.sum((t == a) & (p == b))) for b in labels] for a in classes]
    return {
        "images": len(t),
        "accuracy": float(np.mean(t == p)),
        "confident_accuracy": float(np.mean(t[c] == p[c])) if c.any() else None,
        "abstention_rate": float(np.mean(~c)),
        "per_class": by_class,  # the key scripts read (`evaluate --json`), kept as it was
        "confusion": {"rows": classes, "columns": labels, "matrix": confusion},
        "unknown_classes": [cls for cls in classes if cls not in labels],
    }


class Predicted:
    """Per decoded image: its true label, top-1 tag, suggested tags (ranked, as served) and the
    tags ranked by probability whatever the thresholds (the first ``top_k``)."""

    def __init__(self) -> None:
        self.truth: list[str] = []
        self.top: list[str] = []
        self.suggested: list[list[str]] = []
        self.ranking: list[list[str]] = []

    @property
    def confident(self) -> list[bool]:
        return [bool(s) for s in self.suggested]


def predictions(model: TagModel, files: list[tuple[str, Path]]) -> tuple[Predicted, list[dict[str, str]]]:
    """What the model does with each file (as it serves it), and the unreadable files."""
    out = Predicted()
    errors: list[dict[str, str]] = []
    thresholds, top_k = model.thresholds(), int(model.config["top_k"])
    bar = logs.progress(total=len(files), desc="evaluate", unit="img")
    for start in range(0, len(files), CHUNK):
        chunk, images = [], []
        for label, path in files[start:start + CHUNK]:
            try:
                images.append(to_rgb(decode(path.read_bytes(),
                                            int(model.config["max_image_pixels"]))[0]))
                chunk.append(label)
            except PixtagError as exc:
                errors.append({"file": str(path), "error": str(exc)})
        for label, raw in zip(chunk, model.view_scores(images), strict=True):
            probs = tag_probabilities(raw, model.fitted_labels)
            mean, passed, votes = combine(probs, model.config["window_combine"], thresholds)
            closed = raw[:, class_columns(model.fitted_labels)].mean(axis=0)
            out.truth.append(label)
            out.top.append(model.labels[int(np.argmax(closed))])
            out.suggested.append([t["tag"] for t in pick_tags(model.labels, mean, passed, votes, top_k)])
            out.ranking.append([model.labels[k] for k in np.argsort(-closed, kind="stable")[:top_k]])
        bar.update(len(files[start:start + CHUNK]))
    bar.close()
    return out, errors


SUGGESTION_KEYS = ("coverage", "suggestion_precision", "precision_at_k", "recall_at_k", "several_tags_rate", "top_k",
                   "per_tag")


def score_files(model: TagModel, files: list[tuple[str, Path]], others: list[tuple[str, Path]] = (),
                share: float = 0.15) -> dict[str, Any]:
    seen, errors = predictions(model, files)
    if not seen.truth:
        raise EvaluateError("no image could be decoded")
    report = summarise(seen.truth, seen.top, seen.confident, model.labels)
    if others:
        other, more = predictions(model, list(others))
        errors += more
        if not other.truth:
            raise EvaluateError("no image of --others could be decoded")
        figures = suggestion_metrics(seen.truth + other.truth, seen.top + other.top, seen.suggested + other.suggested,
                                     seen.ranking + other.ranking, share, int(model.config["top_k"]))
        report |= {"others_images": len(other.truth), "false_suggestion_rate": figures["false_suggestion_rate"],
                   "in_class_share": share, "precision_at_share": figures["precision_at_share"]}
    else:
        figures = suggestion_metrics(seen.truth, seen.top, seen.suggested, seen.ranking, share,
                                     int(model.config["top_k"]))
    report |= {k: figures.get(k) for k in SUGGESTION_KEYS}
    for tag, threshold in zip(model.labels, model.thresholds(), strict=True):
        figures = report["per_tag"].setdefault(tag, {"support": 0, "precision": None, "recall": None})
        figures["threshold"] = float(threshold)
    report["errors"] = errors
    return report


def evaluate(settings: Settings, photos: str | Path, model_uri: str | None = None,
             others: str | Path | None = None) -> dict[str, Any]:
    """Score ``model_uri`` (default the champion) on ``photos/CLASS/*`` (and ``others``)."""
    start = time.perf_counter()
    uri = model_uri or champion_uri(settings)
    files = labelled_files(Path(photos))
    extra = other_files(Path(others)) if others is not None else []
    model = load_tag_model(uri, settings, **({} if settings.threshold is None
                                              else {"threshold": settings.threshold}))
    report = {"model": uri, "photos": str(photos), "others": str(others) if others else None,
              "threshold": model.config["threshold"],  # one for every tag, when set (else each tag's own)
              "thresholds": dict(zip(model.labels, map(float, model.thresholds()), strict=True)),
              **score_files(model, files, extra, settings.in_class_share),
              "seconds": round(time.perf_counter() - start, 2)}
    log.info("%s on %s: accuracy %.4f, abstention %.4f over %d images", uri, photos,
             report["accuracy"], report["abstention_rate"], report["images"])
    return report
