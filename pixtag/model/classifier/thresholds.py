"""Where the suggestion thresholds are chosen: :func:`pick_thresholds`, on held-out (out-of-fold)
images. Every tag starts from the one threshold pixtag used before (:func:`pick_threshold`: at most
``false_suggestion_target`` of the background images get a tag, and of the class images a wrong
one), or from :data:`LOWEST_START` when that is higher; each tag's threshold is then raised
past its wrong suggestions on class images until ``target_precision`` of the suggestions there
are right (:func:`raise_for_precision`), and raised again until at most
``false_suggestion_target`` of the background images get any tag (:func:`raise_for_background`).
Both are greedy and spend as little coverage (class images that keep a right tag) as they can:
a wrong second tag on an image whose right tag stays costs nothing.
The one threshold is kept in the model (``trained_threshold``), for comparison and older readers.

Measured on photos training never saw (``bench/vocabulary.py``, eighteen classes): a per-tag
precision rule (each tag the smallest threshold at which its own out-of-fold precision reaches
the target) left 6-9 % of class photos without a tag, a few confusable classes (sushi/ramen,
dog/fox) taking thresholds above 0.9 from one or two out-of-fold mistakes; optimising the
precision of all suggestions at once (micro) gave the same coverage for less precision.
The probabilities are the classifier's (``tag_probability``): with the default softmax, tags
that compete for a photo share its probability, so most tags keep :data:`LOWEST_START` and only
a few confusable ones are raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import BACKGROUND
from pixtag.model.classifier.openset import (
    DEFAULT_THRESHOLD,
    class_columns,
    confidence,
    tag_probabilities,
    truth_matrix,
    wrong_confidence,
)

if TYPE_CHECKING:
    from pixtag.core.config import Settings

#: The lowest threshold a tag starts from (:func:`pick_thresholds`): on photos training never saw,
#: suggestions below 0.3 were wrong more often than the out-of-fold images said (four grouped
#: splits of eighteen classes: precision of suggestions 0.976 -> 0.980, false suggestions 0.025
#: -> 0.013, coverage 0.965 -> 0.963; neutral at five classes).
LOWEST_START = 0.3


def choose_threshold(background_confidence: np.ndarray, target: float,
                     floor: float = 1e-6) -> float:
    """The smallest threshold at which at most ``target`` of these background images get a tag."""
    scores = np.sort(np.asarray(background_confidence, dtype=float))[::-1]
    allowed = int(np.floor(target * len(scores)))  # how many may pass
    if allowed >= len(scores):
        return float(floor)
    return float(max(floor, np.nextafter(scores[allowed], np.inf)))


def pick_threshold(settings: Settings, oof: np.ndarray, y: Sequence[Any],
                   labels: Sequence[str]) -> tuple[float, str]:
    """The suggestion threshold and where it came from: the setting, else the smallest at
    which at most ``false_suggestion_target`` of the held-out background images get a tag and
    at most that share of the held-out class images get a wrong one."""
    if settings.threshold is not None:
        return float(settings.threshold), "settings"
    background = np.array([(t if isinstance(t, str) else tuple(t)) in (BACKGROUND, (BACKGROUND,)) for t in y])
    if not background.any():
        return DEFAULT_THRESHOLD, "default (no background images)"
    target = settings.false_suggestion_target
    classes = [t for t, b in zip(y, background, strict=True) if not b]
    chosen = max(choose_threshold(confidence(oof[background], labels), target),
                 choose_threshold(wrong_confidence(oof[~background], labels, classes), target))
    return chosen, (f"chosen on out-of-fold images ({int(background.sum())} background, "
                    f"{int((~background).sum())} of classes): at most {target} of either get a wrong tag")


@dataclass
class Thresholds:
    """Each tag's threshold, where they came from, the one threshold of the old rule, and each
    tag's out-of-fold precision, recall and support at its threshold."""

    values: dict[str, float]
    source: str
    one: float
    out_of_fold: dict[str, dict[str, Any]] = field(default_factory=dict)

    def vector(self, tags: Sequence[str]) -> np.ndarray:
        return np.array([self.values[t] for t in tags], dtype=float)


class _Coverage:
    """What raising thresholds costs on the class rows (``tags``/``truth`` of class images): the
    images that would lose their last right tag (coverage), and right suggestions (recall)."""

    TP_WEIGHT = 0.01  # a right suggestion lost where the image keeps another: a tie-breaker

    def __init__(self, tags: np.ndarray, truth: np.ndarray, thresholds: np.ndarray):
        self.tags, self.truth = tags, truth
        self.update(thresholds)

    def update(self, thresholds: np.ndarray) -> None:
        self.t = np.asarray(thresholds, dtype=float).copy()
        self.passed = self.tags >= self.t
        self.right = (self.passed & self.truth).sum(axis=1)  # right tags each image gets

    def precision(self) -> float:
        made = int(self.passed.sum())
        return 1.0 if made == 0 else float((self.passed & self.truth).sum() / made)

    def cost(self, raised: np.ndarray) -> float:
        """Coverage lost (plus a little per right suggestion lost) by raising to ``raised``."""
        moved = np.flatnonzero(raised > self.t)
        if not len(moved):
            return 0.0
        lose = self.passed[:, moved] & self.truth[:, moved] & (self.tags[:, moved] < raised[moved])
        lost_right = lose.sum(axis=1)
        return float(np.sum((lost_right > 0) & (lost_right == self.right)) + self.TP_WEIGHT * lost_right.sum())

    def best_raise_of(self, k: int) -> tuple[float, int, float] | None:
        """The best raise of tag ``k`` past wrong suggestions: ``(wrong removed per cost, wrong
        removed, new threshold)``, each candidate just above a wrong suggestion's score."""
        rows = np.flatnonzero(self.passed[:, k])
        wrong = ~self.truth[rows, k]
        if not wrong.any():
            return None
        order = np.argsort(self.tags[rows, k], kind="stable")
        rows, wrong = rows[order], wrong[order]
        scores = self.tags[rows, k]
        right = ~wrong
        sole = right & (self.right[rows] == 1)
        gone_wrong, gone_right, gone_sole = np.cumsum(wrong), np.cumsum(right), np.cumsum(sole)
        ends = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True] & (gone_wrong > 0))
        cost = gone_sole[ends] + self.TP_WEIGHT * gone_right[ends]
        ratio = gone_wrong[ends] / (cost + 1e-9)
        best = int(np.lexsort((gone_wrong[ends], ratio))[-1])
        return float(ratio[best]), int(gone_wrong[ends][best]), float(np.nextafter(scores[ends][best], np.inf))


def raise_for_precision(tags: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, target: float) -> np.ndarray:
    """Raise ``thresholds`` until the suggestions made on these (class) rows are at least
    ``target`` right (precision), losing as little coverage as possible.

    Greedy: each step raises one tag just past some of its wrong suggestions, the step that
    removes most wrong suggestions per image left without a right tag (a wrong second tag on an
    image whose right tag stays costs nothing; right suggestions lost count a little)."""
    state = _Coverage(tags, truth, thresholds)
    while state.precision() < target:
        steps = [(step, k) for k in range(tags.shape[1]) if (step := state.best_raise_of(k)) is not None]
        if not steps:
            break
        (_, _, value), k = max(steps, key=lambda s: s[0][:2])
        t = state.t.copy()
        t[k] = value
        state.update(t)
    return state.t


def raise_for_background(tags: np.ndarray, truth: np.ndarray, background: np.ndarray,
                         thresholds: np.ndarray, target: float) -> np.ndarray:
    """Raise ``thresholds`` until at most ``target`` of the ``background`` rows get any tag.

    Greedy: while too many background rows are tagged, un-tag the one that costs the least
    coverage of the class rows (images left without a right tag; right suggestions lost count a
    little) per background row un-tagged; each step raises only the tags that row gets."""
    t = np.asarray(thresholds, dtype=float).copy()
    back = tags[background]
    allowed = int(np.floor(target * len(back)))
    state = _Coverage(tags[~background], truth[~background], t)
    while True:
        tagged = (back >= t).any(axis=1)
        if tagged.sum() <= allowed:
            return t
        best: tuple[float, int, np.ndarray] | None = None
        for i in np.flatnonzero(tagged):
            fire = np.flatnonzero(back[i] >= t)
            raised = t.copy()
            raised[fire] = np.nextafter(back[i, fire], np.inf)
            freed = int(tagged.sum() - (back >= raised).any(axis=1).sum())
            key = (state.cost(raised) / freed, -freed)
            if best is None or key < best[:2]:
                best = (*key, raised)
        assert best is not None
        t = best[2]
        state.update(t)


def pick_thresholds(settings: Settings, oof: np.ndarray, truth: Sequence[Sequence[str] | str],
                    labels: Sequence[str]) -> Thresholds:
    """Each tag's suggestion threshold, from out-of-fold calibrated probabilities ``oof`` (rows ×
    fitted ``labels``) and each row's true label(s) ``truth``.

    From the one threshold of the old rule (:func:`pick_threshold`, at least
    :data:`LOWEST_START`), each tag's threshold is
    raised, past its wrong suggestions on class images, until the suggestions on those are at
    least ``target_precision`` right (:func:`raise_for_precision`), then until at most
    ``false_suggestion_target`` of the background images get any tag
    (:func:`raise_for_background`); both steps lose as little coverage (images with a right tag)
    as they can. ``settings.threshold`` overrides every tag; without background images every tag
    gets :data:`DEFAULT_THRESHOLD` (nothing says how often other photos would be tagged)."""
    tags = [labels[i] for i in class_columns(labels)]
    one, one_source = pick_threshold(settings, oof, list(truth), labels)
    opened = tag_probabilities(oof, labels)
    carried = truth_matrix(truth, tags)
    background = ~carried.any(axis=1)
    if one_source in ("settings", "default (no background images)"):
        values = np.full(len(tags), one)
        source = one_source
    else:
        target = settings.target_precision
        start = np.full(len(tags), max(one, LOWEST_START))
        values = raise_for_precision(opened[~background], carried[~background], start, target)
        values = raise_for_background(opened, carried, background, values, settings.false_suggestion_target)
        source = (f"per tag, on out-of-fold images ({int(background.sum())} background, "
                  f"{int((~background).sum())} of classes): from {max(one, LOWEST_START):.3f}, raised until the "
                  f"suggestions on class images are at least {target} right and at most "
                  f"{settings.false_suggestion_target} of the background images get a tag")
    passed = opened >= values
    stats = {tag: {"threshold": float(values[k]), "support": int(carried[:, k].sum()),
                   "precision": float(np.mean(carried[passed[:, k], k])) if passed[:, k].any() else None,
                   "recall": float(np.mean(passed[carried[:, k], k])) if carried[:, k].any() else None}
             for k, tag in enumerate(tags)}
    return Thresholds({tag: float(v) for tag, v in zip(tags, values, strict=True)}, source, one, stats)
