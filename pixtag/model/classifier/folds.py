"""k fold fits and the refit of :class:`~pixtag.model.classifier.estimator.LinearSVMClassifier`,
sharing work: each fold starts Newton's method from the refit's optimum (:func:`fit_splits`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from pixtag.model.classifier.estimator import LinearSVMClassifier, is_indicator
from pixtag.model.classifier.solver import Optimum, Penalty, gram_of, newton, platt, primal_loo, ridge_start


def fit_splits(estimator: LinearSVMClassifier, X: Any, y: Any, trains: Sequence[np.ndarray],
               workers: int, classes: Any = None) -> tuple[LinearSVMClassifier, list[LinearSVMClassifier]]:
    """A fit on all rows and one on each of ``trains`` (row indices), in ``workers`` threads:
    the models ``clone(estimator).fit`` gives, for much less work.

    The refit solves each class from the ridge start. Each fold then starts Newton's method
    from the refit's optimum of the class (the same decision values, over the refit's
    standardised rows, with the penalty that makes the weights the fold's own: see
    :func:`_fold`), with ``X_A^T X_A`` of that active set taken from the refit's less its
    held-out rows: no ``X^T X`` and no ridge step of its own, and about one Newton step fewer.
    The optimum is unique and the stopping rule proves it (see :func:`newton`), so a fold's
    model is the one a cold fit finds, to the solver's tolerance; the fold never sees its
    held-out labels. Where that does not apply (n ≤ d: the samples' space; a fold that lacks
    a class), plain fits.

    ``y``: labels, or a 0/1 indicator matrix whose columns ``classes`` names (several labels per
    row: see :meth:`LinearSVMClassifier.fit`). Memory: a class's refit optimum (its ``X_A^T X_A``)
    is kept only until every fold has started from it; a fold keeps its weights, not its optimum.
    """
    refit = clone(estimator)
    refit._validate_params()
    X, targets = refit._learn_classes(X, y, classes)
    trains = [np.asarray(train) for train in trains]
    n_classes = len(refit.classes_)
    with ThreadPoolExecutor(workers) as pool:
        if any(len(rows) <= X.shape[1] + 1 or not (targets[rows] > 0).any(axis=0).all()
               for rows in [np.arange(len(X)), *trains]):
            fit_y = np.asarray(y) if is_indicator(y) else refit.classes_[np.argmax(targets, axis=1)]
            names = refit.classes_ if is_indicator(y) else None
            jobs = [pool.submit(clone(estimator).fit, X[rows], fit_y[rows], names)
                    for rows in [np.arange(len(X)), *trains]]
            fitted = [job.result() for job in jobs]
            return fitted[0], fitted[1:]
        Z, squares = refit._learn_scaling(X)
        C, max_iter = refit.C, refit.max_iter
        half = len(Z) // 2
        grams = [pool.submit(gram_of, rows) for rows in (Z[:half], Z[half:])]
        folds = [pool.submit(_fold, clone(estimator), refit, X, Z, squares, t) for t in trains]
        gram = grams[0].result() + grams[1].result()
        start = ridge_start(Z, targets, C, gram)
        cold = [pool.submit(_cold_class, Z, targets[:, k], C, max_iter, start[:, k], gram) for k in range(n_classes)]
        users = [_Users(len(folds)) for _ in range(n_classes)]
        # FIFO: a warm job only waits on jobs submitted (so started) before it
        warm = [[pool.submit(_warm_class, fold, cold[k], users[k], Z, targets[:, k], C, max_iter)
                 for k in range(n_classes)] for fold in folds]
        refit = _assemble(refit, [job.result()[1:] for job in cold])
        return refit, [_assemble(fold.result().model, [job.result() for job in jobs])
                       for fold, jobs in zip(folds, warm, strict=True)]


class _Users:
    """Counts the folds still to start from a class's refit optimum; the last one frees it."""

    def __init__(self, count: int):
        self.count, self.lock = count, threading.Lock()

    def done(self, job: Future[Any]) -> None:
        with self.lock:
            self.count -= 1
            if self.count == 0:
                job.result()[0].release()


@dataclass
class _Fold:
    """A fold: its model (with classes and scaling), its rows of the refit's ``Z`` and the
    penalty that makes weights over those the fold's own (see :func:`_fold`)."""

    model: LinearSVMClassifier
    train: np.ndarray
    Z: np.ndarray
    a: float
    e: np.ndarray
    penalty: Penalty


def _fold(model: LinearSVMClassifier, refit: LinearSVMClassifier, X: np.ndarray, Z: np.ndarray,
          squares: np.ndarray, train: np.ndarray) -> _Fold:
    """The fold's ``mean_`` and ``scale_`` as ``fit`` learns them (the mean squared norm from
    the refit's row norms: ``|x - m_fold|²`` sums to ``sum |x - m|² - n |m_fold - m|²``).

    The fold's standardised rows are ``Z_fold = Z[train] N`` with ``N = [[aI, 0], [-e, 1]]``
    (``a = scale / scale_fold``, ``e = (m_fold - m) / scale_fold``), so the fold is solved over
    ``Z[train]`` for ``v = N w``, penalised by ``|w|² = |N^-1 v|² = |v_x|²/a² + (e·v_x/a + v_b)²``.
    Decision values and leverages are the same in both coordinates; only the weights move.
    """
    model.n_features_in_, model.classes_ = refit.n_features_in_, refit.classes_
    model.probability_ = refit.probability_
    if hasattr(refit, "feature_names_in_"):
        model.feature_names_in_ = refit.feature_names_in_
    model.mean_ = X[train].mean(axis=0, dtype=np.float64)
    shift = model.mean_ - refit.mean_
    norm = np.sqrt(max(float(np.mean(squares[train]) - shift @ shift), 0.0))
    model.scale_ = float(norm) if norm > 0 else 1.0
    a, e = refit.scale_ / model.scale_, shift / model.scale_
    r = np.full(Z.shape[1], 1 / a**2)
    r[-1] = 0.0
    return _Fold(model, train, Z[train], a, e, Penalty(r, np.append(e / a, 1.0)))


class _Start:
    """What the folds start from: a class's refit optimum (weights, active set, ``X_A^T X_A``)."""

    def __init__(self, opt: Optimum):
        self.w, self.active, self.gram = opt.w, opt.active, opt.gram

    def release(self) -> None:
        self.gram = None  # type: ignore[assignment]


Solved = tuple[int, np.ndarray, tuple[float, float]]  # Newton steps, weights, Platt (a, b)


def _cold_class(X: np.ndarray, t: np.ndarray, C: float, max_iter: int, w: np.ndarray,
                gram: np.ndarray) -> tuple[_Start, int, np.ndarray, tuple[float, float]]:
    """A class of the refit from the ridge start (``gram``: ``X^T X``)."""
    opt = newton(X, t, C, max_iter, w, np.ones(len(X), dtype=bool), gram)
    return _Start(opt), opt.steps, opt.w, platt(primal_loo(X, t, opt), t > 0)


def _warm_class(fold_job: Future[_Fold], cold_job: Future[tuple[_Start, int, np.ndarray, Any]], users: _Users,
                Z: np.ndarray, t: np.ndarray, C: float, max_iter: int) -> Solved:
    """A fold's class from the refit's optimum (the same weights over ``Z``), with ``X_A^T X_A``
    the refit's less the held-out rows; the weights moved to the fold's coordinates at the end."""
    fold, start = fold_job.result(), cold_job.result()[0]
    held = np.ones(len(Z), dtype=bool)
    held[fold.train] = False
    gram = start.gram - gram_of(Z[held & start.active])
    users.done(cold_job)
    t = t[fold.train]
    warm = newton(fold.Z, t, C, max_iter, start.w, start.active[fold.train], gram, fold.penalty, own=True)
    v = warm.w[:-1] / fold.a
    return warm.steps, np.append(v, warm.w[-1] + fold.e @ v), platt(primal_loo(fold.Z, t, warm), t > 0)


def _assemble(model: LinearSVMClassifier, classes: list[Solved]) -> LinearSVMClassifier:
    model.n_iter_ = max(steps for steps, _, _ in classes)
    model.calibration_ = np.array([ab for _, _, ab in classes])
    return model._learn_weights(np.column_stack([w for _, w, _ in classes]))
