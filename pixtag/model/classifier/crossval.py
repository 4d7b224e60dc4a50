"""Cross-validation as the study did it, grouped by origin: stratified k folds in which no post
(or account) has images on both sides (:func:`grouped_folds`), scored by the closed-set accuracy
over class images, and the refit on all rows (:func:`cv_and_refit`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixtag.core.errors import PixtagError
from pixtag.model.classifier.openset import BACKGROUND, closed_predict


class TrainError(PixtagError):
    """The dataset cannot be trained on as asked."""


def check_groups(y: np.ndarray, groups: np.ndarray, n_splits: int, what: str) -> None:
    """Every class needs images from at least two origins to be on both sides of a split."""
    if len(np.unique(groups)) < n_splits:
        raise TrainError(f"{what} needs at least {n_splits} origins (posts or accounts, see "
                         f"group_by), found {len(np.unique(groups))}")
    few = {str(c): len(np.unique(groups[y == c])) for c in np.unique(y)
           if len(np.unique(groups[y == c])) < 2}
    if few:
        raise TrainError(f"classes whose images all come from one origin cannot be split for {what} "
                         f"without leaking it (group_by; origins per class): {few}")


def check_sides(y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], what: str) -> None:
    """A grouped split can leave a class out of one side: say which, instead of a bad model."""
    labels = set(np.unique(y))
    for n, (train, test) in enumerate(splits):
        missing = {"train": sorted(map(str, labels - set(y[train]))),
                   "test": sorted(map(str, labels - set(y[test])))}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            raise TrainError(f"grouped by origin, {what} (part {n + 1}) has no images of {missing}: "
                             "too few posts or accounts per class (collect more, or group_by: post)")


def grouped_folds(y: np.ndarray, folds: int, seed: int,
                  groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``(train, held-out)`` row indices of ``folds`` folds; with ``groups`` (one
    origin per row), no origin on both sides of a fold (groups of one row each: plain folds)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    rows = np.zeros(len(y))
    if groups is None or len(np.unique(groups)) == len(y):
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, y))
    check_groups(y, groups, folds, "cross-validation")
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, y, groups))
    check_sides(y, splits, "cross-validation")
    return splits


def cv_and_refit(estimator: Any, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                 oof: list[Any] | None = None,
                 groups: np.ndarray | None = None,
                 predictions: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 targets: np.ndarray | None = None, classes: Sequence[str] | None = None) -> tuple[list[float], Any]:
    """Closed-set accuracy over the class images of each stratified fold (grouped by
    ``groups`` when given: no origin on both sides of a fold), and a clone fitted on all rows.
    With ``targets`` (a 0/1 indicator matrix whose columns ``classes`` names: several labels per
    row), pixtag's classifier is fitted on them and a prediction is right when it is any of the
    row's labels; ``y`` (one of each row's labels) still stratifies the folds.
    With ``oof`` (a list), the fold models' calibrated probabilities of their held-out rows
    are appended to it as one ``(rows, labels)`` array in row order. With ``predictions`` (a
    list), each fold's ``(held-out class rows, predicted labels)`` is appended.

    The k fold fits and the refit run in one thread pool, one BLAS thread each (multi-threaded
    BLAS only adds waiting at these sizes). pixtag's classifier shares work between them
    (:func:`pixtag.model.classifier.folds.fit_splits`: each fold starts from the refit's optimum, for the
    same models); any other estimator is k + 1 independent jobs.
    """
    from threadpoolctl import threadpool_limits

    from pixtag.model.classifier.estimator import LinearSVMClassifier
    from pixtag.model.classifier.folds import fit_splits

    splits = grouped_folds(y, folds, seed, groups)
    workers = min(folds + 1, len(os.sched_getaffinity(0)))
    if targets is not None and type(estimator) is not LinearSVMClassifier:
        raise TrainError("several labels per image need pixtag's LinearSVMClassifier")
    if type(estimator) is LinearSVMClassifier:  # the folds start from the refit's optimum
        with threadpool_limits(1):
            refit, fitted = fit_splits(estimator, X, y if targets is None else targets,
                                       [train for train, _ in splits], workers, classes)
    else:
        refit, fitted = _independent_fits(estimator, X, y, splits, workers)
    if oof is not None and hasattr(refit, "predict_tag_proba"):
        oof.append(held_out_probabilities(fitted, X, splits))
    return [fold_accuracy(model, X, y, test, targets, classes, predictions)
            for model, (_, test) in zip(fitted, splits, strict=True)], refit


def _independent_fits(estimator: Any, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                      workers: int) -> tuple[Any, list[Any]]:
    """Any other estimator: the refit and the k fold fits as k + 1 independent jobs (the refit,
    the longest, first)."""
    from joblib import Parallel, delayed
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    jobs = [delayed(lambda: clone(estimator).fit(X, y))(),
            *(delayed(lambda tr: clone(estimator).fit(X[tr], y[tr]))(train) for train, _ in splits)]
    with threadpool_limits(1):
        done = Parallel(n_jobs=workers, backend="threading")(jobs)
    return done[0], done[1:]


def held_out_probabilities(fitted: Sequence[Any], X: np.ndarray,
                           splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The fold models' calibrated probabilities of their held-out rows, as one ``(rows, labels)``
    array in row order (out-of-fold)."""
    probs = np.zeros((len(X), len(fitted[0].classes_)))
    for model, (_, test) in zip(fitted, splits, strict=True):
        probs[test] = model.predict_tag_proba(X[test])
    return probs


def fold_accuracy(model: Any, X: np.ndarray, y: np.ndarray, test: np.ndarray, targets: np.ndarray | None,
                  classes: Sequence[str] | None, predictions: list[tuple[np.ndarray, np.ndarray]] | None) -> float:
    """Closed-set accuracy of a fold's model over its held-out class images (right: the row's label,
    or with ``targets`` any of its labels); the predictions are appended to ``predictions``."""
    test = test[y[test] != BACKGROUND]
    predicted = closed_predict(model, X[test])
    if predictions is not None:
        predictions.append((test, predicted))
    if targets is None:
        return float(np.mean(predicted == y[test]))
    column = {str(c): k for k, c in enumerate(classes or [])}
    return float(np.mean([targets[row, column[str(p)]] > 0 for row, p in zip(test, predicted, strict=True)]))
