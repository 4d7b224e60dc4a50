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
from scipy.linalg import cho_solve, lapack, lu_factor, lu_solve, solve_triangular
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
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
    """Platt's sigmoid ``P = expit(a s + b)`` fitted by log loss on his smoothed targets.

    Newton's method with backtracking (as Lin, Lin & Weng 2007): the loss is convex in (a, b),
    so a few steps reach the minimiser.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    target = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab: np.ndarray) -> float:
        z = ab[0] * scores + ab[1]
        return float(np.sum(np.logaddexp(0, z) - target * z))

    ab = np.array([1.0, 0.0])
    value = loss(ab)
    for _ in range(100):
        p = expit(ab[0] * scores + ab[1])
        g, c = p - target, p * (1 - p)
        grad = np.array([g @ scores, g.sum()])
        cs = c * scores
        hessian = np.array([[cs @ scores, cs.sum()], [cs.sum(), c.sum()]]) + 1e-12 * np.eye(2)
        step = -np.linalg.solve(hessian, grad)
        size = 1.0
        while size > 1e-10 and (new := loss(ab + size * step)) > value + 1e-4 * size * (grad @ step):
            size /= 2
        if size <= 1e-10:
            break
        ab, value = ab + size * step, new
        if np.max(np.abs(size * step)) <= 1e-10 * (1 + np.max(np.abs(ab))):
            break
    return float(ab[0]), float(ab[1])


def _line_search(ws: float, ss: float, t: np.ndarray, f: np.ndarray, fs: np.ndarray,
                 C: float) -> float:
    """Exact minimiser over ``s >= 0`` of the objective along a step (``ws = w^T R step``,
    ``ss = step^T R step`` for the penalty ``½ w^T R w``, ``fs`` the step's change of the
    decision values).

    The derivative is continuous, increasing and linear between the points where a margin
    crosses 1, so Newton's method from the full step ``s = 1`` lands on the root as soon as it
    stays within one linear piece (usually after one or two evaluations); a bracket with
    bisection catches overshoots.
    """
    margin, slope = 1 - t * f, t * fs
    lo, hi, s = 0.0, np.inf, 1.0
    for _ in range(100):
        m = margin - s * slope
        on = m > 0
        sl = slope[on]
        derivative = ws + s * ss - 2 * C * float(m[on] @ sl)
        if derivative == 0:
            return s
        lo, hi = (s, hi) if derivative < 0 else (lo, s)
        newton = s - derivative / (ss + 2 * C * float(sl @ sl))
        if lo < newton < hi:
            if np.array_equal(margin - newton * slope > 0, on):
                return newton  # same linear piece: the derivative is exactly 0 there
            s = newton
        else:
            s = (lo + hi) / 2 if np.isfinite(hi) else 2 * s
        if np.isfinite(hi) and hi - lo <= 1e-12 * hi:
            break
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


def _times(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (X @ w.astype(X.dtype)).astype(np.float64)


def _regram(X: np.ndarray, gram: np.ndarray, rows: np.ndarray, new: np.ndarray,
            own: bool = False) -> np.ndarray:
    """``X_new^T X_new`` from ``gram = X_rows^T X_rows``: by the rows that differ, or afresh
    where fewer rows than that; in place where ``own``."""
    added, removed = new & ~rows, rows & ~new
    if added.sum() + removed.sum() > new.sum():
        return _gram(X[new])
    out = gram if own else gram.copy()
    if added.any():
        U = X[added]
        out += U.T @ U
    if removed.any():
        U = X[removed]
        out -= U.T @ U
    return out


@dataclass(frozen=True)
class _Penalty:
    """The weights' penalty ``½ w^T R w`` with ``R = diag(r) + c c^T``: the identity for a fit in
    its own coordinates (see :func:`fit_splits` for the other)."""

    r: np.ndarray | float = 1.0
    c: np.ndarray | None = None

    def times(self, w: np.ndarray) -> np.ndarray:
        out = self.r * w if np.ndim(self.r) == 0 else (self.r * w.T).T
        return out if self.c is None else out + np.multiply.outer(self.c, self.c @ w)


class _Hessian:
    """``H = R + 2C X_A^T X_A`` on an active set A, for solving and for leverages.

    Held as the float32 Cholesky factor (LAPACK ``spotrf``, 2.5x faster than float64) of H on a
    base set B, plus Woodbury's identity for the rows where A and B differ (``P = L^-1 U^T``
    for those rows U, ``cap = S^-1 + P^T P`` with ``S = ±2C``), so the last Newton steps,
    which move only a few points, cost no new factorisation. Solutions get iterative refinement
    against the float64 system, which brings them to float64 accuracy (a float32 solve alone
    leaves the Newton step short and the line search compensating).
    """

    MAX_RANK = 100  # rows that may differ from the base set before refactoring

    def __init__(self, X: np.ndarray, C: float, penalty: _Penalty):
        self.X, self.C, self.penalty = X, C, penalty

    def factor(self, gram: np.ndarray, active: np.ndarray) -> None:
        H = np.multiply(gram, 2 * self.C, out=np.empty(gram.shape, np.float32), casting="unsafe")
        H[np.diag_indices_from(H)] += self.penalty.r
        if self.penalty.c is not None:
            c = self.penalty.c.astype(np.float32)
            H += np.multiply.outer(c, c)
        L, info = lapack.spotrf(H.T, lower=1, clean=1, overwrite_a=1)  # H.T: Fortran order, no copy
        if info != 0:
            raise np.linalg.LinAlgError(f"the Hessian is not positive definite (LAPACK info {info})")
        self.L, self.base, self.P, self.cap = L, active, None, None

    def move(self, gram: np.ndarray, active: np.ndarray) -> None:
        """Follow the active set to ``active`` (``gram`` its ``X_A^T X_A``)."""
        rows = np.flatnonzero(active != self.base)
        if len(rows) > self.MAX_RANK:
            self.factor(gram, active)
        elif len(rows) == 0:
            self.P = self.cap = None
        else:
            self.P = solve_triangular(self.L, self.X[rows].T, lower=True, check_finite=False)
            P = self.P.astype(np.float64)
            cap = P.T @ P
            cap[np.diag_indices_from(cap)] += np.where(active[rows], 1.0, -1.0) / (2 * self.C)
            self.cap = lu_factor(cap, check_finite=False)

    def _inverse(self, b: np.ndarray) -> np.ndarray:
        """``H^-1 b`` to float32 accuracy."""
        y = lapack.strtrs(self.L, b.astype(np.float32), lower=1)[0]
        if self.P is not None:
            y = y - self.P @ lu_solve(self.cap, self.P.T @ y, check_finite=False)
        return lapack.strtrs(self.L, y.astype(np.float32), lower=1, trans=1)[0].astype(np.float64)

    def minimiser(self, gram: np.ndarray, rhs: np.ndarray, refinements: int = 1) -> np.ndarray:
        """The minimiser of the quadratic on A: ``H w = 2C X_A^T t_A`` (``rhs`` = X_A^T t_A,
        ``gram`` = X_A^T X_A, both float64)."""
        b = (2 * self.C) * rhs
        w = self._inverse(b)
        for _ in range(refinements):
            w += self._inverse(b - (2 * self.C) * (gram @ w) - self.penalty.times(w))
        return w

    def leverages(self, XA: np.ndarray) -> np.ndarray:
        """``2C x^T H^-1 x`` for the rows x of ``XA``: ``|L^-1 x|²`` less Woodbury's term."""
        V = solve_triangular(self.L, XA.T, lower=True, check_finite=False)
        h = np.einsum("ij,ij->j", V, V)
        if self.P is not None:
            Q = self.P.T @ V
            h -= np.einsum("ij,ij->j", Q, lu_solve(self.cap, Q, check_finite=False))
        return (2 * self.C) * h


@dataclass
class _Optimum:
    """One class's solution: weights, decision values, active set A, ``X_A^T X_A`` and the
    Hessian on A."""

    w: np.ndarray
    f: np.ndarray
    active: np.ndarray
    gram: np.ndarray
    hessian: _Hessian
    steps: int


def _newton(X: np.ndarray, t: np.ndarray, C: float, max_iter: int, w: np.ndarray,
            rows: np.ndarray, gram: np.ndarray, penalty: _Penalty = _Penalty(), own: bool = False) -> _Optimum:
    """Newton's method on the active set from ``w``, given ``gram = X_B^T X_B`` for some rows B
    (updated in place where ``own``).

    It stops when a step leaves the active set as it was. That proves the optimum whatever
    the start: margins are linear along the step, so no point crossed its margin on the way,
    the objective along the step was the quadratic of that set, whose minimiser along the
    step is the full step (s = 1, which the exact line search then returns); the new w is
    therefore the minimiser of the quadratic on its own active set, where the objective's
    gradient is the quadratic's, 0. The objective is strictly convex: this is the one
    optimum, so a warm start changes the number of steps, not the answer.
    """
    t32 = t.astype(X.dtype)
    f = _times(X, w)
    active = t * f < 1
    gram = _regram(X, gram, rows, active, own)
    rhs = (X.T @ (t32 * active)).astype(np.float64)  # X_A^T t_A, kept up to date below
    hessian = _Hessian(X, C, penalty)
    hessian.factor(gram, active)
    steps = 0
    for _ in range(max_iter):
        steps += 1
        step = hessian.minimiser(gram, rhs) - w
        fs = _times(X, step)
        Rstep = penalty.times(step)
        s = _line_search(float(w @ Rstep), float(step @ Rstep), t, f, fs, C)
        w, f = w + s * step, f + s * fs
        now = t * f < 1
        if np.array_equal(now, active):
            break
        added, removed = now & ~active, active & ~now
        gram = _regram(X, gram, active, now, own=True)
        rhs += (X[added].T @ t32[added]).astype(np.float64) - (X[removed].T @ t32[removed])
        active = now
        hessian.move(gram, active)
    return _Optimum(w, f, active, gram, hessian, steps)


def _primal_loo(X: np.ndarray, t: np.ndarray, opt: _Optimum) -> np.ndarray:
    """LOO decision values, from the leverages of the active points."""
    return _loo(t, opt.f, opt.active, opt.hessian.leverages(X[opt.active]))


def _ridge_start(X: np.ndarray, targets: np.ndarray, C: float, gram: np.ndarray) -> np.ndarray:
    """The ridge regression on every point (``gram = X^T X``): the Newton step from w = 0 of
    every class."""
    hessian = _Hessian(X, C, _Penalty())
    hessian.factor(gram, np.ones(len(X), dtype=bool))
    return hessian.minimiser(gram, (X.T @ targets.astype(X.dtype)).astype(np.float64))


def _primal(X: np.ndarray, targets: np.ndarray, C: float,
            max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    gram = _gram(X)
    start = _ridge_start(X, targets, C, gram)
    everyone = np.ones(len(X), dtype=bool)
    W, loo, most = np.empty_like(start), np.empty(targets.shape), 0
    for k in range(targets.shape[1]):
        opt = _newton(X, targets[:, k], C, max_iter, start[:, k], everyone, gram)
        W[:, k], loo[:, k], most = opt.w, _primal_loo(X, targets[:, k], opt), max(most, opt.steps)
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


# --- the refit and the CV folds together -------------------------------------------------
def fit_splits(estimator: LinearSVMClassifier, X: Any, y: Any, trains: Sequence[np.ndarray],
               workers: int) -> tuple[LinearSVMClassifier, list[LinearSVMClassifier]]:
    """A fit on all rows and one on each of ``trains`` (row indices), in ``workers`` threads:
    the models ``clone(estimator).fit`` gives, for much less work.

    The refit solves each class from the ridge start. Each fold then starts Newton's method
    from the refit's optimum of the class (the same decision values, over the refit's
    standardised rows, with the penalty that makes the weights the fold's own: see
    :func:`_fold`), with ``X_A^T X_A`` of that active set taken from the refit's less its
    held-out rows: no ``X^T X`` and no ridge step of its own, and about one Newton step fewer.
    The optimum is unique and the stopping rule proves it (see :func:`_newton`), so a fold's
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
        grams = [pool.submit(_gram, rows) for rows in (Z[:half], Z[half:])]
        folds = [pool.submit(_fold, clone(estimator), refit, X, Z, squares, t) for t in trains]
        gram = grams[0].result() + grams[1].result()
        start = _ridge_start(Z, targets, C, gram)
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
    penalty: _Penalty


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
    return _Fold(model, train, Z[train], a, e, _Penalty(r, np.append(e / a, 1.0)))


def _cold_class(X: np.ndarray, t: np.ndarray, C: float, max_iter: int, w: np.ndarray,
                gram: np.ndarray) -> tuple[_Optimum, np.ndarray, tuple[float, float]]:
    opt = _newton(X, t, C, max_iter, w, np.ones(len(X), dtype=bool), gram)
    return opt, opt.w, platt(_primal_loo(X, t, opt), t > 0)


def _warm_class(fold_job: Future[_Fold], cold_job: Future[tuple[_Optimum, Any, Any]], Z: np.ndarray,
                t: np.ndarray, C: float, max_iter: int) -> tuple[_Optimum, np.ndarray, tuple[float, float]]:
    """A fold's class from the refit's optimum (the same weights over ``Z``), with ``X_A^T X_A``
    the refit's less the held-out rows; the weights moved to the fold's coordinates at the end."""
    fold, (opt, _, _) = fold_job.result(), cold_job.result()
    held = np.ones(len(Z), dtype=bool)
    held[fold.train] = False
    t = t[fold.train]
    warm = _newton(fold.Z, t, C, max_iter, opt.w, opt.active[fold.train],
                   opt.gram - _gram(Z[held & opt.active]), fold.penalty, own=True)
    v = warm.w[:-1] / fold.a
    return warm, np.append(v, warm.w[-1] + fold.e @ v), platt(_primal_loo(fold.Z, t, warm), t > 0)


def _assemble(model: LinearSVMClassifier,
              classes: list[tuple[_Optimum, np.ndarray, tuple[float, float]]]) -> LinearSVMClassifier:
    model.n_iter_ = max(opt.steps for opt, _, _ in classes)
    model.calibration_ = np.array([ab for _, _, ab in classes])
    return model._learn_weights(np.column_stack([w for _, w, _ in classes]))
