"""The solver behind :class:`~pixtag.model.classifier.estimator.LinearSVMClassifier`: an L2-SVM by Newton's
method on the active set, with closed-form leave-one-out decision values, and Platt scaling.

See :mod:`pixtag.model.classifier.estimator` for the problem and why leave-one-out values are exact.
Pure numpy/scipy: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, lapack, lu_factor, lu_solve, solve_triangular
from scipy.special import expit


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


def gram_of(X: np.ndarray) -> np.ndarray:
    return (X.T @ X).astype(np.float64)


def _times(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (X @ w.astype(X.dtype)).astype(np.float64)


def _regram(X: np.ndarray, gram: np.ndarray, rows: np.ndarray, new: np.ndarray,
            own: bool = False) -> np.ndarray:
    """``X_new^T X_new`` from ``gram = X_rows^T X_rows``: by the rows that differ, or afresh
    where fewer rows than that; in place where ``own``."""
    added, removed = new & ~rows, rows & ~new
    if added.sum() + removed.sum() > new.sum():
        return gram_of(X[new])
    out = gram if own else gram.copy()
    if added.any():
        U = X[added]
        out += U.T @ U
    if removed.any():
        U = X[removed]
        out -= U.T @ U
    return out


@dataclass(frozen=True)
class Penalty:
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

    def __init__(self, X: np.ndarray, C: float, penalty: Penalty):
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
class Optimum:
    """One class's solution: weights, decision values, active set A, ``X_A^T X_A`` and the
    Hessian on A."""

    w: np.ndarray
    f: np.ndarray
    active: np.ndarray
    gram: np.ndarray
    hessian: _Hessian
    steps: int


def newton(X: np.ndarray, t: np.ndarray, C: float, max_iter: int, w: np.ndarray,
            rows: np.ndarray, gram: np.ndarray, penalty: Penalty = Penalty(), own: bool = False) -> Optimum:
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
    return Optimum(w, f, active, gram, hessian, steps)


def primal_loo(X: np.ndarray, t: np.ndarray, opt: Optimum) -> np.ndarray:
    """LOO decision values, from the leverages of the active points."""
    return _loo(t, opt.f, opt.active, opt.hessian.leverages(X[opt.active]))


def ridge_start(X: np.ndarray, targets: np.ndarray, C: float, gram: np.ndarray) -> np.ndarray:
    """The ridge regression on every point (``gram = X^T X``): the Newton step from w = 0 of
    every class."""
    hessian = _Hessian(X, C, Penalty())
    hessian.factor(gram, np.ones(len(X), dtype=bool))
    return hessian.minimiser(gram, (X.T @ targets.astype(X.dtype)).astype(np.float64))


def _primal(X: np.ndarray, targets: np.ndarray, C: float,
            max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    gram = gram_of(X)
    start = ridge_start(X, targets, C, gram)
    everyone = np.ones(len(X), dtype=bool)
    W, loo, most = np.empty_like(start), np.empty(targets.shape), 0
    for k in range(targets.shape[1]):
        opt = newton(X, targets[:, k], C, max_iter, start[:, k], everyone, gram)
        W[:, k], loo[:, k], most = opt.w, primal_loo(X, targets[:, k], opt), max(most, opt.steps)
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
