"""The retraining flow as plain functions: one per task of the ``pixtag_retrain`` DAG.

Each function takes the run's :class:`~pixtag.core.config.Settings` (built by :func:`run_settings`
from the DAG's Params and its Pixelfed connection) and small inputs, runs one stage through
that stage's own module, and returns a small JSON-able summary: storage URIs, names and
figures, never images, feature vectors or secrets. Nothing here imports Airflow, so the flow
can be run and tested without it; ``dags/pixtag_retrain.py`` only wires these together.

Everything lives under ``settings.storage``: the dataset (manifest, images), the feature
cache, the trending runs and drift reports (``tags/``), the class vocabulary and the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pixtag.core import logs
from pixtag.core.config import Settings, load_settings
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage

log = logs.get_logger(__name__)

VOCABULARY = "tags/vocabulary.json"
# DAG Param name -> settings field (a Param left empty keeps the configured value).
PARAM_FIELDS = {
    "images_per_class": "per_class",
    "backbone": "backbone",
    "accuracy_floor": "accuracy_floor",
    "tolerance": "tolerance",
    "posts_to_sample": "trending_posts",
    "timeline": "timeline",
    "compare_backbones": "compare_backbones",
}


@dataclass(frozen=True)
class DagConfig:
    """What the DAG file needs at parse time (cheap: settings only, no heavy imports)."""

    cadence: str
    model_name: str
    gpu_queue: str
    connection_id: str
    review_timeout_hours: float = 24.0  # the required actions' response timeout
    review_on_timeout: str = "stop"


def dag_config() -> DagConfig:
    settings = load_settings()
    return DagConfig(settings.cadence, settings.model_name, settings.gpu_queue, settings.connection_id,
                     settings.review_timeout_hours, settings.review_on_timeout)


class FlowError(PixtagError):
    """A stage's outcome forbids going on (e.g. no classes, data that failed validation)."""


def run_settings(params: Mapping[str, Any], *, instance_url: str | None = None,
                 token: str | None = None) -> Settings:
    """Settings for one run: configuration + the run's Params + the Pixelfed connection.

    A bad value raises one :class:`SettingsError` naming the field and where it came from (the
    Param, the connection, or the environment/YAML). pixtag's loggers follow ``log_level``.
    """
    overrides = {field: params[name] for name, field in PARAM_FIELDS.items() if params.get(name) not in (None, "")}
    sources = {field: f"DAG Param '{name}'" for name, field in PARAM_FIELDS.items()}
    sources |= {"instance_url": "the Pixelfed connection's host", "token": "the Pixelfed connection's password"}
    settings = load_settings(instance_url=instance_url or None, token=token or None, sources=sources, **overrides)
    logs.set_level(settings.log_level)
    return settings


def _store(settings: Settings) -> Storage:
    return open_storage(settings.storage, settings.s3_endpoint_url)


# --------------------------------------------------------------------------- tags ---------
def refresh_trending(settings: Settings) -> dict[str, Any]:
    """Sample recent posts, store their tag counts, and report the drift since the last run."""
    from pixtag.tags.drift import describe, drift
    from pixtag.tags.trending import remembered_normalizations, trending

    with remembered_normalizations(_store(settings)):
        counts = trending(settings, posts=settings.trending_posts)
    report = drift(settings)
    if report:
        log.info("%s", describe(report))
    top = list(counts.words.items())[:15]
    return {"run": counts.extra.get("key"), "posts": counts.posts, "top": dict(top),
            "drift": {k: report[k] for k in ("key", "new", "vanished", "top_overlap", "jaccard")} if report else None}


def _tag_word(tag: str) -> str:
    from pixtag.tags.trending import normalize

    words = normalize(tag)
    if len(words) != 1:
        raise FlowError(f"tag {tag!r} normalises to {words or 'nothing'}: give one concrete noun, e.g. 'ferret'")
    return words[0]


def update_vocabulary(store: Storage, add: Iterable[str] = (), remove: Iterable[str] = (),
                      force: Iterable[str] = ()) -> dict[str, list[str]]:
    """Apply a run's added/removed tags to the stored vocabulary (they last until undone). A
    forced tag is added and kept without the class checks (``forced``) until removed."""
    vocab = store.read_json(VOCABULARY) if store.exists(VOCABULARY) else {"added": [], "removed": []}
    added, removed = set(vocab.get("added", [])), set(vocab.get("removed", []))
    forced = set(vocab.get("forced", []))
    pushed = {_tag_word(t) for t in force}
    plus, minus = {_tag_word(t) for t in add} | pushed, {_tag_word(t) for t in remove}
    if plus & minus:
        raise FlowError(f"the same tag is both added and removed: {sorted(plus & minus)}")
    added = (added | plus) - minus
    removed = (removed | minus) - plus
    forced = (forced | pushed) - minus
    vocab = {"added": sorted(added), "removed": sorted(removed)}
    if forced:
        vocab["forced"] = sorted(forced)
    if plus or minus:
        store.write_json(VOCABULARY, vocab)
        log.info("class vocabulary: added %s, removed %s, forced %s", vocab["added"], vocab["removed"],
                 vocab.get("forced", []))
    return vocab


SELECTIONS = "tags/selections"


def automatic_selection(store: Storage, words: Mapping[str, int], settings: Settings,
                        add: list[str], force: list[str] | None = None) -> dict[str, Any]:
    """:func:`pixtag.tags.trending.select_classes` on these counts and settings, kept in storage by its
    inputs: the same trending counts give the same classes without loading WordNet again."""
    import hashlib
    import json

    from pixtag.tags.trending import SELECTION_RULES, normalizer_version
    from pixtag.tags.trending import select_classes as choose

    force = sorted({*settings.force_tags, *(force or [])})
    inputs = {"words": dict(words), "max": settings.max_classes, "allow": list(settings.allow_tags),
              "deny": list(settings.deny_tags), "add": add, "rules": normalizer_version(),
              "force": force, "selection": SELECTION_RULES}
    key = f"{SELECTIONS}/{hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()}.json"
    if not store.exists(key):
        selection = choose(words, settings.max_classes, allow=settings.allow_tags, deny=settings.deny_tags, add=add,
                           force=force)
        # rejected as pairs: its order (most frequent first) survives the JSON file
        store.write_json(key, {"classes": list(selection.classes), "rejected": list(selection.rejected.items())})
    stored = store.read_json(key)
    return {"classes": list(stored["classes"]), "rejected": dict(stored["rejected"])}


def select_classes(settings: Settings, add: Iterable[str] = (), remove: Iterable[str] = (),
                   force: Iterable[str] = ()) -> dict[str, Any]:
    """Classes for this run: the automatic selection from the newest trending run (or the
    configured classes), plus the stored vocabulary's added tags, minus its removed ones (the
    vocabulary is updated with this run's Params first and lasts until undone).

    Added tags are checked like any class (:func:`pixtag.tags.trending.check_added`); a refused one is
    left out, with its reason under ``refused`` and in the log. Forced tags skip the checks.
    """
    from pixtag.tags.trending import check_added, latest_run, remembered_normalizations

    store = _store(settings)
    with remembered_normalizations(store):
        vocab = update_vocabulary(store, add, remove, force)
    removed = set(vocab["removed"])
    forced = [*settings.force_tags, *vocab.get("forced", [])]
    if settings.classes:
        extra = [c for c in dict.fromkeys([*settings.add_tags, *vocab["added"]])
                 if c not in removed and c not in settings.classes]
        accepted, refused = check_added(extra, settings.classes, force=forced,
                                        allow=settings.allow_tags) if extra else ({}, {})
        classes = [c for c in dict.fromkeys([*settings.classes, *accepted]) if c not in removed]
        rejected = {c: "removed by a manual trigger (Param remove_tags)" for c in removed} | refused
    else:
        run = latest_run(store)
        if run is None:
            raise FlowError("no trending run stored yet: run `pixtag trending` (the DAG's first task)")
        # A removed tag keeps its place in the ranking and is then left out, so removing one
        # class does not pull another, less frequent tag in behind it.
        selection = automatic_selection(store, run.words, settings, [*settings.add_tags, *vocab["added"]],
                                        vocab.get("forced", []))
        classes = [c for c in selection["classes"] if c not in removed]
        refused = {w: r for w, r in selection["rejected"].items() if r.startswith("added tag refused")
                   and w not in removed}
        rejected = {w: r for w, r in list(selection["rejected"].items())[:40] if w not in removed}
        rejected |= {w: "removed by a manual trigger (Param remove_tags)" for w in removed} | refused
    for word, reason in refused.items():
        log.warning("tag %r is not made a class: %s", word, reason)
    if len(classes) < 2:
        raise FlowError(f"need at least two classes to train a classifier, got {classes}")
    return {"classes": classes, "rejected": rejected, "refused": refused, "vocabulary": vocab}


# --------------------------------------------------------------------------- data ---------
def scrape_class(settings: Settings, label: str, classes: list[str]) -> dict[str, Any]:
    from dataclasses import asdict

    from pixtag.data.scrape import scrape_class as collect
    from pixtag.tags.trending import remembered_normalizations

    with remembered_normalizations(_store(settings)):
        return asdict(collect(settings, label, classes, settings.storage, progress=False))


def scrape_labels(settings: Settings, classes: list[str]) -> list[str]:
    """What the scrape maps over: the classes, then the background (unless turned off).

    First the suggestion ledger is compacted (one object per served request since the last
    run fold into one), once per run and before the scrapes that each read all of it.
    """
    from pixtag.data import ledger
    from pixtag.data.scrape import labels_to_scrape

    merged = ledger.compact(_store(settings))
    if merged:
        log.info("ledger compacted into %s", merged)
    return labels_to_scrape(settings, classes)


def assemble(settings: Settings, classes: list[str]) -> dict[str, Any]:
    from pixtag.data.scrape import assemble as merge

    return merge(settings, classes, settings.storage).to_dict()


def validate(settings: Settings, classes: list[str]) -> dict[str, Any]:
    """Run the Great Expectations suite; raise :class:`FlowError` when the data fails."""
    from pixtag.data.validate import validate as check

    report = check(settings.storage, settings, classes=classes, reuse=True)
    summary = report.to_dict()
    log.info("%s", report.summary())
    if not report.success:
        raise FlowError(f"the dataset failed validation, training stops here:\n{report.summary()}")
    return summary


# --------------------------------------------------------------------------- model --------
def extract_features(settings: Settings, label: str) -> dict[str, Any]:
    from pixtag.model.features import features

    return features(settings, labels=[label])


def mlflow_ui(settings: Settings) -> str | None:
    """Where a person's browser reaches MLflow (links in the Airflow UI and the report)."""
    uri = settings.mlflow_ui_url or settings.mlflow_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def train(settings: Settings) -> dict[str, Any]:
    """Cross-validate, refit and log a candidate; returns its figures and MLflow run."""
    from pixtag.model.train import train as fit

    summary = fit(settings)
    keep = ("run_id", "model_uri", "backbone", "labels", "images", "train_images", "test_images",
            "cv_accuracy", "cv_mean", "cv_var", "test_accuracy", "train_seconds", "dataset_hash", "reused",
            "threshold", "abstention_rate", "false_suggestion_rate", "precision_at_share")
    result = {k: summary[k] for k in keep if k in summary}
    result["cv_std"] = math.sqrt(result.get("cv_var", 0.0))
    result["cv_folds"] = len(result.get("cv_accuracy", []))
    if settings.compare_backbones:
        result["compare"] = compare_backbones(settings, summary["backbone"])
    ui = mlflow_ui(settings)
    if ui:
        from mlflow import MlflowClient

        experiment = MlflowClient(settings.mlflow_uri).get_run(summary["run_id"]).info.experiment_id
        result["mlflow_run_url"] = f"{ui}/#/experiments/{experiment}/runs/{summary['run_id']}"
    return result


def compare_backbones(settings: Settings, backbone: str) -> dict[str, Any]:
    """:func:`pixtag.model.train.compare` of this run's backbone and ``settings.compare_backbones``
    (same folds); returns its MLflow run, the tests and their notes."""
    from pixtag.model.train import compare

    names = list(dict.fromkeys([backbone, *settings.compare_backbones]))
    result = compare(settings, names)
    for note in result["notes"]:
        log.info("compare: %s", note)
    return {"run_id": result["run_id"], "backbones": {k: {m: v[m] for m in ("cv_accuracy", "cv_mean", "test_accuracy",
                                                                           "weights")}
                                                      for k, v in result["backbones"].items()},
            "mann_whitney": result["mann_whitney"], "paired": result["paired"], "notes": result["notes"]}


def register(settings: Settings, run_id: str, reused: bool = False) -> dict[str, Any]:
    """Register the candidate and apply the gate (champion only if accuracy holds).

    ``new_champion`` is false when a reused candidate (nothing new was trained) already was the
    champion: the registry is unchanged and there is nothing to announce.
    """
    from pixtag.model.registry import register as gate

    decision = gate(settings, run_id)
    decision["new_champion"] = bool(decision["promoted"]) and not (reused and decision.get("already_champion"))
    decision["model_uri"] = f"models:/{decision['model_name']}/{decision['version']}"
    ui = mlflow_ui(settings)
    if ui:
        decision["model_version_url"] = f"{ui}/#/models/{decision['model_name']}/versions/{decision['version']}"
    return decision


def report(selection: Mapping[str, Any], dataset: Mapping[str, Any], trained: Mapping[str, Any] | None,
           decision: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a user wants to see after a run."""
    trained = trained or {}
    return {
        "classes": list(selection.get("classes", [])),
        "refused": dict(selection.get("refused", {})),
        "counts": dict(dataset.get("counts", {})),
        "dropped": dict(dataset.get("dropped", {})),
        "backbone": trained.get("backbone"),
        "cv_mean": trained.get("cv_mean"),
        "cv_std": trained.get("cv_std"),
        "cv_folds": trained.get("cv_folds"),
        "test_accuracy": trained.get("test_accuracy"),
        "false_suggestion_rate": trained.get("false_suggestion_rate"),
        "abstention_rate": trained.get("abstention_rate"),
        "reused": bool(trained.get("reused")),
        "mlflow_run_url": trained.get("mlflow_run_url"),
        "compare": trained.get("compare"),
        "decision": dict(decision) if decision else None,
    }
