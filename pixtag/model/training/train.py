"""The training stages: :func:`train` cross-validates, refits, tests and logs a candidate (run +
model) to MLflow; :func:`compare` runs the same folds for several backbones and tests their fold
accuracies pairwise (the study's Mann-Whitney U, and a paired test).

CV and test accuracy are the study's closed-set figures over class images only; each tag's
suggestion threshold is chosen on the folds' held-out images
(:func:`pixtag.model.classifier.thresholds.pick_thresholds`) and the test part gives the suggestions'
figures (:func:`pixtag.model.classifier.openset.suggestion_metrics`): coverage, precision of
suggestions, false suggestions on background images, precision and recall at k, per tag.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import read_manifest
from pixtag.core.storage import Storage, open_storage
from pixtag.model.classifier.crossval import TrainError
from pixtag.model.classifier.openset import (
    BACKGROUND,
    DEFAULT_THRESHOLD,
    class_columns,
    ranked_tags,
    suggestion_metrics,
    tag_probabilities,
)
from pixtag.model.classifier.thresholds import pick_thresholds
from pixtag.model.features.compute import select
from pixtag.model.training.figures import write_model_figures
from pixtag.model.training.fit import Scored, fit_and_score
from pixtag.model.training.protocol import Data, dataset_hash, load_data, post_time
from pixtag.model.training.runs import log_candidate, settings_params, trained_before, training_key
from pixtag.model.training.statistics import PAIRING_NOTE, mann_whitney, paired_tests

if TYPE_CHECKING:
    from pixtag.core.config import Settings

log = logging.getLogger(__name__)

WEIGHTS_NOTE = ("Offline, only efficientnet_lite0 has real (ImageNet) weights, from its package; any other "
                "backbone uses the weights file given in settings.weights as it is (the test suite gives a "
                "randomly initialised one, whose figures are not the study's).")

__all__ = ["TrainError", "compare", "open_set_line", "train"]


def train(settings: Settings, *, backbone: str | None = None,
          store: Storage | None = None, reuse: bool = True) -> dict[str, Any]:
    """Cross-validate, refit, test and log a candidate (run + model) to MLflow.

    With ``reuse``, a finished candidate with the same :func:`~pixtag.model.training.runs.training_key`
    (same images, backbone, protocol and settings) is returned instead of training again
    (``reused: true``). Returns a JSON-able summary with ``run_id`` and ``model_uri`` (not yet
    registered: see :func:`pixtag.model.promotion.register.register`).
    """
    from pixtag.model.tracking import use_experiment

    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    key = training_key(settings, select(read_manifest(store)), backbone)
    if reuse:
        use_experiment(settings)
        before = trained_before(settings, key)
        if before is not None:
            log.info("nothing new to train: run %s has the same images, backbone and settings", before["run_id"])
            return before
    data = load_data(settings, store, backbone)
    scored = fit_and_score(settings, data)
    summary = candidate_summary(settings, data, scored, key)
    log_run(settings, summary, data, scored, store)
    log.info("trained %s on %d images: CV %.4f ± %.4f, test %.4f, coverage %s, precision of suggestions %s, "
             "false suggestions %s (run %s)", summary["backbone"], len(data.rows), summary["cv_mean"],
             summary["cv_var"], summary["test_accuracy"], summary["coverage"], summary["suggestion_precision"],
             summary["false_suggestion_rate"], summary["run_id"])
    return summary


OPEN_SET_KEYS = ("abstention_rate", "coverage", "suggestion_precision", "false_suggestion_rate", "precision_at_share",
                 "suggested_accuracy", "precision_at_k", "recall_at_k")


def suggestions_on(model: Any, X: np.ndarray, sets: list[tuple[str, ...]], top: np.ndarray,
                   thresholds: np.ndarray, top_k: int, share: float) -> dict[str, Any]:
    """:func:`~pixtag.model.classifier.openset.suggestion_metrics` of feature rows ``X`` (one view
    each, the 224 px image) whose labels are ``sets``, at ``thresholds`` (one per tag)."""
    fitted = [str(c) for c in model.classes_]
    tags = [fitted[i] for i in class_columns(fitted)]
    probs = model.predict_tag_proba(X)
    suggested = [[tags[k] for k in cols] for cols in ranked_tags(tag_probabilities(probs, fitted), thresholds, top_k)]
    closed = probs[:, class_columns(fitted)]
    ranking = [[tags[k] for k in np.argsort(-row, kind="stable")[:top_k]] for row in closed]
    return suggestion_metrics(sets, list(top), suggested, ranking, share, top_k)


def open_set_figures(settings: Settings, data: Data, scored: Scored) -> dict[str, Any]:
    """Each tag's threshold (and where they came from), and the test part's figures at them:
    overall, per tag, and at the one threshold of the old rule (for comparison)."""
    fitted = [str(c) for c in scored.model.classes_]
    chosen = pick_thresholds(settings, scored.oof, [data.sets[i] for i in data.train], fitted)
    tags = [fitted[i] for i in class_columns(fitted)]
    test_sets = [data.sets[i] for i in data.test]
    Xte = data.X[data.test]
    figures = suggestions_on(scored.model, Xte, test_sets, scored.test_predictions, chosen.vector(tags),
                             settings.top_k, settings.in_class_share)
    one = suggestions_on(scored.model, Xte, test_sets, scored.test_predictions, np.full(len(tags), chosen.one),
                         settings.top_k, settings.in_class_share)
    per_tag = {tag: {"threshold": chosen.values[tag], **figures["per_tag"].get(tag, {"support": 0, "precision": None,
                                                                                    "recall": None})}
               for tag in tags}
    return {
        "threshold": chosen.one,  # the one threshold of the old rule, kept for comparison
        "thresholds": chosen.values,
        "threshold_source": chosen.source,
        "tag_probability": scored.model.probability_,
        **{k: figures.get(k) for k in OPEN_SET_KEYS},
        "top_k": settings.top_k,
        "test_background_images": figures["background_images"],
        "per_tag": per_tag,
        "per_tag_out_of_fold": chosen.out_of_fold,
        "one_threshold": {k: one.get(k) for k in OPEN_SET_KEYS},
    }


def candidate_summary(settings: Settings, data: Data, scored: Scored, key: str) -> dict[str, Any]:
    """The candidate's figures and provenance (``report.json`` of its run, less ``features``)."""
    return {
        "backbone": data.features["backbone"],
        "cache_key": data.features["cache_key"],
        "labels": scored.labels,
        "dataset_hash": dataset_hash(data.rows),
        "images": len(data.rows),
        "class_counts": {str(k): int(v) for k, v in zip(*np.unique(data.y, return_counts=True), strict=True)},
        "oldest_post": post_time(data.rows, min),
        "newest_post": post_time(data.rows, max),
        "group_by": settings.group_by,
        "train_groups": len(np.unique(data.groups[data.train])),
        "test_groups": len(np.unique(data.groups[data.test])),
        "train_images": len(data.train),
        "test_images": len(data.test),
        "cv_accuracy": scored.folds,
        "cv_mean": float(np.mean(scored.folds)),
        "cv_var": float(np.var(scored.folds)),
        "test_accuracy": scored.test["accuracy"],
        "background_images": int(np.sum(data.y == BACKGROUND)),
        **open_set_figures(settings, data, scored),
        "in_class_share": settings.in_class_share,
        "by_class": scored.test["by_class"],
        "confusion": scored.test["confusion"],
        "cv_confusion": scored.cv_confusions,
        "cv_confusion_mean": scored.cv_confusion_mean,
        "train_seconds": round(scored.seconds, 3),
        "features": data.features,
        "train_key": key,
        "reused": False,
    }


def log_run(settings: Settings, summary: dict[str, Any], data: Data, scored: Scored, store: Storage) -> None:
    """The candidate's MLflow run and model; adds ``run_id`` and ``model_uri`` to ``summary``."""
    import mlflow

    from pixtag.model.serving.packaging import log_model
    from pixtag.model.tracking import use_experiment

    use_experiment(settings)
    with mlflow.start_run(run_name=f"train-{summary['backbone']}") as run, tempfile.TemporaryDirectory() as tmp:
        log_candidate(summary, settings, scored.model, data, Path(tmp), scored.test_predictions, store)
        info = log_model(scored.model, summary["backbone"], settings, threshold=summary["threshold"], store=store,
                         thresholds=summary["thresholds"])
        mlflow.set_tag("pixtag.model_uri", info.model_uri)
        summary["run_id"] = run.info.run_id
        summary["model_uri"] = info.model_uri


def compare(settings: Settings, backbones: Sequence[str],
            store: Storage | None = None) -> dict[str, Any]:
    """Same split and folds for each backbone; per backbone the fold accuracies, the confusion
    averaged over the folds, the test confusion and the t-SNE; across them the study's
    Mann-Whitney U test and a paired test on the shared folds, all logged to one MLflow run."""
    from pixtag.model.backbones.weights import weights_source

    if len(set(backbones)) < 2:
        raise TrainError("--compare needs two or more different backbones")
    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    results: dict[str, dict[str, Any]] = {}
    loaded: dict[str, Data] = {}
    for name in backbones:
        data = loaded[name] = load_data(settings, store, name)
        scored = fit_and_score(settings, data)
        resolved = data.features["backbone"]
        results[name] = {
            "cv_accuracy": scored.folds, "cv_mean": float(np.mean(scored.folds)),
            "cv_var": float(np.var(scored.folds)),
            "test_accuracy": scored.test["accuracy"],
            "train_seconds": round(scored.seconds, 3),
            "dim": int(data.X.shape[1]),
            "weights": weights_source(resolved, settings.weights, check_hub=False).describe(),
            "labels": scored.labels, "backbone": resolved, "confusion": scored.test["confusion"],
            "cv_confusion": scored.cv_confusions, "cv_confusion_mean": scored.cv_confusion_mean,
        }
    accuracies = {k: v["cv_accuracy"] for k, v in results.items()}
    k = settings.cv_folds
    summary = {"backbones": results, "mann_whitney": mann_whitney(accuracies),
               "paired": paired_tests(accuracies),
               "notes": [PAIRING_NOTE.format(k=k, floor=2 / 2 ** k), WEIGHTS_NOTE],
               "dataset_hash": dataset_hash(data.rows)}
    summary["run_id"] = log_comparison(settings, summary, loaded)
    return summary


def log_comparison(settings: Settings, summary: dict[str, Any], loaded: dict[str, Data]) -> str:
    """One MLflow run for a comparison: each backbone's figures, the tests; returns its id."""
    import mlflow

    from pixtag.model.tracking import use_experiment

    results = summary["backbones"]
    use_experiment(settings)
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
        return str(run.info.run_id)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def open_set_line(result: dict[str, Any]) -> str:
    """One line on the suggestions: thresholds, false suggestions, coverage, precision."""
    values = list((result.get("thresholds") or {}).values())
    where = (f"thresholds {min(values):.3f}-{max(values):.3f} (one per tag)" if values
             else f"threshold {result.get('threshold', DEFAULT_THRESHOLD):.3f}")
    fsr = result.get("false_suggestion_rate")
    if fsr is None:
        return f"{where}; no background images, so the false-suggestion rate is unmeasured (set background > 0)"
    return (f"{where}: false suggestions {fsr:.1%} of {result.get('test_background_images')} held-out background "
            f"images, coverage {_pct(result.get('coverage'))} of class images, precision of suggestions "
            f"{_pct(result.get('suggestion_precision'))}, {_pct(result.get('precision_at_share'))} at "
            f"{result.get('in_class_share', 0.15):.0%} in-class posts")
