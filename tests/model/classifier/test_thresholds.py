"""A threshold per tag, chosen on out-of-fold images, and the figures of several tags per photo
(pure: no backbone, no MLflow)."""

from __future__ import annotations

import numpy as np
import pytest

from pixtag.core.config import load_settings
from pixtag.model.classifier.estimator import LinearSVMClassifier
from pixtag.model.classifier.folds import fit_splits
from pixtag.model.classifier.openset import (
    BACKGROUND,
    DEFAULT_THRESHOLD,
    suggestion_metrics,
    tag_probabilities,
    truth_matrix,
)
from pixtag.model.classifier.thresholds import (
    LOWEST_START,
    pick_threshold,
    pick_thresholds,
    raise_for_background,
    raise_for_precision,
)

LABELS = [BACKGROUND, "cat", "dog", "fox"]


def oof_probabilities(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold probabilities of 100 images per class and 200 background ones: cats score
    0.5-0.99, dogs and foxes 0.86-0.99; four foxes also score 0.80-0.815 as dogs and four dogs
    0.82-0.835 as foxes (a wrong second tag), ten dogs 0.4 as cats; twelve background images
    have a tag beat the background at 0.45-0.6."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for label, low in (("cat", 0.5), ("dog", 0.86), ("fox", 0.86)):
        for _ in range(100):
            p = rng.uniform(0.0, 0.05, 4)
            p[LABELS.index(label)] = rng.uniform(low, 0.99)
            rows.append(p)
            truth.append(label)
    for i in range(4):
        rows[200 + i][2] = 0.80 + 0.005 * i  # foxes that also look like dogs
        rows[100 + i][3] = 0.82 + 0.005 * i  # dogs that also look like foxes
    for i in range(10):
        rows[110 + i][1] = 0.4
    for i in range(200):
        p = rng.uniform(0.0, 0.05, 4)
        p[0] = rng.uniform(0.3, 0.9)
        if i < 12:
            p[0], p[1 + i % 3] = 0.1, rng.uniform(0.45, 0.6)
        rows.append(p)
        truth.append(BACKGROUND)
    return np.array(rows), truth


def class_precision(P: np.ndarray, T: np.ndarray, thresholds: np.ndarray) -> float:
    passed = P[T.any(axis=1)] >= thresholds
    return float((passed & T[T.any(axis=1)]).sum() / passed.sum())


def test_each_tag_gets_its_own_threshold_for_the_target_precision() -> None:
    """From the one threshold of the old rule, dog and fox are raised past their wrong second
    tags (which costs no image its right tag); cat keeps it."""
    oof, truth = oof_probabilities()
    tags = ["cat", "dog", "fox"]
    P, T = tag_probabilities(oof, LABELS), truth_matrix(truth, tags)
    settings = load_settings(target_precision=0.99, false_suggestion_target=0.03)
    one, _ = pick_threshold(settings, oof, np.array(truth), LABELS)
    assert class_precision(P, T, np.full(3, one)) < 0.99  # one threshold for all: 8 wrong second tags
    chosen = pick_thresholds(settings, oof, truth, LABELS)
    assert chosen.one == one and "per tag" in chosen.source and set(chosen.values) == set(tags)
    assert chosen.values["cat"] == one and chosen.values["dog"] > 0.815 and chosen.values["fox"] > 0.835
    assert class_precision(P, T, chosen.vector(tags)) >= 0.99
    covered = (P[T.any(axis=1)] >= chosen.vector(tags)).any(axis=1)
    assert covered.mean() == (P[T.any(axis=1)] >= one).any(axis=1).mean()  # no image lost its tag
    background = ~T.any(axis=1)
    assert np.mean((P[background] >= chosen.vector(tags)).any(axis=1)) <= 0.03
    for k, tag in enumerate(tags):  # what training logs of each tag
        passed = P[:, k] >= chosen.values[tag]
        assert chosen.out_of_fold[tag] == {"threshold": chosen.values[tag], "support": 100,
                                           "precision": pytest.approx(T[passed, k].mean()),
                                           "recall": pytest.approx(passed[T[:, k]].mean())}
    # a lower target leaves the fox its wrong tags: one raise is enough
    looser = pick_thresholds(settings.model_copy(update={"target_precision": 0.985}), oof, truth, LABELS)
    assert sum(v > one for v in looser.values.values()) == 1


def test_raising_for_precision_spares_the_images_right_tag() -> None:
    """Wrong second tags go first: raising the dog tag past a fox photo's 0.8 costs nothing when
    every dog scores above it; past dogs that score less, they lose their only right tag."""
    P = np.array([[0.9, 0.0], [0.95, 0.0], [0.8, 0.9], [0.3, 0.85], [0.5, 0.0]])
    T = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0]], dtype=bool)
    t = raise_for_precision(P[[0, 1, 2, 3]], T[[0, 1, 2, 3]], np.array([0.2, 0.2]), 0.99)
    assert np.isclose(t[0], np.nextafter(0.8, 1)) and t[1] == 0.2
    t = raise_for_precision(P, T, np.array([0.2, 0.2]), 0.99)
    assert 0.8 < t[0] <= 0.9 and t[1] == 0.2  # the dog at 0.5 loses its tag: the price of the precision


def test_thresholds_are_raised_until_few_background_images_get_a_tag() -> None:
    oof, truth = oof_probabilities(1)
    tags = ["cat", "dog", "fox"]
    P, T = tag_probabilities(oof, LABELS), truth_matrix(truth, tags)
    background = ~T.any(axis=1)
    low = np.full(3, 0.01)
    assert np.mean((P[background] >= low).any(axis=1)) > 0.05
    raised = raise_for_background(P, T, background, low, 0.02)
    assert np.mean((P[background] >= raised).any(axis=1)) <= 0.02
    assert (raised >= low).all()
    # only as far as needed: each raised threshold sits just above a background image's score
    for k in np.flatnonzero(raised > low):
        assert np.isclose(P[background, k], np.nextafter(raised[k], 0), atol=1e-12).any()


def test_the_setting_and_no_background_give_one_threshold() -> None:
    oof, truth = oof_probabilities()
    fixed = pick_thresholds(load_settings(threshold=0.3), oof, truth, LABELS)
    assert set(fixed.values.values()) == {0.3} and fixed.source == "settings"
    classes_only = [i for i, t in enumerate(truth) if t != BACKGROUND]
    none = pick_thresholds(load_settings(), oof[classes_only][:, 1:], [truth[i] for i in classes_only], LABELS[1:])
    assert set(none.values.values()) == {DEFAULT_THRESHOLD}


def test_no_tag_starts_below_the_lowest_start() -> None:
    """Well apart classes and background: the old rule's one threshold would be tiny; a tag is
    still not suggested below LOWEST_START (unseen photos there were wrong more often)."""
    oof = np.array([[0.01, 0.9, 0.01, 0.01], [0.01, 0.01, 0.9, 0.01], [0.01, 0.01, 0.01, 0.9], [0.9, 0.01, 0.01, 0.01]])
    chosen = pick_thresholds(load_settings(), oof, ["cat", "dog", "fox", BACKGROUND], LABELS)
    assert chosen.one < LOWEST_START and set(chosen.values.values()) == {LOWEST_START}


def test_a_photo_with_two_labels_counts_for_both_tags() -> None:
    oof = np.array([[0.01, 0.9, 0.8, 0.01], [0.9, 0.01, 0.01, 0.01]])
    truth = [("cat", "dog"), (BACKGROUND,)]
    assert truth_matrix(truth, ["cat", "dog", "fox"]).tolist() == [[True, True, False], [False, False, False]]
    chosen = pick_thresholds(load_settings(), oof, truth, LABELS)
    assert chosen.out_of_fold["dog"]["precision"] == 1.0 and chosen.out_of_fold["dog"]["support"] == 1
    assert chosen.out_of_fold["cat"]["recall"] == 1.0 and chosen.values["dog"] <= 0.8


def test_suggestion_figures() -> None:
    truth = ["cat", "dog", ("cat", "dog"), "fox", BACKGROUND, BACKGROUND]
    top = ["cat", "cat", "dog", "fox", "cat", "dog"]
    suggested = [["cat"], ["cat", "dog"], ["dog", "cat"], [], ["cat"], []]
    ranking = [["cat", "dog", "fox"], ["cat", "dog", "fox"], ["dog", "cat", "fox"], ["fox", "dog", "cat"],
               ["cat", "fox", "dog"], ["dog", "cat", "fox"]]
    m = suggestion_metrics(truth, top, suggested, ranking, 0.5, 3)
    assert (m["class_images"], m["background_images"]) == (4, 2)
    assert m["accuracy"] == 0.75  # the dog photo's top-1 is cat; the two-label photo's dog is right
    assert m["coverage"] == 0.75 and m["abstention_rate"] == 0.25
    assert m["suggestion_precision"] == pytest.approx(4 / 5)  # cat, dog (of 2), dog and cat
    assert m["several_tags_rate"] == 0.5
    assert m["false_suggestion_rate"] == 0.5
    assert m["precision_at_k"] == pytest.approx((1 + 1 + 2 + 1) / 3 / 4)
    assert m["recall_at_k"] == 1.0
    # half the posts show a class: 4 right of 5 tags per 4 class photos, 1 tag per 2 others
    assert m["precision_at_share"] == pytest.approx(0.5 * 4 / 4 / (0.5 * 5 / 4 + 0.5 * 1 / 2))
    assert m["per_tag"]["cat"] == {"support": 2, "precision": pytest.approx(2 / 4), "recall": 1.0}
    assert m["per_tag"]["fox"] == {"support": 1, "precision": None, "recall": 0.0}


# --- several labels per image: one-vs-rest with indicator targets ------------------------------
def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three classes in 8-d and images half way between cat and dog labelled both."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 4
    X = np.concatenate([centres[k] + rng.normal(size=(60, 8)) for k in range(3)]
                       + [(centres[0] + centres[1]) / 2 + rng.normal(size=(30, 8)) * 0.5])
    Y = np.zeros((210, 3), dtype=int)
    Y[np.arange(180), np.repeat([0, 1, 2], 60)] = 1
    Y[180:, :2] = 1
    return X.astype(np.float32), Y, ["cat", "dog", "fox"]


def test_an_image_with_two_labels_is_positive_for_both() -> None:
    X, Y, names = blobs()
    model = LinearSVMClassifier().fit(X, Y, classes=names)
    assert list(model.classes_) == names
    both = model.predict_tag_proba(X[180:])
    assert (both[:, 0] > 0.5).mean() > 0.9 and (both[:, 1] > 0.5).mean() > 0.9 and (both[:, 2] < 0.1).all()
    single = LinearSVMClassifier().fit(X, np.array(names)[np.argmax(Y, axis=1)])  # one label: cat only
    assert (single.predict_tag_proba(X[180:])[:, 1] > 0.5).mean() < 0.5
    with pytest.raises(ValueError, match="one name per column"):
        LinearSVMClassifier().fit(X, Y, classes=["cat", "dog"])


def test_fit_splits_with_two_labels_gives_the_models_of_independent_fits() -> None:
    X, Y, names = blobs(1)
    rng = np.random.default_rng(0)
    trains = [np.sort(rng.permutation(210)[:170]) for _ in range(3)]
    refit, folds = fit_splits(LinearSVMClassifier(), X, Y, trains, 2, names)
    alone = LinearSVMClassifier().fit(X, Y, classes=names)
    assert np.allclose(refit.coef_, alone.coef_, atol=1e-4) and list(refit.classes_) == names
    for model, rows in zip(folds, trains, strict=True):
        cold = LinearSVMClassifier().fit(X[rows], Y[rows], classes=names)
        assert np.allclose(model.predict_tag_proba(X), cold.predict_tag_proba(X), atol=1e-4)
