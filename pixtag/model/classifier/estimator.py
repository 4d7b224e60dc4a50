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

Several labels per image: ``fit(X, Y, classes=names)`` with a 0/1 indicator matrix ``Y``
(rows × classes) trains each class on its own ±1 column (a row is positive for every class it
carries, negative for the others), the same one-vs-rest problem with other targets.

``probability="softmax"`` lets the classes compete: a softmax over the calibrated log-odds of
every class and of "none of them" (log-odds 0), ``p_k = o_k / (1 + sum_j o_j)`` with ``o`` the
odds. A class is likely only if no other class, background included, is about as likely. It is
never above the class's own sigmoid ``o_k / (1 + o_k)`` (``"one_vs_rest"``, which judges each
class alone), and close to it when no other class is likely, so a photo unlike every class
(noise) keeps low probabilities where a softmax over the classes alone would make one of them
near certain. On eighteen classes of
real photos the softmax let the tags' thresholds keep more right suggestions at a higher
precision (bench/vocabulary.py). The winner, ``predict`` and the decision values are the same
either way. ``"auto"`` takes the softmax when every training image has one label and
one-vs-rest when some have several (the classes then are not exclusive); the rule taken is
``probability_``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pixtag.model.classifier.solver import l2svm, platt


def is_indicator(y: Any) -> bool:
    """Whether ``y`` is an indicator matrix (rows × two or more classes), not one label per row
    (a single column is labels, as scikit-learn treats it)."""
    shape = np.shape(np.asarray(y))
    return len(shape) == 2 and shape[1] >= 2


class LinearSVMClassifier(ClassifierMixin, BaseEstimator):
    """Linear SVM with calibrated one-vs-rest probabilities (scikit-learn estimator).

    Parameters
    ----------
    C : inverse regularisation strength (features are centred and scaled to unit mean squared
        norm first, so one C suits every backbone).
    max_iter : most Newton steps per class (it usually stops after 5-8).
    probability : ``"one_vs_rest"`` (each class's own calibrated sigmoid), ``"softmax"`` (the
        calibrated log-odds of all classes and of "none of them" normalised together) or
        ``"auto"`` (softmax unless some training row has several labels) for
        :meth:`predict_tag_proba`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "probability": [StrOptions({"auto", "one_vs_rest", "softmax"})],
    }

    def __init__(self, C: float = 1.0, max_iter: int = 50, probability: str = "one_vs_rest"):
        self.C = C
        self.max_iter = max_iter
        self.probability = probability

    # --- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, classes: Any = None) -> LinearSVMClassifier:
        """Fit on labels ``y`` (one per row), or on a 0/1 indicator matrix ``y`` (rows × classes,
        several labels per row) whose columns ``classes`` names (default ``0..K-1``)."""
        self._validate_params()
        X, targets = self._learn_classes(X, y, classes)
        Z, _ = self._learn_scaling(X)
        W, loo, self.n_iter_ = l2svm(Z, targets, self.C, self.max_iter)
        self.calibration_ = np.array([platt(loo[:, k], targets[:, k] > 0) for k in range(targets.shape[1])])
        return self._learn_weights(W)

    def _learn_classes(self, X: Any, y: Any, classes: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Validate the data and learn ``classes_``; the features as an array, and the ±1
        targets (rows × classes)."""
        if is_indicator(y):
            X = validate_data(self, X, dtype=[np.float64, np.float32])
            Y = np.asarray(y)
            check_classification_targets(Y)
            if Y.shape[0] != X.shape[0]:
                raise ValueError(f"{X.shape[0]} rows of features but {Y.shape[0]} rows of targets")
            self.classes_ = np.arange(Y.shape[1]) if classes is None else np.asarray(classes)
            if len(self.classes_) != Y.shape[1] or len(self.classes_) < 2:
                raise ValueError(f"needs at least 2 classes, one name per column: {len(self.classes_)} names "
                                 f"for {Y.shape[1]} columns")
            self._learn_probability(several=bool(((Y > 0).sum(axis=1) > 1).any()))
            return X, np.where(Y > 0, 1.0, -1.0)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("needs samples of at least 2 classes; the data has 1 class")
        self._learn_probability(several=False)
        return X, np.where(codes[:, None] == np.arange(len(self.classes_)), 1.0, -1.0)

    def _learn_probability(self, several: bool) -> None:
        """``probability_``: the rule asked for, or for ``auto`` softmax unless some row has
        several labels."""
        if self.probability != "auto":
            self.probability_ = self.probability
        else:
            self.probability_ = "one_vs_rest" if several else "softmax"

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
        """Calibrated probability of each class: one-vs-rest (each on its own) or, with
        ``probability="softmax"``, all classes and "none of them" together (a row sums to less
        than 1: the rest is "none"). Rows need not sum to 1 either way."""
        z = self.log_odds(X)
        if self.probability_ == "one_vs_rest":
            return expit(z)
        return softmax(np.column_stack([z, np.zeros(len(z))]), axis=1)[:, :-1]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, normalised to sum to 1."""
        proba = self.predict_tag_proba(X)
        return proba / proba.sum(axis=1, keepdims=True)

    # --- plain-array state (model artifacts hold data, not pickles) ----------------------
    STATE = ("classes_", "mean_", "scale_", "coef_", "intercept_", "calibration_")

    def to_arrays(self) -> dict[str, np.ndarray]:
        check_is_fitted(self)
        state = {k: np.asarray(getattr(self, k)) for k in self.STATE}
        state["classes_"] = state["classes_"].astype(str)
        state["params"] = np.asarray([self.C, self.max_iter])
        state["probability"] = np.asarray(self.probability_)
        return state

    @classmethod
    def from_arrays(cls, state: dict[str, np.ndarray]) -> LinearSVMClassifier:
        C, max_iter = (float(v) for v in state["params"])
        # models saved before the setting existed were one-vs-rest
        probability = str(state["probability"]) if "probability" in state else "one_vs_rest"
        model = cls(C=C, max_iter=int(max_iter), probability=probability)
        model.probability_ = probability
        for key in cls.STATE:
            setattr(model, key, np.asarray(state[key]))
        model.scale_ = float(model.scale_)
        model.n_features_in_ = model.coef_.shape[1]
        return model
