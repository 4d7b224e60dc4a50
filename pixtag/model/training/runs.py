"""What a candidate's MLflow run holds (params, tags, metrics, figures, ``report.json`` and
``split.json``), and its reuse key: a finished run with the same key is the same model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.storage import Storage
from pixtag.model.training.figures import log_study_figures, write_model_figures
from pixtag.model.training.protocol import Data, dataset_hash

if TYPE_CHECKING:
    import pandas as pd

    from pixtag.core.config import Settings
    from pixtag.model.classifier.estimator import LinearSVMClassifier

# The classifier every stage fits, as parameters: the training key hashes them without
# importing scikit-learn (seconds, wasted when nothing is trained).
CLASSIFIER_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 50}


def classifier_params(settings: Settings | None = None) -> dict[str, Any]:
    """:data:`CLASSIFIER_PARAMS` and the settings' ``tag_probability`` (one-vs-rest without
    settings)."""
    return CLASSIFIER_PARAMS | {"probability": settings.tag_probability if settings else "one_vs_rest"}


def new_classifier(settings: Settings | None = None) -> LinearSVMClassifier:
    """An unfitted classifier with :func:`classifier_params`."""
    from pixtag.model.classifier.estimator import LinearSVMClassifier

    return LinearSVMClassifier(**classifier_params(settings))


def settings_params(settings: Settings) -> dict[str, str]:
    """All settings (never the token) as MLflow params."""
    return {f"settings.{k}": v if isinstance(v, str) else json.dumps(v)
            for k, v in settings.public_dict().items()}


def training_key(settings: Settings, rows: pd.DataFrame, backbone: str | None = None) -> str:
    """What a candidate depends on: the labelled images, the backbone (and its weights), the
    protocol (split, folds, seed), the classifier and the served model's configuration. Two
    trainings with the same key give the same model, so the second can reuse the first."""
    from pixtag import __version__
    from pixtag.model.backbones.weights import cache_key, resolve_name
    from pixtag.model.serving.packaging import model_config

    name = resolve_name(backbone or settings.backbone, settings.weights)
    parts = {
        "dataset": dataset_hash(rows), "features": cache_key(name, settings.weights),
        "test_size": settings.test_size, "cv_folds": settings.cv_folds, "seed": settings.seed,
        "group_by": settings.group_by,
        "classifier": classifier_params(settings), "model_config": model_config(settings),
        "open_set": {"target": settings.false_suggestion_target, "share": settings.in_class_share,
                     "precision": settings.target_precision},
        "pixtag": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def trained_before(settings: Settings, key: str) -> dict[str, Any] | None:
    """The summary of a finished candidate run with this training key, if MLflow has one."""
    from pixtag.model.tracking import connect, load_dict

    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.model_name)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`pixtag.train_key` = '{key}' and attributes.status = 'FINISHED'")
    if not runs:
        return None
    run = runs[0]
    summary: dict[str, Any] = load_dict(f"{run.info.artifact_uri.rstrip('/')}/report.json")
    summary.update(run_id=run.info.run_id, model_uri=run.data.tags.get("pixtag.model_uri"), reused=True)
    return summary


def log_candidate(summary: dict[str, Any], settings: Settings, clf: LinearSVMClassifier,
                   data: Data, tmp: Path, test_predictions: np.ndarray, store: Storage | None = None) -> None:
    import mlflow

    from pixtag.model.tracking import STORAGE_TAG

    mlflow.log_params(settings_params(settings))
    mlflow.log_params({f"classifier.{k}": v for k, v in clf.get_params().items()}
                      | {"backbone": summary["backbone"], "cache_key": summary["cache_key"]})
    mlflow.set_tags({
        "pixtag.backbone": summary["backbone"],
        "pixtag.cache_key": summary["cache_key"],
        "pixtag.dataset_hash": summary["dataset_hash"],
        "pixtag.train_key": summary["train_key"],
        "pixtag.labels": ",".join(summary["labels"]),
        STORAGE_TAG: data.features["storage"],
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
                                                "precision_at_share", "suggested_accuracy", "coverage",
                                                "suggestion_precision", "precision_at_k", "recall_at_k")
                        if summary.get(k) is not None})
    for label, m in summary["by_class"].items():
        mlflow.log_metrics({f"{k}.{label}": m[k] for k in ("precision", "recall", "f1")})
    # the suggestions' figures on the test part, each tag at its own threshold
    mlflow.log_metrics({f"{name}.{tag}": m[key] for tag, m in (summary.get("per_tag") or {}).items()
                        for name, key in (("threshold", "threshold"), ("tag_precision", "precision"),
                                          ("tag_recall", "recall"), ("tag_support", "support"))
                        if m.get(key) is not None})
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
                     # every label of each test image, where some has several (a prediction is
                     # right when it is any of them)
                     **({"test_label_sets": [list(data.sets[i]) for i in data.test]} if data.several else {}),
                     "group_by": settings.group_by}, "split.json")
