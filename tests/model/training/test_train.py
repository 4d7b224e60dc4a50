"""Training: the study's protocol, reproducible, logged to MLflow; backbone comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.model.backbones.weights import LITE0
from pixtag.model.classifier.crossval import TrainError
from pixtag.model.training.protocol import check_trainable, dataset_hash, split
from pixtag.model.training.runs import classifier_params, new_classifier, training_key
from pixtag.model.training.statistics import mann_whitney
from pixtag.model.training.train import compare, train
from tests.helpers import random_weights, shared_dataset

PER_CLASS = 40
TINY = "mobilenetv3_small_050"


@pytest.fixture(scope="module")
def dataset(photos: Path) -> Path:
    return shared_dataset(photos, PER_CLASS)


@pytest.fixture
def settings(dataset: Path, tmp_path: Path):
    return load_settings(storage=str(dataset), backbone=LITE0,
                         mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                         token="secret-token-1234")


def test_dataset_hash_ignores_order_but_not_labels() -> None:
    rows = pd.DataFrame({"sha256": ["a", "b", "c"], "label": ["cat", "dog", "cat"]})
    assert dataset_hash(rows) == dataset_hash(rows.iloc[::-1])
    relabelled = rows.assign(label=["cat", "cat", "cat"])
    assert dataset_hash(rows) != dataset_hash(relabelled)


def test_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.repeat(["bird", "car", "cat", "dog", "flower"], 20)
    train_idx, test_idx = split(y, 0.1, 42)
    assert len(test_idx) == 10 and set(train_idx).isdisjoint(test_idx)
    assert sorted(set(train_idx) | set(test_idx)) == list(range(100))
    assert pd.Series(y[test_idx]).value_counts().tolist() == [2] * 5
    assert np.array_equal(split(y, 0.1, 42)[1], test_idx)
    assert not np.array_equal(split(y, 0.1, 7)[1], test_idx)


def test_untrainable_datasets_are_refused() -> None:
    with pytest.raises(TrainError, match="at least 2 classes"):
        check_trainable(np.array(["cat"] * 30), 0.1, 5)
    with pytest.raises(TrainError, match="fewer than 10"):
        check_trainable(np.array(["cat"] * 30 + ["dog"] * 8), 0.1, 5)


def test_mann_whitney_matches_scipy() -> None:
    from scipy.stats import mannwhitneyu

    folds = {"a": [0.9, 0.91, 0.92, 0.93, 0.94], "b": [0.95, 0.96, 0.97, 0.98, 0.99],
             "c": [0.9, 0.91, 0.92, 0.93, 0.94]}
    tests = mann_whitney(folds)
    assert [(t["a"], t["b"]) for t in tests] == [("a", "b"), ("a", "c"), ("b", "c")]
    expected = mannwhitneyu(folds["a"], folds["b"], alternative="two-sided")
    assert tests[0]["u"] == expected.statistic and tests[0]["p"] == pytest.approx(expected.pvalue)
    assert tests[1]["p"] == pytest.approx(1.0)


def test_train_reaches_the_study_accuracy_and_logs_everything(settings, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    (tmp_path / "db").mkdir()  # a database outside the working directory
    settings = settings.model_copy(update={"mlflow_uri": f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"})
    summary = train(settings)
    assert summary["backbone"] == LITE0 and summary["labels"] == sorted(
        ["bird", "car", "cat", "dog", "flower"])
    assert (summary["images"], summary["test_images"]) == (200, 20)
    assert len(summary["cv_accuracy"]) == 5
    assert summary["cv_mean"] >= 0.95 and summary["test_accuracy"] >= 0.95
    assert summary["cv_var"] == pytest.approx(np.var(summary["cv_accuracy"]))
    assert set(summary["by_class"]["cat"]) == {"precision", "recall", "f1", "support"}
    # each tag its threshold (no background images here: the default for every one) and figures
    assert summary["thresholds"] == dict.fromkeys(summary["labels"], 0.5)
    assert set(summary["per_tag"]) == set(summary["labels"])
    assert set(summary["per_tag"]["cat"]) == {"threshold", "precision", "recall", "support"}
    assert summary["per_tag"]["cat"]["support"] == summary["by_class"]["cat"]["support"]
    assert 0.9 <= summary["coverage"] <= 1 and summary["suggestion_precision"] >= 0.9
    assert summary["recall_at_k"] >= 0.95 and summary["precision_at_k"] == pytest.approx(
        summary["recall_at_k"] / summary["top_k"])

    client = MlflowClient(settings.mlflow_uri)
    run = client.get_run(summary["run_id"])
    history = client.get_metric_history(run.info.run_id, "cv_accuracy")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == summary["cv_accuracy"]
    for key in ("cv_mean", "cv_var", "test_accuracy", "train_seconds", "recall.cat",
                "precision.dog", "f1.bird", "coverage", "suggestion_precision", "precision_at_k", "recall_at_k",
                "threshold.cat", "tag_precision.dog", "tag_recall.bird", "tag_support.car"):
        assert key in run.data.metrics
    assert run.data.tags["pixtag.labels"] == ",".join(summary["labels"])
    assert run.data.tags["pixtag.dataset_hash"] == summary["dataset_hash"]
    assert run.data.params["settings.seed"] == "42" and "settings.token" not in run.data.params
    assert "secret-token-1234" not in json.dumps(run.data.params)

    mlflow.set_tracking_uri(settings.mlflow_uri)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id))
    for png in ("confusion_counts", "confusion_normalised", "tsne"):
        assert (local / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    split_doc = json.loads((local / "split.json").read_text())
    assert len(split_doc["test"]) == 20 and set(split_doc["test"]).isdisjoint(split_doc["train"])
    assert "secret-token-1234" not in (local / "report.json").read_text()

    # Artifacts beside the SQLite database, not in ./mlruns of the working directory.
    database = Path(settings.mlflow_uri.removeprefix("sqlite:///"))
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(database.parent / "mlruns") and (artifacts / "split.json").is_file()
    assert not (Path.cwd() / "mlruns").exists()

    again = train(settings, reuse=False)  # reproducible from the seed
    assert again["cv_accuracy"] == summary["cv_accuracy"]
    assert again["test_accuracy"] == summary["test_accuracy"]
    assert again["run_id"] != summary["run_id"] and again["train_key"] == summary["train_key"]

    # The same images, backbone and settings: the newest such candidate is reused, not retrained.
    reused = train(settings)
    assert reused["reused"] is True and reused["run_id"] == again["run_id"]
    assert reused["cv_accuracy"] == summary["cv_accuracy"] and reused["model_uri"] == again["model_uri"]
    assert len(client.search_runs([run.info.experiment_id])) == 2
    # A task process that finds the candidate to reuse does not import scikit-learn (seconds).
    probe = subprocess.run([sys.executable, "-c", (
        "import json, sys; from pixtag.core.config import load_settings; "
        "from pixtag.model.training.train import train; "
        f"s = load_settings(storage={settings.storage!r}, backbone={LITE0!r}, mlflow_uri={settings.mlflow_uri!r}); "
        "print(json.dumps([train(s)['run_id'], 'sklearn' in sys.modules]))")],
        capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout.splitlines()[-1]) == [again["run_id"], False]
    other = train(settings.model_copy(update={"cv_folds": 4}))  # a setting the model depends on
    assert other["reused"] is False and other["train_key"] != summary["train_key"]


def test_images_with_two_labels_are_trained_and_scored_for_both(dataset: Path, tmp_path: Path) -> None:
    """A manifest whose images may carry several labels (two_class_posts: all_tags): the split
    is stratified on ``label``, the classifier is trained positive for every label, and a top-1
    prediction is right when it is any of them."""
    import shutil

    from pixtag.core.storage import open_storage
    from pixtag.model.training.fit import fit_and_score
    from pixtag.model.training.protocol import load_data

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)  # images and their cached features
    manifest = pd.read_parquet(copy / "manifest.parquet")
    both = manifest.index[manifest["label"] == "cat"][:10]
    manifest["labels"] = manifest["label"]
    manifest.loc[both, "labels"] = "cat,dog"
    manifest.to_parquet(copy / "manifest.parquet")
    settings = load_settings(storage=str(copy), backbone=LITE0, mlflow_uri=f"sqlite:///{tmp_path / 'm.db'}")
    data = load_data(settings, open_storage(str(copy)))
    assert data.several and sum(len(s) == 2 for s in data.sets) == 10
    plain = load_data(settings.model_copy(update={"storage": str(dataset)}), open_storage(str(dataset)))
    assert np.array_equal(data.test, plain.test)  # the same split: stratified on label
    assert dataset_hash(data.rows) != dataset_hash(plain.rows)
    scored = fit_and_score(settings, data)
    assert list(scored.model.classes_) == ["bird", "car", "cat", "dog", "flower"] and scored.labels == list(
        scored.model.classes_)
    # the default tag_probability (auto): each tag on its own, as two may apply at once
    assert scored.model.probability_ == "one_vs_rest"
    rows = np.flatnonzero([len(s) == 2 for s in data.sets])
    train_rows = np.intersect1d(rows, data.train)
    dog = scored.model.predict_tag_proba(data.X[train_rows])[:, 3]
    alone = fit_and_score(settings, plain).model.predict_tag_proba(data.X[train_rows])[:, 3]
    assert dog.mean() > alone.mean() + 0.2  # trained as dogs too
    # a top-1 "dog" is right on an image labelled cat and dog, wrong on a cat's
    truth = data.truth(data.test, np.full(len(data.test), "dog"))
    sets = [data.sets[i] for i in data.test]
    assert all(t == ("dog" if "dog" in s else data.y[i]) for t, s, i in zip(truth, sets, data.test, strict=True))


def test_the_training_key_covers_every_classifier_parameter(settings) -> None:
    """Every parameter of the classifier training fits is in the key: the tag probability rule
    too, so a change of it trains a new model instead of reusing the old one."""
    other = settings.model_copy(update={"tag_probability": "one_vs_rest"})
    assert settings.tag_probability == "auto"
    for s in (settings, other):
        assert new_classifier(s).get_params() == classifier_params(s)
        assert new_classifier(s).probability == s.tag_probability
    rows = pd.DataFrame({"sha256": ["a" * 64], "label": ["cat"], "path": ["images/cat/a.jpg"]})
    assert training_key(settings, rows) != training_key(other, rows)


def test_compare_runs_the_same_folds_and_tests_them(settings, tmp_path: Path) -> None:
    weights = random_weights(TINY, tmp_path / "tiny.pth")
    settings = settings.model_copy(update={"weights": {TINY: str(weights)}})
    result = compare(settings, [LITE0, TINY])
    assert set(result["backbones"]) == {LITE0, TINY}
    assert result["backbones"][TINY]["dim"] == 1024
    assert result["backbones"][LITE0]["cv_mean"] > result["backbones"][TINY]["cv_mean"]
    (test,) = result["mann_whitney"]
    assert (test["a"], test["b"]) == (LITE0, TINY) and 0 < test["p"] < 0.05
    # the paired test on the shared folds, and notes saying what each test ignores and which weights
    (paired,) = result["paired"]
    assert (paired["a"], paired["b"]) == (LITE0, TINY) and paired["mean_difference"] > 0
    assert paired["p"] == pytest.approx(2 / 2 ** len(result["backbones"][LITE0]["cv_accuracy"]))
    notes = " ".join(result["notes"])
    assert "ignores" not in notes and "independent" in notes and "randomly initialised" in notes
    assert result["backbones"][TINY]["weights"] == f"file:{weights}"
    assert result["backbones"][LITE0]["weights"].startswith("package:")
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_uri)
    local = Path(mlflow.artifacts.download_artifacts(run_id=result["run_id"]))
    for name, res in result["backbones"].items():
        assert json.loads((local / name / "fold_accuracy.json").read_text())["folds"] == res["cv_accuracy"]
        cv = json.loads((local / name / "confusion_cv_mean.json").read_text())
        assert [np.trace(m) / np.sum(m) for m in cv["folds"]] == pytest.approx(res["cv_accuracy"])
        assert len(pd.read_csv(local / name / "tsne.csv")) == 5 * PER_CLASS
        assert (local / name / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TrainError, match="two or more"):
        compare(settings, [LITE0, LITE0])


def test_cli_compare(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = random_weights(TINY, tmp_path / "tiny.pth")
    monkeypatch.setenv("PIXTAG_WEIGHTS", json.dumps({TINY: str(weights)}))
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", settings.mlflow_uri)
    result = CliRunner().invoke(cli, ["train", settings.storage,
                                      "--compare", f"{LITE0},{TINY}"])
    assert result.exit_code == 0, result.output
    assert f"Mann-Whitney U {LITE0} vs {TINY}" in result.stdout
    assert f"paired (Wilcoxon signed-rank) {LITE0} vs {TINY}" in result.stdout and "note: " in result.stdout


def test_cv_and_refit_shares_work_between_svm_fits_not_answers() -> None:
    """pixtag's SVM starts its folds from the refit's optimum: the fold scores and the refit are
    those of independent fits; any other estimator gets independent fits."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold

    from pixtag.model.classifier.crossval import cv_and_refit
    from pixtag.model.classifier.estimator import LinearSVMClassifier

    rng = np.random.default_rng(3)
    y = np.repeat(["bird", "car", "cat"], 60)
    X = rng.normal(size=(3, 12))[np.unique(y, return_inverse=True)[1]] + rng.normal(size=(180, 12)) * 1.5
    splits = list(StratifiedKFold(5, shuffle=True, random_state=1).split(X, y))
    for estimator in (LinearSVMClassifier(C=0.5), RidgeClassifier()):
        scores, refit = cv_and_refit(estimator, X, y, 5, 1)
        plain = [float(np.mean(type(estimator)(**estimator.get_params()).fit(X[tr], y[tr]).predict(X[te]) == y[te]))
                 for tr, te in splits]
        assert scores == plain and 0.6 < np.mean(scores) < 1
        alone = type(estimator)(**estimator.get_params()).fit(X, y)
        assert np.allclose(refit.coef_, alone.coef_, atol=1e-6) and refit is not estimator


# --- splits grouped by origin ----------------------------------------------------------------
def accounts_dataset(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features where each account has a strong look of its own (its camera, its cat) and
    posts one class only; the class itself shows weakly. Returns X, y, accounts, posts."""
    rng = np.random.default_rng(seed)
    classes, per_class, accounts, images = ["bird", "car", "cat", "dog", "flower"], 12, 60, 5
    dim = 48
    looks = rng.normal(size=(accounts, dim)) * 3.0
    signal = rng.normal(size=(len(classes), dim)) * 0.15
    X, y, acct, posts = [], [], [], []
    for a in range(accounts):
        label = a % len(classes)
        for i in range(images):
            X.append(looks[a] + signal[label] + rng.normal(size=dim) * 0.3)
            y.append(classes[label])
            acct.append(f"account:{a}")
            posts.append(f"{a}-{i // 2}")  # albums of two images
    assert len(y) == len(classes) * per_class * images
    return np.asarray(X), np.asarray(y), np.asarray(acct), np.asarray(posts)


def test_origin_groups_by_post_or_account() -> None:
    from pixtag.model.training.protocol import origin_groups

    rows = pd.DataFrame({"post_id": ["p1", "p1", "p2", "p3"], "account": ["ann", "ann", "ann", ""],
                         "sha256": ["a", "b", "c", "d"]})
    assert origin_groups(rows, "post").tolist() == ["p1", "p1", "p2", "p3"]
    assert origin_groups(rows, "account").tolist() == ["account:ann"] * 3 + ["post:p3"]


def test_grouped_split_and_folds_keep_each_origin_on_one_side() -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    _, y, accounts, _ = accounts_dataset()
    train_idx, test_idx = split(y, 0.1, 42, accounts)
    assert set(accounts[train_idx]).isdisjoint(accounts[test_idx])
    assert set(y[test_idx]) == set(y)  # still stratified: every class on both sides
    assert np.array_equal(split(y, 0.1, 42, accounts)[1], test_idx)
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=42).split(y[train_idx], y[train_idx],
                                                                          accounts[train_idx])
    assert all(set(accounts[train_idx][a]).isdisjoint(accounts[train_idx][b]) for a, b in folds)
    # one image per origin: exactly the study's plain stratified split
    singles = np.array([f"p{i}" for i in range(len(y))])
    assert np.array_equal(split(y, 0.1, 42, singles)[1], split(y, 0.1, 42)[1])


def test_a_class_from_one_origin_cannot_be_split_without_leaking() -> None:
    y = np.repeat(["cat", "dog"], 20)
    groups = np.array(["ann"] * 20 + [f"d{i}" for i in range(20)])
    with pytest.raises(TrainError, match=r"all come from one origin.*'cat': 1"):
        split(y, 0.1, 42, groups)


def test_grouping_by_account_changes_the_accuracy_and_the_gate_decision() -> None:
    """Ungrouped, the test images' accounts are in training: the model recognises the accounts
    and looks excellent; grouped, it meets new accounts, as it will in production, and the gate
    refuses it."""
    from pixtag.model.classifier.crossval import cv_and_refit
    from pixtag.model.classifier.openset import closed_predict
    from pixtag.model.promotion.gate import decide

    X, y, accounts, posts = accounts_dataset()
    figures = {}
    for name, groups in {"none": None, "post": posts, "account": accounts}.items():
        train_idx, test_idx = split(y, 0.1, 42, groups)
        cv, model = cv_and_refit(new_classifier(), X[train_idx], y[train_idx], 5, 42,
                                 groups=None if groups is None else groups[train_idx])
        test = float(np.mean(closed_predict(model, X[test_idx]) == y[test_idx]))
        figures[name] = (float(np.mean(cv)), test)
    (cv_none, test_none), (cv_post, test_post), (cv_acct, test_acct) = figures.values()
    assert test_none >= 0.95 and cv_none >= 0.9  # leaked: accounts seen in training
    assert test_post >= 0.95  # albums grouped, but the accounts still leak
    assert test_acct < 0.7 and cv_acct < 0.7, figures  # honest: new accounts
    labels = ("bird", "car", "cat", "dog", "flower")
    assert decide(test_none, labels, None, 0.9, 0.02).passed
    refused = decide(test_acct, labels, None, 0.9, 0.02)
    assert not refused.passed and "below the floor" in refused.reason
