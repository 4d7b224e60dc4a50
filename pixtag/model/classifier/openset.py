"""Open-set suggestions: say nothing when a photo shows none of the classes (pure numpy).

The classifier is trained on the classes plus *background* images (posts carrying none of the
classes' tags) under the reserved label :data:`BACKGROUND`, which is never a tag. A tag's
open-set probability in one view is its calibrated probability when that is at least the
background's, else 0; a tag is suggested when it reaches **its own threshold**, and a photo gets
every tag that does, most likely first, at most ``top_k``.

The thresholds themselves are chosen in :mod:`pixtag.model.classifier.thresholds`.

Measured side by side on the offline backbone (``bench/openset.py``): the background class beat
a threshold on the 5-class probability, a feature-space distance (k-NN cosine), max-logit and
energy scores, and the backbone's ImageNet prediction mapped through WordNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import BACKGROUND

if TYPE_CHECKING:
    pass

#: The threshold of a model trained without background images, which cannot choose one (and of
#: models logged before thresholds were chosen in training).
DEFAULT_THRESHOLD = 0.5


def class_columns(labels: Sequence[str]) -> np.ndarray:
    """Indices of the real classes (every label but :data:`BACKGROUND`)."""
    return np.array([i for i, label in enumerate(labels) if label != BACKGROUND], dtype=int)


def tag_probabilities(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """``(n, labels)`` calibrated probabilities → ``(n, classes)`` open-set probabilities: a
    class's probability where it is at least the background's, else 0."""
    cols = class_columns(labels)
    tags = probs[:, cols]
    if len(cols) == len(labels):
        return tags
    background = probs[:, list(labels).index(BACKGROUND)][:, None]
    return np.where(tags >= background, tags, 0.0)


def predict_class(log_odds: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The most likely real class of each row (the study's closed-set prediction)."""
    cols = class_columns(labels)
    return np.asarray(labels)[cols][np.argmax(log_odds[:, cols], axis=1)]


def confidence(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Per row, the best open-set tag probability: a tag is suggested iff this >= threshold."""
    return tag_probabilities(probs, labels).max(axis=1)


def wrong_confidence(probs: np.ndarray, labels: Sequence[str], truth: Sequence[Any]) -> np.ndarray:
    """Per class image, the best open-set probability of a *wrong* tag (its true label, or
    labels, masked)."""
    tags = tag_probabilities(probs, labels)
    names = [str(n) for n in np.asarray(labels)[class_columns(labels)]]
    return np.where(truth_matrix(list(truth), names), 0.0, tags).max(axis=1)


def precision_at(share: float, correct: float, suggested: float, false_rate: float) -> float | None:
    """Share of suggestions that are right on a timeline where ``share`` of posts show a class.

    ``correct``/``suggested``: rates of right/any suggestions on class photos; ``false_rate``:
    rate of suggestions on photos of none of the classes.
    """
    made = share * suggested + (1 - share) * false_rate
    return float(share * correct / made) if made > 0 else None


def open_set_metrics(truth: Sequence[str], top: Sequence[str], suggested: Sequence[bool],
                     share: float) -> dict[str, Any]:
    """Figures of a labelled set where ``truth`` may be :data:`BACKGROUND`.

    ``top``: the most likely real class; ``suggested``: whether any tag passed the threshold.
    In-class accuracy is the closed-set top-1 accuracy over class photos (the study's figure).
    """
    t, p, s = np.asarray(truth), np.asarray(top), np.asarray(suggested, dtype=bool)
    inside, outside = t != BACKGROUND, t == BACKGROUND
    out: dict[str, Any] = {"class_images": int(inside.sum()), "background_images": int(outside.sum())}
    if inside.any():
        tagged = s & inside
        out |= {"accuracy": float(np.mean(p[inside] == t[inside])),
                "abstention_rate": float(np.mean(~s[inside])),
                "suggested_accuracy": float(np.mean(p[tagged] == t[tagged])) if tagged.any() else None,
                "correct_suggestion_rate": float(np.mean(s[inside] & (p[inside] == t[inside])))}
    if outside.any():
        out["false_suggestion_rate"] = float(np.mean(s[outside]))
    if inside.any() and outside.any():
        out["precision_at_share"] = precision_at(share, out["correct_suggestion_rate"],
                                                 1 - out["abstention_rate"], out["false_suggestion_rate"])
        out["in_class_share"] = share
    return out


def closed_predict(model: Any, X: np.ndarray) -> np.ndarray:
    """The most likely real class (never the background): the study's prediction."""
    classes = [str(c) for c in model.classes_]
    if BACKGROUND not in classes:
        return model.predict(X)
    return predict_class(model.log_odds(X), classes)


# --- a threshold per tag --------------------------------------------------------------------


def truth_matrix(truth: Sequence[Sequence[str] | str], tags: Sequence[str]) -> np.ndarray:
    """``(rows, tags)`` booleans: which tags each row carries (a row is a label or labels; the
    background carries none)."""
    column = {t: k for k, t in enumerate(tags)}
    out = np.zeros((len(truth), len(tags)), dtype=bool)
    for i, labels in enumerate(truth):
        for label in [labels] if isinstance(labels, str) else labels:
            if label in column:
                out[i, column[label]] = True
    return out


def ranked_tags(tags: np.ndarray, thresholds: np.ndarray, top_k: int) -> list[np.ndarray]:
    """Per row of open-set probabilities, the columns of the tags that reach their threshold,
    most likely first, at most ``top_k`` (what the served model suggests for one view)."""
    out = []
    for row in tags:
        passing = np.flatnonzero(row >= thresholds)
        out.append(passing[np.argsort(-row[passing], kind="stable")][:top_k])
    return out


def suggestion_metrics(truth: Sequence[Sequence[str] | str], top: Sequence[str],
                       suggested: Sequence[Sequence[str]], ranking: Sequence[Sequence[str]],
                       share: float, k: int) -> dict[str, Any]:
    """Figures of a labelled set of photos whose ``truth`` (a label or labels) may be
    :data:`BACKGROUND`: per photo its most likely class ``top`` (the study's closed-set
    prediction), the tags ``suggested`` (each past its threshold, ranked, at most k) and its
    ``ranking`` of the classes by probability, whatever the thresholds (its first k count).

    - ``accuracy``: top-1 over class photos (right when ``top`` is one of its labels);
    - ``coverage``: share of class photos with at least one suggestion (``abstention_rate`` = 1 - it);
    - ``suggestion_precision``: right tags among all suggested on class photos;
    - ``false_suggestion_rate``: share of background photos with any suggestion;
    - ``precision_at_k`` / ``recall_at_k``: the first k of the ranking, as hashtag-recommendation
      benchmarks score them: right tags / k, and / the photo's labels, averaged over class photos;
    - ``precision_at_share``: right tags among all suggested on a timeline where ``share`` of the
      posts show a class (class photos weighted ``share``, background photos ``1 - share``);
    - ``per_tag``: each tag's precision over every photo (background included), recall, support;
    - ``several_tags_rate``: share of class photos given two tags or more;
    - ``suggested_accuracy`` and ``correct_suggestion_rate``: as before (top-1 right among the
      photos that got a suggestion; share of class photos that got one and a right top-1).
    """
    sets = [frozenset([t] if isinstance(t, str) else t) - {BACKGROUND} for t in truth]
    inside = np.array([bool(s) for s in sets])
    out: dict[str, Any] = {"class_images": int(inside.sum()), "background_images": int((~inside).sum()), "top_k": k}
    hits = np.array([len(set(g) & s) for g, s in zip(suggested, sets, strict=True)])
    count = np.array([len(g) for g in suggested])
    if inside.any():
        right = np.array([p in s for p, s in zip(top, sets, strict=True)])
        given = count > 0
        at_k = np.array([len(set(list(r)[:k]) & s) for r, s in zip(ranking, sets, strict=True)])
        sizes = np.array([max(len(s), 1) for s in sets])
        tagged = given & inside
        out |= {
            "accuracy": float(np.mean(right[inside])),
            "coverage": float(np.mean(given[inside])),
            "abstention_rate": float(np.mean(~given[inside])),
            "suggestion_precision": float(hits[inside].sum() / count[inside].sum()) if count[inside].sum() else None,
            "several_tags_rate": float(np.mean(count[inside] > 1)),
            "precision_at_k": float(np.mean(at_k[inside] / k)),
            "recall_at_k": float(np.mean(at_k[inside] / sizes[inside])),
            "suggested_accuracy": float(np.mean(right[tagged])) if tagged.any() else None,
            "correct_suggestion_rate": float(np.mean(right[inside] & given[inside])),
        }
    if (~inside).any():
        out["false_suggestion_rate"] = float(np.mean(count[~inside] > 0))
        out["tags_per_background_image"] = float(np.mean(count[~inside]))
    if inside.any() and (~inside).any():
        made = share * np.mean(count[inside]) + (1 - share) * np.mean(count[~inside])
        out["precision_at_share"] = float(share * np.mean(hits[inside]) / made) if made > 0 else None
        out["in_class_share"] = share
    names = sorted({t for s in sets for t in s} | {t for g in suggested for t in g})
    out["per_tag"] = {}
    for name in names:
        has = np.array([name in s for s in sets])
        got = np.array([name in g for g in suggested])
        out["per_tag"][name] = {"support": int(has.sum()),
                                "precision": float(np.mean(has[got])) if got.any() else None,
                                "recall": float(np.mean(got[has])) if has.any() else None}
    return out
