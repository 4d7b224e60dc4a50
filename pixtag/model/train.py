"""Train and evaluate the tag classifier with the study's protocol, and log it all to MLflow.

Protocol (reproducible from ``settings.seed``): rows sorted by sha256; split into train and
test (``settings.test_size``) stratified by class and grouped by origin (``settings.group_by``:
every image of one post, or of one account, falls on one side); stratified, grouped k-fold CV
on the train part (``settings.cv_folds``); refit on all of it; evaluate once on the test part. Background images
(label :data:`pixtag.model.openset.BACKGROUND`) are split and fitted with the classes, but CV and
test accuracy are the study's closed-set figures over class images only; the suggestion
threshold is chosen on the folds' held-out background images (``false_suggestion_target``),
and the test part gives the abstention and false-suggestion rates. ``--compare``
runs the same folds for several backbones and tests the fold accuracies pairwise with the
Mann-Whitney U test, as the study did.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import read_manifest
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.model.features import compute, select
from pixtag.model.openset import (
    BACKGROUND,
    choose_threshold,
    confidence,
    open_set_metrics,
    predict_class,
    wrong_confidence,
)

if TYPE_CHECKING:
    import pandas as pd

    from pixtag.core.config import Settings
    from pixtag.model.classifier import LinearSVMClassifier

log = logging.getLogger(__name__)

# The classifier every stage fits, as parameters: the training key hashes them without
# importing scikit-learn (seconds, wasted when nothing is trained).
CLASSIFIER_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 50}

TSNE_MAX_POINTS = 1000


class TrainError(PixtagError):
    """The dataset cannot be trained on as asked."""


# --- pure core -------------------------------------------------------------------------------
def dataset_hash(rows: pd.DataFrame) -> str:
    """Identity of a labelled dataset: sha256 of its sorted ``sha256<TAB>label`` lines."""
    lines = sorted(f"{s}\t{label}" for s, label in zip(rows["sha256"], rows["label"], strict=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def check_trainable(y: np.ndarray, test_size: float, folds: int) -> None:
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise TrainError(f"need at least 2 classes to train, found {list(labels)}")
    # Each class needs one test image and `folds` train images.
    need = max(folds + 1, int(np.ceil(1 / test_size)))
    small = {str(label): int(c) for label, c in zip(labels, counts, strict=True) if c < need}
    if small:
        raise TrainError(f"classes with fewer than {need} images cannot be split for "
                         f"{folds}-fold CV and a test set: {small}")


def split(y: np.ndarray, test_size: float, seed: int,
          groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices, stratified by class; with ``groups`` (one origin per row), every
    row of a group falls on the same side (``StratifiedGroupKFold``'s first fold is the test
    part). Groups of one row each are the plain stratified split."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if groups is None or len(np.unique(groups)) == len(y):
        return train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                random_state=seed)
    n_splits = max(2, round(1 / test_size))
    check_groups(y, groups, n_splits, "the test split")
    train, test = next(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                       .split(np.zeros(len(y)), y, groups))
    check_sides(y, [(train, test)], "the test split")
    return train, test


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


def origin_groups(rows: pd.DataFrame, group_by: str) -> np.ndarray:
    """One group per row: its post, or its account (a row without an account: its post)."""
    posts = np.asarray(rows["post_id"].fillna("").astype(str), dtype=object)
    posts = np.where(posts == "", np.asarray(rows["sha256"], dtype=object), posts)
    if group_by == "post":
        return posts.astype(str)
    accounts = np.asarray(rows["account"].fillna("").astype(str), dtype=object)
    return np.where(accounts == "", "post:" + posts, "account:" + accounts).astype(str)


DEFAULT_THRESHOLD = 0.5  # a model trained without background images cannot choose one


def closed_predict(model: Any, X: np.ndarray) -> np.ndarray:
    """The most likely real class (never the background): the study's prediction."""
    classes = [str(c) for c in model.classes_]
    if BACKGROUND not in classes:
        return model.predict(X)
    return predict_class(model.log_odds(X), classes)


def cv_and_refit(estimator: Any, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                 oof: list[Any] | None = None,
                 groups: np.ndarray | None = None,
                 predictions: list[tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[list[float], Any]:
    """Closed-set accuracy over the class images of each stratified fold (grouped by
    ``groups`` when given: no origin on both sides of a fold), and a clone fitted on all rows.
    With ``oof`` (a list), the fold models' calibrated probabilities of their held-out rows
    are appended to it as one ``(rows, labels)`` array in row order. With ``predictions`` (a
    list), each fold's ``(held-out class rows, predicted labels)`` is appended.

    The k fold fits and the refit run in one thread pool, one BLAS thread each (multi-threaded
    BLAS only adds waiting at these sizes). pixtag's classifier shares work between them
    (:func:`pixtag.model.classifier.fit_splits`: each fold starts from the refit's optimum, for the
    same models); any other estimator is k + 1 independent jobs.
    """
    from joblib import Parallel, delayed
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    from pixtag.model.classifier import LinearSVMClassifier, fit_splits

    def score(fitted: Any, test: np.ndarray) -> float:
        test = test[y[test] != BACKGROUND]
        predicted = closed_predict(fitted, X[test])
        if predictions is not None:
            predictions.append((test, predicted))
        return float(np.mean(predicted == y[test]))

    def collect(fitted: list[Any], splits: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if oof is None:
            return
        probs = np.zeros((len(y), len(np.unique(y))))
        for model, (_, test) in zip(fitted, splits, strict=True):
            probs[test] = model.predict_tag_proba(X[test])
        oof.append(probs)

    if groups is None or len(np.unique(groups)) == len(y):
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y))
    else:
        check_groups(y, groups, folds, "cross-validation")
        splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
                      .split(X, y, groups))
        check_sides(y, splits, "cross-validation")
    workers = min(folds + 1, len(os.sched_getaffinity(0)))
    if type(estimator) is LinearSVMClassifier:  # the folds start from the refit's optimum
        with threadpool_limits(1):
            refit, fitted = fit_splits(estimator, X, y, [train for train, _ in splits], workers)
        collect(fitted, splits)
        return [score(m, test) for m, (_, test) in zip(fitted, splits, strict=True)], refit
    # the refit, the longest job, first
    jobs = [delayed(lambda: clone(estimator).fit(X, y))(),
            *(delayed(lambda tr: clone(estimator).fit(X[tr], y[tr]))(train) for train, _ in splits)]
    with threadpool_limits(1):
        done = Parallel(n_jobs=workers, backend="threading")(jobs)
    if oof is not None and hasattr(done[0], "predict_tag_proba"):
        collect(done[1:], splits)
    return [score(m, test) for m, (_, test) in zip(done[1:], splits, strict=True)], done[0]


def pick_threshold(settings: Settings, oof: np.ndarray, y: np.ndarray,
                   labels: Sequence[str]) -> tuple[float, str]:
    """The suggestion threshold and where it came from: the setting, else the smallest at
    which at most ``false_suggestion_target`` of the held-out background images get a tag and
    at most that share of the held-out class images get a wrong one."""
    if settings.threshold is not None:
        return float(settings.threshold), "settings"
    background = y == BACKGROUND
    if not background.any():
        return DEFAULT_THRESHOLD, "default (no background images)"
    target = settings.false_suggestion_target
    chosen = max(choose_threshold(confidence(oof[background], labels), target),
                 choose_threshold(wrong_confidence(oof[~background], labels, y[~background]), target))
    return chosen, (f"chosen on out-of-fold images ({int(background.sum())} background, "
                    f"{int((~background).sum())} of classes): at most {target} of either get a wrong tag")


def held_out_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=list(labels),
                                                 zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {label: {"precision": float(p[i]), "recall": float(r[i]),
                              "f1": float(f[i]), "support": int(n[i])}
                      for i, label in enumerate(labels)},
        "confusion": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
    }


def mann_whitney(folds: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Two-sided Mann-Whitney U test of fold accuracies, for every pair of backbones."""
    from scipy.stats import mannwhitneyu

    names = list(folds)
    tests = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            res = mannwhitneyu(folds[a], folds[b], alternative="two-sided")
            tests.append({"a": a, "b": b, "u": float(res.statistic), "p": float(res.pvalue)})
    return tests


# --- data ------------------------------------------------------------------------------------
@dataclass
class Data:
    rows: pd.DataFrame
    X: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    features: dict[str, Any]
    groups: np.ndarray


def load_data(settings: Settings, store: Storage, backbone: str | None = None) -> Data:
    """Manifest rows (sorted by sha256), their features (computing missing ones) and the split."""
    rows = select(read_manifest(store))
    y = np.asarray(rows["label"], dtype=str)
    check_trainable(y, settings.test_size, settings.cv_folds)
    run = compute(settings, rows, store, backbone)
    X = run.vectors(list(rows["sha256"]))
    groups = origin_groups(rows, settings.group_by)
    train_idx, test_idx = split(y, settings.test_size, settings.seed, groups)
    return Data(rows, X, y, train_idx, test_idx, run.summary, groups)


# --- figures ---------------------------------------------------------------------------------
def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, normalise: bool,
                   title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    values = np.asarray(matrix, dtype=float)
    if normalise:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.2 * len(labels) + 2))
    whole = np.allclose(values, np.round(values))
    ConfusionMatrixDisplay(values, display_labels=list(labels)).plot(
        ax=ax, values_format=".2f" if normalise or not whole else ".0f", colorbar=False)
    ax.set_title(title or ("test confusion (row-normalised)" if normalise else "test confusion (counts)"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_tsne(X: np.ndarray, y: np.ndarray, path: Path, seed: int,
              title: str) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of the features (after PCA to 50 dims), at most TSNE_MAX_POINTS points;
    returns the rows shown and their 2-D coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(X))[:TSNE_MAX_POINTS])
    Xs, ys = X[idx], y[idx]
    with threadpool_limits(1):  # 4x faster than 2 busy-waiting threads on a shared 2-core box
        Xs = PCA(n_components=min(50, *Xs.shape), random_state=seed).fit_transform(Xs)
        emb = TSNE(n_components=2, perplexity=min(30.0, (len(Xs) - 1) / 3), init="pca",
                   random_state=seed).fit_transform(Xs)
    fig, ax = plt.subplots(figsize=(7, 6))
    for label in np.unique(ys):
        pts = emb[ys == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, label=str(label), alpha=0.8)
    ax.legend(markerscale=2, fontsize=8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return idx, emb


def plot_folds(folds: Sequence[float], test_accuracy: float, path: Path, title: str) -> None:
    """Bar per CV fold's accuracy, their mean and the test accuracy as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([str(i + 1) for i in range(len(folds))], folds, color="#4c72b0")
    ax.axhline(float(np.mean(folds)), color="black", ls="--", label=f"CV mean {np.mean(folds):.3f}")
    ax.axhline(test_accuracy, color="#dd8452", label=f"test {test_accuracy:.3f}")
    ax.set(title=title, xlabel="fold", ylabel="accuracy (class images)",
           ylim=(max(0.0, min(*folds, test_accuracy) - 0.1), 1.0))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_model_figures(summary: dict[str, Any], data: Data, out: Path, seed: int,
                        prefix: str = "") -> None:
    """The model's figures and tables into ``out``: test confusion (counts, row-normalised),
    the confusion averaged over the CV folds, the fold accuracies and the t-SNE."""
    import pandas as pd

    labels, name = summary["labels"], summary["backbone"]
    test = np.array(summary["confusion"])
    cv_mean = np.array(summary["cv_confusion_mean"])
    plot_confusion(test, labels, out / f"{prefix}confusion_counts.png", False)
    plot_confusion(test, labels, out / f"{prefix}confusion_normalised.png", True)
    plot_confusion(cv_mean, labels, out / f"{prefix}confusion_cv_mean.png", False,
                   f"confusion averaged over {len(summary['cv_confusion'])} CV folds")
    (out / f"{prefix}confusion_test.json").write_text(json.dumps(
        {"labels": labels, "rows": "true", "columns": "predicted", "matrix": summary["confusion"]}))
    (out / f"{prefix}confusion_cv_mean.json").write_text(json.dumps(
        {"labels": labels, "rows": "true", "columns": "predicted", "matrix": summary["cv_confusion_mean"],
         "folds": summary["cv_confusion"]}))
    plot_folds(summary["cv_accuracy"], summary["test_accuracy"], out / f"{prefix}fold_accuracy.png",
               f"{name}: accuracy per CV fold")
    (out / f"{prefix}fold_accuracy.json").write_text(json.dumps(
        {"folds": summary["cv_accuracy"], "mean": summary["cv_mean"], "var": summary["cv_var"],
         "test_accuracy": summary["test_accuracy"]}))
    idx, emb = plot_tsne(data.X, data.y, out / f"{prefix}tsne.png", seed, f"t-SNE of {name} features")
    pd.DataFrame({"sha256": data.rows["sha256"].to_numpy()[idx], "label": data.y[idx],
                  "x": emb[:, 0], "y": emb[:, 1]}).to_csv(out / f"{prefix}tsne.csv", index=False)


def log_study_figures(settings: Settings, data: Data, labels: Sequence[str], tmp: Path,
                      store: Storage | None = None) -> None:
    """The dataset's descriptive figures (``describe/``) and, when the classes came from a
    stored trending run, its tag and class figures (``tags/``, ``classes/``), on the active run.
    ``store``: the dataset's storage (``data.features["storage"]``) already opened."""
    import mlflow

    from pixtag.data.describe import describe

    storage = data.features["storage"]
    store = store or open_storage(storage, settings.s3_endpoint_url)
    describe(storage, settings, out=str(tmp / "describe"), store=store)
    mlflow.log_artifacts(str(tmp / "describe"), "describe")
    if settings.classes:
        return
    from pixtag.tags.figures import write_selection_figures

    if write_selection_figures(settings, store, labels, tmp):
        mlflow.log_artifacts(str(tmp / "tags"), "tags")
        mlflow.log_artifacts(str(tmp / "classes"), "classes")


# --- MLflow ----------------------------------------------------------------------------------
def new_classifier() -> LinearSVMClassifier:
    """An unfitted classifier with :data:`CLASSIFIER_PARAMS`."""
    from pixtag.model.classifier import LinearSVMClassifier

    return LinearSVMClassifier(**CLASSIFIER_PARAMS)


def setup_mlflow(settings: Settings) -> None:
    """Point MLflow at the settings' store and experiment (created on first use).

    With a local SQLite store, the experiment's artifacts go to ``mlruns/`` beside the database,
    not to ``./mlruns`` of whatever folder the command happens to run in (MLflow's default).
    A tracking server keeps its own artifact root.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(settings.mlflow_uri)
    root = local_artifact_root(settings.mlflow_uri)
    if root and mlflow.get_experiment_by_name(settings.model_name) is None:
        with contextlib.suppress(MlflowException):  # another task created it meanwhile
            mlflow.create_experiment(settings.model_name, artifact_location=root)
    mlflow.set_experiment(settings.model_name)


def local_artifact_root(tracking_uri: str) -> str | None:
    """``file://`` URI of ``mlruns/`` beside a ``sqlite:///`` database; None for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve()
    return (database.parent / "mlruns").as_uri()


def settings_params(settings: Settings) -> dict[str, str]:
    """All settings (never the token) as MLflow params."""
    return {f"settings.{k}": v if isinstance(v, str) else json.dumps(v)
            for k, v in settings.public_dict().items()}


# --- reuse -----------------------------------------------------------------------------------
def training_key(settings: Settings, rows: pd.DataFrame, backbone: str | None = None) -> str:
    """What a candidate depends on: the labelled images, the backbone (and its weights), the
    protocol (split, folds, seed), the classifier and the served model's configuration. Two
    trainings with the same key give the same model, so the second can reuse the first."""
    from pixtag import __version__
    from pixtag.model.backbones import cache_key, resolve_name
    from pixtag.model.suggest import model_config

    name = resolve_name(backbone or settings.backbone, settings.weights)
    parts = {
        "dataset": dataset_hash(rows), "features": cache_key(name, settings.weights),
        "test_size": settings.test_size, "cv_folds": settings.cv_folds, "seed": settings.seed,
        "group_by": settings.group_by,
        "classifier": CLASSIFIER_PARAMS, "model_config": model_config(settings),
        "open_set": {"target": settings.false_suggestion_target, "share": settings.in_class_share},
        "pixtag": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def trained_before(settings: Settings, key: str) -> dict[str, Any] | None:
    """The summary of a finished candidate run with this training key, if MLflow has one."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_uri)
    experiment = mlflow.get_experiment_by_name(settings.model_name)
    if experiment is None:
        return None
    client = MlflowClient(settings.mlflow_uri)
    runs = client.search_runs([experiment.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`pixtag.train_key` = '{key}' and attributes.status = 'FINISHED'")
    if not runs:
        return None
    run = runs[0]
    summary: dict[str, Any] = mlflow.artifacts.load_dict(f"{run.info.artifact_uri.rstrip('/')}/report.json")
    summary.update(run_id=run.info.run_id, model_uri=run.data.tags.get("pixtag.model_uri"), reused=True)
    return summary


# --- the stages ------------------------------------------------------------------------------
def train(settings: Settings, *, backbone: str | None = None,
          store: Storage | None = None, reuse: bool = True) -> dict[str, Any]:
    """Cross-validate, refit, test and log a candidate (run + model) to MLflow.

    With ``reuse``, a finished candidate with the same :func:`training_key` (same images,
    backbone, protocol and settings) is returned instead of training again (``reused: true``).
    Returns a JSON-able summary with ``run_id`` and ``model_uri`` (not yet registered: see
    :func:`pixtag.model.registry.register`).
    """
    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    key = training_key(settings, select(read_manifest(store)), backbone)
    if reuse:
        setup_mlflow(settings)
        before = trained_before(settings, key)
        if before is not None:
            log.info("nothing new to train: run %s has the same images, backbone and settings", before["run_id"])
            return before
    # Only now: scikit-learn and SciPy take seconds to import, wasted when nothing is trained.
    import mlflow

    from pixtag.model.suggest import log_model
    data = load_data(settings, store, backbone)
    name = data.features["backbone"]
    labels = sorted(set(data.y) - {BACKGROUND})
    Xtr, ytr, Xte, yte = data.X[data.train], data.y[data.train], data.X[data.test], data.y[data.test]

    start = time.perf_counter()
    oof: list[np.ndarray] = []
    fold_predictions: list[tuple[np.ndarray, np.ndarray]] = []
    folds, clf = cv_and_refit(new_classifier(), Xtr, ytr, settings.cv_folds, settings.seed, oof,
                              groups=data.groups[data.train], predictions=fold_predictions)
    train_seconds = time.perf_counter() - start
    cv_confusions = [held_out_metrics(ytr[rows], predicted, labels)["confusion"]
                     for rows, predicted in fold_predictions]
    fitted = [str(c) for c in clf.classes_]
    threshold, threshold_source = pick_threshold(settings, oof[0], ytr, fitted)
    top = closed_predict(clf, Xte)
    inside = yte != BACKGROUND
    test = held_out_metrics(yte[inside], top[inside], labels)
    opened = open_set_metrics(yte, top, confidence(clf.predict_tag_proba(Xte), fitted) >= threshold,
                              settings.in_class_share)

    summary: dict[str, Any] = {
        "backbone": name,
        "cache_key": data.features["cache_key"],
        "labels": labels,
        "dataset_hash": dataset_hash(data.rows),
        "images": len(data.rows),
        "class_counts": {str(k): int(v) for k, v in zip(*np.unique(data.y, return_counts=True), strict=True)},
        "oldest_post": _created(data.rows, min),
        "newest_post": _created(data.rows, max),
        "group_by": settings.group_by,
        "train_groups": len(np.unique(data.groups[data.train])),
        "test_groups": len(np.unique(data.groups[data.test])),
        "train_images": len(data.train),
        "test_images": len(data.test),
        "cv_accuracy": folds,
        "cv_mean": float(np.mean(folds)),
        "cv_var": float(np.var(folds)),
        "test_accuracy": test["accuracy"],
        "threshold": threshold,
        "threshold_source": threshold_source,
        "background_images": int(np.sum(data.y == BACKGROUND)),
        "abstention_rate": opened.get("abstention_rate"),
        "false_suggestion_rate": opened.get("false_suggestion_rate"),
        "precision_at_share": opened.get("precision_at_share"),
        "suggested_accuracy": opened.get("suggested_accuracy"),
        "test_background_images": opened["background_images"],
        "in_class_share": settings.in_class_share,
        "per_class": test["per_class"],
        "confusion": test["confusion"],
        "cv_confusion": cv_confusions,
        "cv_confusion_mean": np.mean(np.array(cv_confusions, dtype=float), axis=0).tolist(),
        "train_seconds": round(train_seconds, 3),
        "features": data.features,
        "train_key": key,
        "reused": False,
    }
    setup_mlflow(settings)
    with mlflow.start_run(run_name=f"train-{name}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        _log_candidate(summary, settings, clf, data, Path(tmp), top, store)
        info = log_model(clf, name, settings, threshold=threshold, store=store)
        mlflow.set_tag("pixtag.model_uri", info.model_uri)
        summary["run_id"] = run.info.run_id
        summary["model_uri"] = info.model_uri
    log.info("trained %s on %d images: CV %.4f ± %.4f, test %.4f, false suggestions %s at "
             "threshold %.3f (run %s)", name, len(data.rows), summary["cv_mean"], summary["cv_var"],
             summary["test_accuracy"], summary["false_suggestion_rate"], threshold, summary["run_id"])
    return summary


def _created(rows: pd.DataFrame, pick: Any) -> str | None:
    """The oldest or newest post's ``created_at`` (ISO 8601 strings sort by time)."""
    values = [v for v in rows["created_at"].dropna().astype(str) if v]
    return pick(values) if values else None


def _log_candidate(summary: dict[str, Any], settings: Settings, clf: LinearSVMClassifier,
                   data: Data, tmp: Path, test_predictions: np.ndarray, store: Storage | None = None) -> None:
    import mlflow

    mlflow.log_params(settings_params(settings))
    mlflow.log_params({f"classifier.{k}": v for k, v in clf.get_params().items()}
                      | {"backbone": summary["backbone"], "cache_key": summary["cache_key"]})
    mlflow.set_tags({
        "pixtag.backbone": summary["backbone"],
        "pixtag.cache_key": summary["cache_key"],
        "pixtag.dataset_hash": summary["dataset_hash"],
        "pixtag.train_key": summary["train_key"],
        "pixtag.labels": ",".join(summary["labels"]),
        "pixtag.core.storage": data.features["storage"],
    })
    for step, acc in enumerate(summary["cv_accuracy"]):
        mlflow.log_metric("cv_accuracy", acc, step=step)
    mlflow.log_metrics({
        "cv_mean": summary["cv_mean"], "cv_var": summary["cv_var"],
        "test_accuracy": summary["test_accuracy"], "train_seconds": summary["train_seconds"],
        "images": summary["images"], "threshold": summary["threshold"],
        "background_images": summary["background_images"],
    })
    mlflow.log_metrics({k: summary[k] for k in ("abstention_rate", "false_suggestion_rate",
                                                "precision_at_share", "suggested_accuracy")
                        if summary.get(k) is not None})
    for label, m in summary["per_class"].items():
        mlflow.log_metrics({f"{k}.{label}": m[k] for k in ("precision", "recall", "f1")})
    labels = summary["labels"]
    plots = tmp / "plots"
    plots.mkdir()
    write_model_figures(summary, data, plots, settings.seed)
    mlflow.log_artifacts(str(plots), "plots")
    log_study_figures(settings, data, labels, tmp, store)
    mlflow.log_dict({k: v for k, v in summary.items() if k != "features"}, "report.json")
    mlflow.log_dict({"labels": labels,
                     "train": data.rows["sha256"].iloc[data.train].tolist(),
                     "test": data.rows["sha256"].iloc[data.test].tolist(),
                     "test_labels": data.y[data.test].tolist(),
                     # the closed-set prediction of each test image: the gate's paired test
                     "test_predictions": [str(p) for p in test_predictions],
                     "group_by": settings.group_by}, "split.json")


PAIRING_NOTE = ("Mann-Whitney U (the study's test) treats the backbones' fold accuracies as independent "
                "samples, but every backbone is scored on the same folds; the paired test (Wilcoxon "
                "signed-rank on the per-fold differences) uses that pairing. With {k} folds its two-sided "
                "p cannot go below {floor:.4f}.")
WEIGHTS_NOTE = ("Offline, only efficientnet_lite0 has real (ImageNet) weights, from its package; any other "
                "backbone uses the weights file given in settings.weights as it is (the test suite gives a "
                "randomly initialised one, whose figures are not the study's).")


def paired_tests(folds: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Two-sided Wilcoxon signed-rank test of the per-fold accuracy differences, for every pair
    (p = 1 where the two backbones score alike on every fold)."""
    from scipy.stats import wilcoxon

    names = list(folds)
    tests = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = np.asarray(folds[a]) - np.asarray(folds[b])
            if not np.any(diff):
                tests.append({"a": a, "b": b, "w": 0.0, "p": 1.0, "mean_difference": 0.0})
                continue
            res = wilcoxon(folds[a], folds[b], alternative="two-sided")
            tests.append({"a": a, "b": b, "w": float(res.statistic), "p": float(res.pvalue),
                          "mean_difference": float(diff.mean())})
    return tests


def compare(settings: Settings, backbones: Sequence[str],
            store: Storage | None = None) -> dict[str, Any]:
    """Same split and folds for each backbone; per backbone the fold accuracies, the confusion
    averaged over the folds, the test confusion and the t-SNE; across them the study's
    Mann-Whitney U test and a paired test on the shared folds, all logged to one MLflow run."""
    import mlflow

    from pixtag.model.backbones import weights_source

    if len(set(backbones)) < 2:
        raise TrainError("--compare needs two or more different backbones")
    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    results: dict[str, dict[str, Any]] = {}
    loaded: dict[str, Data] = {}
    for name in backbones:
        data = load_data(settings, store, name)
        labels = sorted(set(data.y) - {BACKGROUND})
        Xtr, ytr = data.X[data.train], data.y[data.train]
        test = data.test[data.y[data.test] != BACKGROUND]
        start = time.perf_counter()
        predictions: list[tuple[np.ndarray, np.ndarray]] = []
        folds, clf = cv_and_refit(new_classifier(), Xtr, ytr, settings.cv_folds, settings.seed,
                                  groups=data.groups[data.train], predictions=predictions)
        held_out = held_out_metrics(data.y[test], closed_predict(clf, data.X[test]), labels)
        confusions = [held_out_metrics(ytr[rows], predicted, labels)["confusion"] for rows, predicted in predictions]
        resolved = data.features["backbone"]
        results[name] = {
            "cv_accuracy": folds, "cv_mean": float(np.mean(folds)),
            "cv_var": float(np.var(folds)),
            "test_accuracy": held_out["accuracy"],
            "train_seconds": round(time.perf_counter() - start, 3),
            "dim": int(data.X.shape[1]),
            "weights": weights_source(resolved, settings.weights, check_hub=False).describe(),
            "labels": labels, "backbone": resolved, "confusion": held_out["confusion"],
            "cv_confusion": confusions,
            "cv_confusion_mean": np.mean(np.array(confusions, dtype=float), axis=0).tolist(),
        }
        loaded[name] = data
    accuracies = {k: v["cv_accuracy"] for k, v in results.items()}
    k = settings.cv_folds
    summary = {"backbones": results, "mann_whitney": mann_whitney(accuracies),
               "paired": paired_tests(accuracies),
               "notes": [PAIRING_NOTE.format(k=k, floor=2 / 2 ** k), WEIGHTS_NOTE],
               "dataset_hash": dataset_hash(data.rows)}
    setup_mlflow(settings)
    with mlflow.start_run(run_name="compare-" + "-vs-".join(results)) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(settings_params(settings))
        mlflow.set_tags({"pixtag.compare": ",".join(results),
                         "pixtag.dataset_hash": summary["dataset_hash"]})
        for name, res in results.items():
            mlflow.log_metrics({f"{name}.cv_mean": res["cv_mean"], f"{name}.cv_var": res["cv_var"],
                                f"{name}.test_accuracy": res["test_accuracy"]})
            for step, acc in enumerate(res["cv_accuracy"]):
                mlflow.log_metric(f"{name}.cv_accuracy", acc, step=step)
            out = Path(tmp) / name
            out.mkdir()
            write_model_figures(res, loaded[name], out, settings.seed)
            mlflow.log_artifacts(str(out), name)
        for t in summary["mann_whitney"]:
            mlflow.log_metric(f"mann_whitney_p.{t['a']}.{t['b']}", t["p"])
        for t in summary["paired"]:
            mlflow.log_metric(f"wilcoxon_p.{t['a']}.{t['b']}", t["p"])
        mlflow.log_dict(summary, "compare.json")
        summary["run_id"] = run.info.run_id
    return summary


def open_set_line(result: dict[str, Any]) -> str:
    """One line on abstention: threshold, false suggestions, abstention, precision."""
    fsr = result.get("false_suggestion_rate")
    if fsr is None:
        return (f"threshold {result.get('threshold', DEFAULT_THRESHOLD):.3f}; no background images, so "
                "the false-suggestion rate is unmeasured (set background > 0)")
    precision = result.get("precision_at_share")
    return (f"threshold {result['threshold']:.3f}: false suggestions {fsr:.1%} of "
            f"{result.get('test_background_images')} held-out background images, abstained on "
            f"{result['abstention_rate']:.1%} of class images, precision "
            f"{'n/a' if precision is None else f'{precision:.1%}'} at {result.get('in_class_share', 0.15):.0%} "
            "in-class posts")
