"""The champion on the candidate's own test images: re-scored from the feature cache (features of
the same images, computed by the run's feature tasks), never by running a backbone here, in the
register task, outside the ``gpu`` pool. With another class set, on the test images of the
classes both have. Where that cannot be done (no class in common, features of the champion's
backbone not cached), its logged figures are used and the reason recorded."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.model.classifier.openset import (
    BACKGROUND,
    DEFAULT_THRESHOLD,
    class_columns,
    predict_class,
    tag_probabilities,
)
from pixtag.model.promotion.gate import Champion
from pixtag.model.promotion.versions import (
    CHAMPION,
    TAG,
    aliases,
    load_split,
    run_accuracy,
    run_false_rate,
    run_labels,
    test_truth,
)
from pixtag.model.tracking import run_storage

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage

log = logging.getLogger(__name__)


def load_classifier(version: Any) -> tuple[Any, dict[str, Any]]:
    """A registered version's classifier and its model's ``config.json`` (no backbone is built)."""
    import mlflow
    import yaml

    from pixtag.model.classifier.estimator import LinearSVMClassifier

    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{version.name}/{version.version}"))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    data = local / flavor["data"]
    with np.load(data / "classifier.npz", allow_pickle=False) as arrays:
        classifier = LinearSVMClassifier.from_arrays(dict(arrays))
    return classifier, json.loads((data / "config.json").read_text())


def served_thresholds(config: dict[str, Any], tags: list[str], settings: Settings) -> np.ndarray:
    """The thresholds a version serves with: the setting for every tag, else each tag's trained
    one (a version logged before: its one ``trained_threshold``)."""
    if settings.threshold is not None:
        return np.full(len(tags), float(settings.threshold))
    one = float(config.get("trained_threshold", DEFAULT_THRESHOLD))
    trained = config.get("thresholds") or {}
    return np.array([float(trained.get(tag, one)) for tag in tags])


def compared_rows(split: dict[str, Any], classes: tuple[str, ...] | None) -> np.ndarray:
    """The split's test class images whose label is one of ``classes`` (all when None), as a mask
    over its class images (in the split's order)."""
    labels = np.asarray(test_truth(split)[0])
    labels = labels[labels != BACKGROUND]
    return np.ones(len(labels), dtype=bool) if classes is None else np.isin(labels, list(classes))


def champion_on_split(settings: Settings, version: Any, cache_key: str, split: dict[str, Any],
                      store: Storage, classes: tuple[str, ...] | None = None) -> tuple[float, float | None, list[bool]]:
    """Closed-set accuracy of a registered version on a test split's class images (of
    ``classes`` only, when given: those it shares with the candidate), from the features its
    backbone gave these images (the cache under ``cache_key``); its false-suggestion rate on the
    split's background images at its own thresholds (``None`` without background images); and
    whether it got each of those class images right (in the split's order: the paired test).

    Raises :class:`~pixtag.model.features.cache.FeaturesError` when the cache lacks any of them:
    no backbone runs here."""
    from pixtag.model.features.cache import load_vectors

    classifier, config = load_classifier(version)
    X = load_vectors(store, cache_key, split["test"])
    truth, sets = test_truth(split)
    truth = np.asarray(truth)
    labels = [str(c) for c in classifier.classes_]
    inside = truth != BACKGROUND
    keep = compared_rows(split, classes)
    predicted = predict_class(classifier.log_odds(X[inside]), labels)
    right = np.array([p in s for p, s in zip(predicted, [s for s, i in zip(sets, inside, strict=True) if i],
                                             strict=True)], dtype=bool)
    correct = right[keep]
    accuracy = float(np.mean(correct)) if len(correct) else 0.0
    if inside.all():
        return accuracy, None, correct.tolist()
    tags = [labels[i] for i in class_columns(labels)]
    opened = tag_probabilities(classifier.predict_tag_proba(X[~inside]), labels)
    false_rate = float(np.mean((opened >= served_thresholds(config, tags, settings)).any(axis=1)))
    return accuracy, false_rate, correct.tolist()


def current_champion(settings: Settings, client: MlflowClient, candidate_run: Any,
                     labels: tuple[str, ...], exclude: str, store: Storage | None = None) -> Champion | None:
    version = aliases(client, settings.model_name).get(CHAMPION)
    if version is None or version == exclude:
        return None
    return scored_version(settings, client, candidate_run, labels, version, store)


def scored_version(settings: Settings, client: MlflowClient, candidate_run: Any,
                   labels: tuple[str, ...], version: str, store: Storage | None = None) -> Champion:
    """A registered version's figures, re-scored on the candidate's test split (on the images of
    the classes both have, when the label sets differ; else, or when re-scoring fails, its logged
    figures and why). ``store``: an opened storage, used when it is the candidate's dataset (else
    that one is opened)."""
    from pixtag.core.storage import open_storage

    mv = client.get_model_version(settings.model_name, version)
    champ_run = client.get_run(mv.run_id)
    champ_labels, logged = run_labels(champ_run), run_accuracy(champ_run)
    logged_false = run_false_rate(champ_run)
    shared = tuple(sorted(set(champ_labels) & set(labels)))
    if not shared:
        return Champion(version, champ_labels, logged, logged, "logged", "no class in common", logged_false)
    try:
        split = load_split(candidate_run.info.run_id)
        storage = run_storage(candidate_run) or settings.storage
        if store is None or store.uri != storage:
            store = open_storage(storage, settings.s3_endpoint_url)
        key = champ_run.data.tags.get("pixtag.cache_key") or champ_run.data.tags.get("pixtag.backbone", "")
        acc, false_rate, correct = champion_on_split(settings, mv, key, split, store,
                                                     None if champ_labels == labels else shared)
        if not correct:
            raise ValueError(f"the candidate's test split has no image of the shared classes {', '.join(shared)}")
        return Champion(version, champ_labels, acc, logged, "candidate_split",
                        false_suggestion_rate=false_rate, correct=tuple(correct), compared_on=shared)
    except Exception as exc:  # record why, compare with the logged number instead
        note = f"not re-scored: {type(exc).__name__}: {str(exc)[:200]}"
        log.warning("v%s %s", version, note)
        return Champion(version, champ_labels, logged, logged, "logged", note, logged_false)


def past_champions(client: MlflowClient, name: str, labels: tuple[str, ...], exclude: str) -> list[Any]:
    """Versions of this label set that were ever champion (promoted by the gate, approved in
    Airflow, or found as ``@champion`` by a later gate: a move in the MLflow UI counts too)."""
    found = []
    for mv in client.search_model_versions(f"name='{name}'"):
        tags = mv.tags or {}
        if str(mv.version) == exclude or tags.get(TAG + "labels") != ",".join(labels):
            continue
        if tags.get(TAG + "was_champion") == "true" or tags.get(TAG + "decision") == "promoted":
            found.append(mv)
    return found


def best_champion(settings: Settings, client: MlflowClient, candidate_run: Any,
                  labels: tuple[str, ...], champion: Champion | None, exclude: str,
                  store: Storage | None = None) -> Champion | None:
    """The best champion this label set ever had (by its gate-time accuracy), re-scored on the
    candidate's images where possible; ``None`` when that is the current champion or none."""
    past = [mv for mv in past_champions(client, settings.model_name, labels, exclude)
            if champion is None or str(mv.version) != champion.version]
    if not past:
        return None
    top = max(past, key=lambda mv: float((mv.tags or {}).get(TAG + "test_accuracy", 0.0)))
    logged_best = float(top.tags.get(TAG + "test_accuracy", 0.0))
    if champion is not None and logged_best <= champion.logged_accuracy:
        return None
    return scored_version(settings, client, candidate_run, labels, str(top.version), store)


def candidate_figures(run: Any, labels: tuple[str, ...]
                      ) -> tuple[dict[str, float], tuple[bool, ...] | None, tuple[str, ...]]:
    """The candidate's per-class test recall, whether it got each test class image right
    (``None`` for a run logged before predictions were kept), and those images' labels."""
    recalls = {label: float(run.data.metrics[f"recall.{label}"]) for label in labels
               if f"recall.{label}" in run.data.metrics}
    try:
        split = load_split(run.info.run_id)
    except Exception:  # no split.json: no paired test; the reason is recorded
        return recalls, None, ()
    if "test_predictions" not in split:
        return recalls, None, ()
    truth, sets = test_truth(split)
    pred = [str(p) for p in split["test_predictions"]]
    inside = [i for i, t in enumerate(truth) if t != BACKGROUND]
    return (recalls, tuple(pred[i] in sets[i] for i in inside), tuple(truth[i] for i in inside))
