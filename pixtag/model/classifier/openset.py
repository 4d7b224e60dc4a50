"""Open-set suggestions: say nothing when a photo shows none of the classes (pure numpy).

The classifier is trained on the classes plus *background* images (posts carrying none of the
classes' tags) under the reserved label :data:`BACKGROUND`, which is never a tag. A tag's
open-set probability in one view is its calibrated probability when that is at least the
background's, else 0; a tag is suggested when it reaches the threshold. The threshold is chosen
on held-out (out-of-fold) images so that at most ``target`` of the background images would get
a tag, and at most ``target`` of the class images a wrong one.

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
    from pixtag.core.config import Settings

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


def wrong_confidence(probs: np.ndarray, labels: Sequence[str], truth: Sequence[str]) -> np.ndarray:
    """Per class image, the best open-set probability of a *wrong* tag (the true one masked)."""
    tags = tag_probabilities(probs, labels)
    names = np.asarray(labels)[class_columns(labels)]
    return np.where(names[None, :] == np.asarray(truth)[:, None], 0.0, tags).max(axis=1)


def choose_threshold(background_confidence: np.ndarray, target: float,
                     floor: float = 1e-6) -> float:
    """The smallest threshold at which at most ``target`` of these background images get a tag."""
    scores = np.sort(np.asarray(background_confidence, dtype=float))[::-1]
    allowed = int(np.floor(target * len(scores)))  # how many may pass
    if allowed >= len(scores):
        return float(floor)
    return float(max(floor, np.nextafter(scores[allowed], np.inf)))


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


def pick_threshold(settings: Settings, oof: np.ndarray, y: np.ndarray,
                   labels: Sequence[str]) -> tuple[float, str]:
    """The suggestion threshold and where it came from: the setting, else the smallest at
    which at most ``false_suggestion_target`` of the held-out background images get a tag and
    at most that share of the held-out class images get a wrong one."""
    if settings.threshold is not None:
        return float(settings.threshold), "settings"
    background = y == BACKGROUND
    if not background.any():
        return DEFAULT_THRESHOLD, "default (no background images)"
    target = settings.false_suggestion_target
    chosen = max(choose_threshold(confidence(oof[background], labels), target),
                 choose_threshold(wrong_confidence(oof[~background], labels, y[~background]), target))
    return chosen, (f"chosen on out-of-fold images ({int(background.sum())} background, "
                    f"{int((~background).sum())} of classes): at most {target} of either get a wrong tag")
