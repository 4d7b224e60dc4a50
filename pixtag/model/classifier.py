"""The study's classifier: a linear SVM on backbone features, with calibrated probabilities.

:class:`LinearSVMClassifier` is a one-vs-rest L2-SVM (squared hinge loss, L2 penalty on the
weights and the intercept): exactly the problem scikit-learn's ``LinearSVC`` solves by
default, solved here by Newton's method on the active set (Keerthi & DeCoste, JMLR 2005), a
few BLAS-backed steps, in the smaller of the weights' space (n > d) or the samples' (n ≤ d).
The first step, from w = 0, is a ridge regression shared by all classes.

Probabilities come from per-class Platt scaling, which needs decision values the SVM did not
train on. Refitting on k folds would cost k more fits; this loss gives leave-one-out values in
closed form instead. At the optimum, the weights of class k are the ridge regression of the
targets ``t = ±1`` on the active set ``A = {i: t_i f(x_i) < 1}`` with penalty ``1/(2C)``
(``(1 - t f)² = (t - f)²`` when ``t = ±1``), so

* a point outside ``A`` does not move the solution: its LOO value is ``f_i``;
* a point in ``A`` has the ridge LOO value ``t_i - (t_i - f_i) / (1 - h_i)``, where ``h_i`` is
  its leverage ``2C x_i^T H^{-1} x_i`` with ``H = I + 2C X_A^T X_A``, from the Cholesky factor
  the Newton steps already computed;

exact as long as removing one point leaves the active set unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pixtag.model.solver import Optimum, Penalty, gram_of, l2svm, newton, platt, primal_loo, ridge_start


class LinearSVMClassifier(ClassifierMixin, BaseEstimator):
    """Linear SVM with calibrated one-vs-rest probabilities (scikit-learn estimator).

    Parameters
    ----------
    C : inverse regularisation strength (features are centred and scaled to unit mean squared
        norm first, so one C suits every backbone).
    max_iter : most Newton steps per class (it usually stops after 5-8).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 50):
        self.C = C
        self.max_iter = max_iter

    # --- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> LinearSVMClassifier:
        X, codes = self._learn_classes(X, y)
        Z, _ = self._learn_scaling(X)
        targets = np.where(codes[:, None] == np.arange(len(self.classes_)), 1.0, -1.0)
        W, loo, self.n_iter_ = l2svm(Z, targets, self.C, self.max_iter)
        self.calibration_ = np.array([platt(loo[:, k], targets[:, k] > 0) for k in range(targets.shape[1])])
        return self._learn_weights(W)

    def _learn_classes(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate the data and learn ``classes_``; the features as an array, and class codes."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("needs samples of at least 2 classes; the data has 1 class")
        return X, codes

    def _learn_scaling(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Learn ``mean_`` and ``scale_``; the standardised features with an intercept column
        (float32), and the squared norms of the centred rows."""
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        centred = X - self.mean_
        squares = np.einsum("ij,ij->i", centred, centred)
        norm = np.sqrt(np.mean(squares))
        self.scale_ = float(norm) if norm > 0 else 1.0
        Z = np.ones((len(X), X.shape[1] + 1), dtype=np.float32)
        np.divide(centred, self.scale_, out=Z[:, :-1], casting="same_kind")
        return Z, squares

    def _learn_weights(self, W: np.ndarray) -> LinearSVMClassifier:
        self.coef_, self.intercept_ = W[:-1].T.copy(), W[-1].copy()
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    # --- prediction ----------------------------------------------------------------------
    def scores(self, X: Any) -> np.ndarray:
        """Raw SVM scores, one column per class (also for two classes)."""
        check_is_fitted(self)
        if not (isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64) and X.ndim == 2
                and X.shape[1] == self.mean_.shape[0] and np.isfinite(X).all()):
            # anything but a finite float matrix of the right width (what the backbone gives,
            # and what the served path passes, skipping ~1 ms of scikit-learn's checks per call)
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._standardise(X) @ self.coef_.T + self.intercept_

    def log_odds(self, X: Any) -> np.ndarray:
        """Calibrated log-odds that each class applies (Platt: ``a * score + b``)."""
        return self.scores(X) * self.calibration_[:, 0] + self.calibration_[:, 1]

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated log-odds, as scikit-learn wants them (1-D for two classes), so that
        ``predict``, ``predict_proba`` and ``decision_function`` agree on the winner."""
        z = self.log_odds(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict(self, X: Any) -> np.ndarray:
        z = self.log_odds(X)
        return self.classes_[np.argmax(z, axis=1)]

    def predict_tag_proba(self, X: Any) -> np.ndarray:
        """Calibrated one-vs-rest probability that each class applies (rows need not sum to 1)."""
        return expit(self.log_odds(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities (one-vs-rest, normalised to sum to 1)."""
        proba = self.predict_tag_proba(X)
        return proba / proba.sum(axis=1, keepdims=True)

    # --- plain-array state (model artifacts hold data, not pickles) ----------------------
    STATE = ("classes_", "mean_", "scale_", "coef_", "intercept_", "calibration_")

    def to_arrays(self) -> dict[str, np.ndarray]:
        check_is_fitted(self)
        state = {k: np.asarray(getattr(self, k)) for k in self.STATE}
        state["classes_"] = state["classes_"].astype(str)
        state["params"] = np.asarray([self.C, self.max_iter])
        return state

    @classmethod
    def from_arrays(cls, state: dict[str, np.ndarray]) -> LinearSVMClassifier:
        C, max_iter = (float(v) for v in state["params"])
        model = cls(C=C, max_iter=int(max_iter))
        for key in cls.STATE:
            setattr(model, key, np.asarray(state[key]))
        model.scale_ = float(model.scale_)
        model.n_features_in_ = model.coef_.shape[1]
        return model


def fit_splits(estimator: LinearSVMClassifier, X: Any, y: Any, trains: Sequence[np.ndarray],
               workers: int) -> tuple[LinearSVMClassifier, list[LinearSVMClassifier]]:
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
    """
    refit = clone(estimator)
    X, codes = refit._learn_classes(X, y)
    trains = [np.asarray(train) for train in trains]
    n_classes = len(refit.classes_)
    with ThreadPoolExecutor(workers) as pool:
        if any(len(rows) <= X.shape[1] + 1 or len(np.unique(codes[rows])) < n_classes
               for rows in [np.arange(len(X)), *trains]):
            labels = refit.classes_[codes]
            jobs = [pool.submit(clone(estimator).fit, rows, labels_)
                    for rows, labels_ in [(X, labels), *((X[t], labels[t]) for t in trains)]]
            fitted = [job.result() for job in jobs]
            return fitted[0], fitted[1:]
        Z, squares = refit._learn_scaling(X)
        targets = np.where(codes[:, None] == np.arange(n_classes), 1.0, -1.0)
        C, max_iter = refit.C, refit.max_iter
        half = len(Z) // 2
        grams = [pool.submit(gram_of, rows) for rows in (Z[:half], Z[half:])]
        folds = [pool.submit(_fold, clone(estimator), refit, X, Z, squares, t) for t in trains]
        gram = grams[0].result() + grams[1].result()
        start = ridge_start(Z, targets, C, gram)
        cold = [pool.submit(_cold_class, Z, targets[:, k], C, max_iter, start[:, k], gram)
                for k in range(n_classes)]
        # FIFO: a warm job only waits on jobs submitted (so started) before it
        warm = [[pool.submit(_warm_class, fold, cold[k], Z, targets[:, k], C, max_iter)
                 for k in range(n_classes)] for fold in folds]
        refit = _assemble(refit, [job.result() for job in cold])
        return refit, [_assemble(fold.result().model, [job.result() for job in jobs])
                       for fold, jobs in zip(folds, warm, strict=True)]


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


def _cold_class(X: np.ndarray, t: np.ndarray, C: float, max_iter: int, w: np.ndarray,
                gram: np.ndarray) -> tuple[Optimum, np.ndarray, tuple[float, float]]:
    opt = newton(X, t, C, max_iter, w, np.ones(len(X), dtype=bool), gram)
    return opt, opt.w, platt(primal_loo(X, t, opt), t > 0)


def _warm_class(fold_job: Future[_Fold], cold_job: Future[tuple[Optimum, Any, Any]], Z: np.ndarray,
                t: np.ndarray, C: float, max_iter: int) -> tuple[Optimum, np.ndarray, tuple[float, float]]:
    """A fold's class from the refit's optimum (the same weights over ``Z``), with ``X_A^T X_A``
    the refit's less the held-out rows; the weights moved to the fold's coordinates at the end."""
    fold, (opt, _, _) = fold_job.result(), cold_job.result()
    held = np.ones(len(Z), dtype=bool)
    held[fold.train] = False
    t = t[fold.train]
    warm = newton(fold.Z, t, C, max_iter, opt.w, opt.active[fold.train],
                   opt.gram - gram_of(Z[held & opt.active]), fold.penalty, own=True)
    v = warm.w[:-1] / fold.a
    return warm, np.append(v, warm.w[-1] + fold.e @ v), platt(primal_loo(fold.Z, t, warm), t > 0)


def _assemble(model: LinearSVMClassifier,
              classes: list[tuple[Optimum, np.ndarray, tuple[float, float]]]) -> LinearSVMClassifier:
    model.n_iter_ = max(opt.steps for opt, _, _ in classes)
    model.calibration_ = np.array([ab for _, _, ab in classes])
    return model._learn_weights(np.column_stack([w for _, w, _ in classes]))
