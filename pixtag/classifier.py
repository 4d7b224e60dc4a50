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
  the last Newton step already computed;

exact as long as removing one point leaves the active set unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_solve, lapack, solve_triangular
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


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
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("needs samples of at least 2 classes; the data has 1 class")
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        norm = np.sqrt(np.mean(np.sum((X - self.mean_) ** 2, axis=1)))
        self.scale_ = float(norm) if norm > 0 else 1.0
        Z = np.hstack([self._standardise(X), np.ones((len(X), 1))]).astype(np.float32)
        targets = np.where(codes[:, None] == np.arange(len(self.classes_)), 1.0, -1.0)
        W, loo, self.n_iter_ = l2svm(Z, targets, self.C, self.max_iter)
        self.coef_, self.intercept_ = W[:-1].T.copy(), W[-1].copy()
        self.calibration_ = np.array([platt(loo[:, k], targets[:, k] > 0)
                                      for k in range(len(self.classes_))])
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    # --- prediction ----------------------------------------------------------------------
    def scores(self, X: Any) -> np.ndarray:
        """Raw SVM scores, one column per class (also for two classes)."""
        check_is_fitted(self)
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


def platt(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid ``P = expit(a s + b)`` fitted by log loss on his smoothed targets."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    target = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * scores + ab[1]
        grad = expit(z) - target
        return float(np.sum(np.logaddexp(0, z) - target * z)), np.array([grad @ scores, grad.sum()])

    return tuple(float(v) for v in minimize(loss, [1.0, 0.0], jac=True, method="L-BFGS-B").x)


def _line_search(ws: float, ss: float, t: np.ndarray, f: np.ndarray, fs: np.ndarray,
                 C: float) -> float:
    """Exact minimiser over ``s >= 0`` of the objective along a step (``ws = w·step``,
    ``ss = |step|²``, ``fs`` the step's change of the decision values), by bisection on the
    derivative, which is piecewise linear and increasing."""
    margin, slope = 1 - t * f, t * fs

    def derivative(s: float) -> float:
        m = margin - s * slope
        on = m > 0
        return ws + s * ss - 2 * C * float(m[on] @ slope[on])

    lo, hi = 0.0, 1.0
    while derivative(hi) < 0 and hi < 1e6:
        lo, hi = hi, 2 * hi
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if derivative(mid) > 0 else (mid, hi)
    return (lo + hi) / 2


def _loo(t: np.ndarray, f: np.ndarray, active: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Leave-one-out decision values from the leverages ``h`` of the active points."""
    loo = f.copy()
    h = np.minimum(h, 1 - 1e-9)
    loo[active] = t[active] - (t[active] - f[active]) / (1 - h)
    return loo


def l2svm(X: np.ndarray, targets: np.ndarray, C: float,
          max_iter: int = 50) -> tuple[np.ndarray, np.ndarray, int]:
    """One-vs-rest L2-SVM: weights ``(d, K)``, LOO decision values ``(n, K)``, most steps.

    ``X`` (float32) includes the intercept column; ``targets`` is ±1 per class. Solved in the
    smaller space: the weights' (d × d systems) when n > d, else the samples' (w = X^T β).
    """
    solve = _primal if X.shape[0] > X.shape[1] else _dual
    return solve(X, targets, C, max_iter)


def _gram(X: np.ndarray) -> np.ndarray:
    return (X.T @ X).astype(np.float64)


def _primal_point(gram: np.ndarray, rhs: np.ndarray, C: float,
                  refinements: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Minimiser of the quadratic on a fixed active set A, ``(I + 2C X_A^T X_A) w = 2C X_A^T t_A``
    (``gram`` = X_A^T X_A, ``rhs`` = X_A^T t_A, float64), and the lower Cholesky factor (float32)
    of that Hessian.

    Mixed precision: LAPACK's float32 ``spotrf`` (2.5x faster than NumPy's float64 cholesky),
    then iterative refinement against the float64 system brings the solution to float64
    accuracy (a float32 solve alone leaves the Newton step short and the line search
    compensating).
    """
    H = np.multiply(gram, 2 * C, out=np.empty(gram.shape, np.float32), casting="unsafe")
    H[np.diag_indices_from(H)] += 1.0
    L, info = lapack.spotrf(H, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the Hessian is not positive definite (LAPACK info {info})")
    b = (2 * C) * rhs
    w = lapack.spotrs(L, b.astype(np.float32), lower=1)[0].astype(np.float64)
    for _ in range(refinements):
        residual = b - (2 * C) * (gram @ w) - w
        w += lapack.spotrs(L, residual.astype(np.float32), lower=1)[0]
    return w, L


def _primal(X: np.ndarray, targets: np.ndarray, C: float,
            max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    gram = _gram(X)
    # ridge on every point: the Newton step from w = 0, shared by all classes
    start, _ = _primal_point(gram, (X.T @ targets.astype(X.dtype)).astype(np.float64), C)
    W, loo, most = np.empty_like(start), np.empty(targets.shape), 0
    for k in range(targets.shape[1]):
        t, w = targets[:, k], start[:, k]
        t32 = t.astype(X.dtype)
        f = (X @ w.astype(np.float32)).astype(np.float64)
        active = t * f < 1
        gram_a = _gram(X[active]) if active.sum() < len(t) / 2 else gram - _gram(X[~active])
        rhs = (X.T @ (t32 * active)).astype(np.float64)  # X_A^T t_A, kept up to date below
        steps = 0
        for _ in range(max_iter):
            steps += 1
            w_bar, L = _primal_point(gram_a, rhs, C)
            step = w_bar - w
            fs = (X @ step.astype(np.float32)).astype(np.float64)
            s = _line_search(float(w @ step), float(step @ step), t, f, fs, C)
            w, f = w + s * step, f + s * fs
            now = t * f < 1
            if np.array_equal(now, active):
                break
            added, removed = X[now & ~active], X[active & ~now]
            gram_a += _gram(added) - _gram(removed)
            rhs += (added.T @ t32[now & ~active]).astype(np.float64) - (removed.T @ t32[active & ~now])
            active = now
        else:
            _, L = _primal_point(gram_a, rhs, C)
        most = max(most, steps)
        V = solve_triangular(L, X[active].T, lower=True, check_finite=False)
        W[:, k], loo[:, k] = w, _loo(t, f, active, (2 * C) * np.sum(V**2, axis=0))
    return W, loo, most


def _dual(X: np.ndarray, targets: np.ndarray, C: float,
          max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The same Newton steps with ``w = X^T β``: on an active set A, ``β_A`` solves
    ``(K_AA + I/2C) β_A = t_A`` (K = X X^T), and the leverages are ``1 - diag((K_AA + I/2C)^-1)/2C``.
    """
    K = (X @ X.T).astype(np.float64)
    ridge = 1 / (2 * C)

    def factor(active: np.ndarray) -> np.ndarray:
        M = K[np.ix_(active, active)]
        M[np.diag_indices_from(M)] += ridge
        return np.linalg.cholesky(M)

    everyone = np.ones(len(K), dtype=bool)
    start = cho_solve((factor(everyone), True), targets, check_finite=False)
    B, loo, most = np.zeros(targets.shape), np.empty(targets.shape), 0
    for k in range(targets.shape[1]):
        t, beta = targets[:, k], start[:, k]
        f = K @ beta
        active = t * f < 1
        steps = 0
        for _ in range(max_iter):
            steps += 1
            L = factor(active)
            step = -beta
            step[active] += cho_solve((L, True), t[active], check_finite=False)
            fs = K @ step
            s = _line_search(float(step @ f), float(step @ fs), t, f, fs, C)
            beta, f = beta + s * step, f + s * fs
            now = t * f < 1
            if np.array_equal(now, active):
                break
            active = now
        else:
            L = factor(active)
        most = max(most, steps)
        inverse = solve_triangular(L, np.eye(len(L)), lower=True, check_finite=False)
        B[:, k], loo[:, k] = beta, _loo(t, f, active, 1 - ridge * np.sum(inverse**2, axis=0))
    return X.T.astype(np.float64) @ B, loo, most
