"""The linear SVM: scikit-learn estimator contract, closed-form LOO calibration, array state."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import check_estimator

from pixtag.model.classifier.estimator import LinearSVMClassifier
from pixtag.model.classifier.folds import fit_splits
from pixtag.model.classifier.solver import Penalty, _Hessian, l2svm, platt


def blobs(n: int = 300, d: int = 20, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(k, d))[y] * 1.5 + rng.normal(size=(n, d))
    return X, np.array(["cat", "dog", "bird", "car", "flower"])[y]


def test_sklearn_estimator_contract() -> None:
    results = check_estimator(LinearSVMClassifier(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert len(results) > 40 and not failed


def test_fit_returns_self_and_learns_state() -> None:
    X, y = blobs()
    clf = LinearSVMClassifier(C=0.5)
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == sorted(set(y))
    assert clf.coef_.shape == (4, 20) and clf.calibration_.shape == (4, 2)
    assert clone(clf).get_params() == {"C": 0.5, "max_iter": 50, "probability": "one_vs_rest"}
    assert not hasattr(clone(clf), "coef_")


def test_cross_val_score_and_probabilities() -> None:
    X, y = blobs()
    scores = cross_val_score(LinearSVMClassifier(), X, y, cv=5)
    assert scores.mean() > 0.9
    clf = LinearSVMClassifier().fit(X[:250], y[:250])
    proba = clf.predict_proba(X[250:])
    assert np.allclose(proba.sum(axis=1), 1)
    tags = clf.predict_tag_proba(X[250:])
    assert ((tags > 0) & (tags < 1)).all()
    assert np.mean(clf.classes_[proba.argmax(1)] == clf.predict(X[250:])) > 0.95


def test_probabilities_are_calibrated_on_held_out_data() -> None:
    """Confident predictions are right about as often as they claim (reliability, binned)."""
    X, y = blobs(n=2000, d=30, seed=1)
    X = X + np.random.default_rng(2).normal(size=X.shape) * 1.5  # make it hard
    clf = LinearSVMClassifier().fit(X[:1500], y[:1500])
    p = clf.predict_tag_proba(X[1500:])
    hit = clf.classes_[None, :] == y[1500:, None]
    for lo, hi in [(0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 1.0)]:
        sel = (p >= lo) & (p < hi)
        if sel.sum() >= 30:
            assert abs(hit[sel].mean() - p[sel].mean()) < 0.1, (lo, hi)


def objective(W: np.ndarray, X: np.ndarray, T: np.ndarray, C: float) -> float:
    return 0.5 * float(np.sum(W * W)) + C * float(np.sum(np.maximum(0, 1 - T * (X @ W)) ** 2))


@pytest.mark.parametrize(("n", "d"), [(300, 20), (40, 60)])  # n > d, and d > n (row space)
def test_solves_the_problem_linearsvc_solves(n: int, d: int) -> None:
    X, y = blobs(n=n, d=d, k=3, seed=5)
    codes = np.unique(y, return_inverse=True)[1]
    T = np.where(codes[:, None] == np.arange(3), 1.0, -1.0)
    Xa = np.hstack([X, np.ones((n, 1))])
    W, _, steps = l2svm(Xa.astype(np.float32), T, 0.5)
    ref = LinearSVC(C=0.5, dual=True, tol=1e-8, max_iter=100_000).fit(X, codes)
    W_ref = np.vstack([ref.coef_.T, ref.intercept_])
    assert steps < 20
    assert objective(W, Xa, T, 0.5) <= objective(W_ref, Xa, T, 0.5) * (1 + 1e-5)
    assert np.allclose(W, W_ref, atol=1e-3)


@pytest.mark.parametrize(("n", "d"), [(60, 8), (30, 45)])  # weights' space, samples' space
def test_loo_decisions_match_refitting_without_each_point(n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.7 * rng.normal(size=n) > 0).astype(int)
    T = np.where(y == 1, 1.0, -1.0)[:, None]
    Xa = np.hstack([X, np.ones((n, 1))]).astype(np.float32)
    W, loo, _ = l2svm(Xa, T, 0.5)
    f = (Xa @ W)[:, 0]
    actual = np.array([
        (Xa[i] @ l2svm(np.delete(Xa, i, 0), np.delete(T, i, 0), 0.5)[0])[0] for i in range(n)])
    outside = T[:, 0] * f >= 1
    assert outside.any() and (~outside).any()
    assert np.allclose(loo[outside, 0], actual[outside], atol=1e-4)  # off the margin: exact
    assert np.corrcoef(loo[:, 0], actual)[0, 1] > 0.99
    assert np.median(np.abs(loo[:, 0] - actual)) < 0.01


def test_platt_fits_a_known_sigmoid() -> None:
    rng = np.random.default_rng(4)
    s = rng.normal(size=20000) * 2
    positive = rng.random(20000) < 1 / (1 + np.exp(-(1.5 * s - 0.5)))
    a, b = platt(s, positive)
    assert abs(a - 1.5) < 0.1 and abs(b + 0.5) < 0.1


def test_softmax_probabilities_let_the_classes_compete() -> None:
    """``probability="softmax"``: the same fit and winner; each class's probability is its
    odds over one plus every class's odds, so never above its own sigmoid, well below it where
    another class is as likely, and low for a row unlike every class (where a softmax over the
    classes alone would still make one of them near certain). It survives a save and load,
    and a state saved before the parameter existed loads as one-vs-rest."""
    X, y = blobs(n=400, seed=3)
    X = X + np.random.default_rng(4).normal(size=X.shape) * 2  # some rows between two classes
    ovr = LinearSVMClassifier().fit(X, y)
    soft = clone(ovr).set_params(probability="softmax").fit(X, y)
    assert np.array_equal(soft.coef_, ovr.coef_) and np.array_equal(soft.predict(X), ovr.predict(X))
    p, q = soft.predict_tag_proba(X), ovr.predict_tag_proba(X)
    odds = q / (1 - q)
    assert np.allclose(p, odds / (1 + odds.sum(axis=1, keepdims=True)))
    assert (p <= q + 1e-12).all() and (p.sum(axis=1) < 1).all() and np.array_equal(p.argmax(1), q.argmax(1))
    top, rival = np.sort(odds, axis=1)[:, -1], np.sort(odds, axis=1)[:, -2]
    rivalled = rival >= top / 2  # another class at least half as likely: p < o / (1 + 1.5 o) < 2/3
    assert (p.max(1)[rivalled] < 2 / 3).all() and (q.max(1)[rivalled] > 2 / 3).any()
    z = ovr.log_odds(X)
    plain = np.exp(z - z.max(1, keepdims=True))
    plain /= plain.sum(axis=1, keepdims=True)  # a softmax over the classes alone
    unsure = q.max(1) < 0.3  # no class likely on its own
    assert unsure.any() and (p.max(1)[unsure] < 0.3).all() and (plain.max(1)[unsure] > 0.5).any()
    state = soft.to_arrays()
    assert np.allclose(LinearSVMClassifier.from_arrays(state).predict_tag_proba(X), p)
    del state["probability"]
    assert np.allclose(LinearSVMClassifier.from_arrays(state).predict_tag_proba(X), q)
    with pytest.raises(ValueError, match="probability"):
        LinearSVMClassifier(probability="sigmoid").fit(X, y)
    # auto: softmax while every row has one label, one-vs-rest once a row has two
    names = sorted(set(y))
    Y = (y[:, None] == np.array(names)[None, :]).astype(int)
    auto = LinearSVMClassifier(probability="auto")
    assert auto.fit(X, y).probability_ == "softmax" and auto.fit(X, Y, classes=names).probability_ == "softmax"
    Y[:5, 0] = 1
    assert auto.fit(X, Y, classes=names).probability_ == "one_vs_rest"
    assert auto.probability == "auto"  # the parameter is left as given


def test_two_classes_and_array_round_trip() -> None:
    X, y = blobs(k=2)
    clf = LinearSVMClassifier().fit(X, y)
    assert clf.scores(X).shape == (300, 2) and clf.decision_function(X).shape == (300,)
    again = LinearSVMClassifier.from_arrays(clf.to_arrays())
    assert np.array_equal(again.predict(X), clf.predict(X))
    assert np.allclose(again.predict_tag_proba(X), clf.predict_tag_proba(X))
    with pytest.raises(ValueError, match="1 class"):
        LinearSVMClassifier().fit(X, np.full(300, "cat"))


def test_fit_splits_gives_the_models_of_independent_fits() -> None:
    """Folds warm-started from the refit (in their own standardisation) reach the optimum a
    cold fit reaches: same weights, calibration and predictions."""
    X, y = blobs(n=400, d=30, k=4, seed=3)
    X = X * np.linspace(0.5, 2, 30) + 3.0  # off-centre and uneven, so each fold's scaling differs
    trains = [train for train, _ in StratifiedKFold(4, shuffle=True, random_state=0).split(X, y)]
    params = {"C": 0.5, "max_iter": 50, "probability": "softmax"}
    refit, folds = fit_splits(LinearSVMClassifier(**params), X, y, trains, 2)
    assert len(folds) == 4 and all(f.get_params() == params for f in folds)
    for model, rows in zip([refit, *folds], [np.arange(len(X)), *trains], strict=True):
        cold = LinearSVMClassifier(**params).fit(X[rows], y[rows])
        assert np.allclose(model.mean_, cold.mean_, rtol=1e-12) and model.scale_ == pytest.approx(cold.scale_)
        assert np.allclose(model.coef_, cold.coef_, atol=1e-4)
        assert np.allclose(model.intercept_, cold.intercept_, atol=1e-4)
        assert np.allclose(model.calibration_, cold.calibration_, atol=1e-4)
        assert np.array_equal(model.predict(X), cold.predict(X))
        assert np.allclose(model.predict_proba(X), cold.predict_proba(X), atol=1e-4)
        assert (model.predict_tag_proba(X).sum(axis=1) < 1).all()


def test_fit_splits_falls_back_to_plain_fits() -> None:
    X, y = blobs(n=40, d=60, k=2)  # n <= d: solved in the samples' space
    refit, (fold,) = fit_splits(LinearSVMClassifier(), X, y, [np.arange(30)], 1)
    assert np.array_equal(refit.coef_, LinearSVMClassifier().fit(X, y).coef_)
    assert np.array_equal(fold.coef_, LinearSVMClassifier().fit(X[:30], y[:30]).coef_)
    X, y = blobs(n=120, d=5, k=3)
    train = np.flatnonzero(y != "cat")  # a fold without one of the classes
    refit, (fold,) = fit_splits(LinearSVMClassifier(), X, y, [train], 1)
    assert list(refit.classes_) == ["bird", "cat", "dog"] and list(fold.classes_) == ["bird", "dog"]
    assert np.array_equal(fold.coef_, LinearSVMClassifier().fit(X[train], y[train]).coef_)


def test_hessian_follows_the_active_set_by_woodbury() -> None:
    """Solutions and leverages on an active set that differs from the factored one by a few
    rows (Woodbury) match those of a fresh factorisation."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    base, active = rng.random(200) < 0.5, rng.random(200) < 0.5
    active[:150] = base[:150]  # about 25 rows differ
    penalty = Penalty(np.linspace(0.5, 1.5, 10), rng.normal(size=10))
    gram = X[active].T.astype(np.float64) @ X[active]
    moved, fresh = _Hessian(X, 0.5, penalty), _Hessian(X, 0.5, penalty)
    moved.factor(X[base].T.astype(np.float64) @ X[base], base)
    moved.move(gram, active)
    fresh.factor(gram, active)
    assert moved.P is not None and fresh.P is None
    rhs = X[active].T.astype(np.float64) @ np.where(rng.random(active.sum()) < 0.5, 1.0, -1.0)
    exact = np.linalg.solve(np.diag(penalty.r) + np.outer(penalty.c, penalty.c) + gram, rhs)
    assert np.allclose(moved.minimiser(gram, rhs), exact, rtol=1e-9, atol=1e-9)
    assert np.allclose(moved.leverages(X[active]), fresh.leverages(X[active]), rtol=1e-4, atol=1e-6)
