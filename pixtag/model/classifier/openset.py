"""Open-set suggestions: say nothing when a photo shows none of the classes (pure numpy).

The classifier is trained on the classes plus *background* images (posts carrying none of the
classes' tags) under the reserved label :data:`BACKGROUND`, which is never a tag. A tag's
open-set probability in one view is its calibrated probability when that is at least the
background's, else 0; a tag is suggested when it reaches **its own threshold**, and a photo gets
every tag that does, most likely first, at most ``top_k``.

**Where the thresholds are chosen** (:func:`pick_thresholds`), on held-out (out-of-fold) images:
every tag starts from the one threshold pixtag used before (:func:`pick_threshold`: at most
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

Measured side by side on the offline backbone (``bench/openset.py``): the background class beat
a threshold on the 5-class probability, a feature-space distance (k-NN cosine), max-logit and
energy scores, and the backbone's ImageNet prediction mapped through WordNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import BACKGROUND

if TYPE_CHECKING:
    from pixtag.core.config import Settings

#: The threshold of a model trained without background images, which cannot choose one (and of
#: models logged before thresholds were chosen in training).
DEFAULT_THRESHOLD = 0.5

#: The lowest threshold a tag starts from (:func:`pick_thresholds`): on photos training never saw,
#: suggestions below 0.3 were wrong more often than the out-of-fold images said (four grouped
#: splits of eighteen classes: precision of suggestions 0.976 -> 0.980, false suggestions 0.025
#: -> 0.013, coverage 0.965 -> 0.963; neutral at five classes).
LOWEST_START = 0.3


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


# --- a threshold per tag --------------------------------------------------------------------
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
