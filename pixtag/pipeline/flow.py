"""The retraining flow as plain functions: one per task of the ``pixtag_retrain`` DAG.

Each function takes the task's :class:`~pixtag.pipeline.context.RunContext` (the run's settings,
built by :func:`run_settings` from the DAG's Params and its Pixelfed connection, the storage
opened once, the run's resolved backbone; bare settings are accepted too) and small inputs,
runs one stage through that stage's own module, and returns a typed result
(:mod:`pixtag.pipeline.results`): storage URIs, names and figures, never images, feature
vectors or secrets. Nothing here imports Airflow, so the flow
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
from pixtag.core.storage import Storage
from pixtag.pipeline.context import RunContext, as_context
from pixtag.pipeline.results import (
    ClassSelection,
    Comparison,
    DatasetSummary,
    Decision,
    Drift,
    FeatureSummary,
    Report,
    ScrapeSummary,
    Trained,
    Trending,
    Validation,
    Vocabulary,
)

log = logs.get_logger(__name__)

# DAG Param name -> settings field (a Param left empty keeps the configured value).
PARAM_FIELDS = {
    "per_class": "per_class",
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


# --------------------------------------------------------------------------- tags ---------
def refresh_trending(run: RunContext | Settings) -> Trending:
    """Sample recent posts, store their tag counts, and report the drift since the last run."""
    from pixtag.tags.drift import describe, drift
    from pixtag.tags.normalize import remembered_normalizations
    from pixtag.tags.trending import trending

    run = as_context(run)
    with remembered_normalizations(run.store):
        counts = trending(run.settings, posts=run.settings.trending_posts, store=run.store)
    report = drift(run.settings, store=run.store)
    if report:
        log.info("%s", describe(report))
    top = list(counts.words.items())[:15]
    return Trending(run=counts.extra.get("key"), posts=counts.posts, top=dict(top),
                    drift=Drift(**{k: report[k] for k in ("key", "new", "vanished", "top_overlap", "jaccard")})
                    if report else None)


def _tag_word(tag: str) -> str:
    from pixtag.tags.normalize import normalize

    words = normalize(tag)
    if len(words) != 1:
        raise FlowError(f"tag {tag!r} normalises to {words or 'nothing'}: give one concrete noun, e.g. 'ferret'")
    return words[0]


def update_vocabulary(store: Storage, add: Iterable[str] = (), remove: Iterable[str] = (),
                      force: Iterable[str] = ()) -> dict[str, list[str]]:
    """Apply a run's added/removed tags to the stored vocabulary (they last until undone). A
    forced tag is added and kept without the class checks (``forced``) until removed."""
    from pixtag.tags.select import VOCABULARY

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




def select_classes(run: RunContext | Settings, add: Iterable[str] = (), remove: Iterable[str] = (),
                   force: Iterable[str] = ()) -> ClassSelection:
    """Classes for this run: the automatic selection from the newest trending run (or the
    configured classes), plus the stored vocabulary's added tags, minus its removed ones (the
    vocabulary is updated with this run's Params first and lasts until undone).

    Added tags are checked like any class (:func:`pixtag.tags.select.check_added`); a refused one is
    left out, with its reason under ``refused`` and in the log. Forced tags skip the checks.

    The run's backbone is settled here too, once for the run (``auto`` resolved): the later
    tasks read it from this result.
    """
    from pixtag.tags.normalize import remembered_normalizations
    from pixtag.tags.select import automatic_selection, check_added
    from pixtag.tags.trending import latest_run

    run = as_context(run)
    settings, store = run.settings, run.store
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
        counts = latest_run(store)
        if counts is None:
            raise FlowError("no trending run stored yet: run `pixtag trending` (the DAG's first task)")
        # A removed tag keeps its place in the ranking and is then left out, so removing one
        # class does not pull another, less frequent tag in behind it.
        selection = automatic_selection(store, counts.words, settings, [*settings.add_tags, *vocab["added"]],
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
    return ClassSelection(classes=classes, rejected=rejected, refused=refused, vocabulary=Vocabulary(**vocab),
                          backbone=run.resolve_backbone())


# --------------------------------------------------------------------------- data ---------
def scrape_class(run: RunContext | Settings, label: str, classes: list[str]) -> ScrapeSummary:
    from dataclasses import asdict

    from pixtag.data.scrape import scrape_class as collect
    from pixtag.tags.normalize import remembered_normalizations

    run = as_context(run)
    with remembered_normalizations(run.store):
        summary = collect(run.settings, label, classes, run.settings.storage, progress=False, store=run.store)
    return ScrapeSummary(**asdict(summary))


def scrape_labels(run: RunContext | Settings, classes: list[str]) -> list[str]:
    """What the scrape maps over: the classes, then the background (unless turned off).

    First the suggestion ledger is compacted (one object per served request since the last
    run fold into one), once per run and before the scrapes that each read all of it.
    """
    from pixtag.data import ledger
    from pixtag.data.scrape import labels_to_scrape

    run = as_context(run)
    merged = ledger.compact(run.store)
    if merged:
        log.info("ledger compacted into %s", merged)
    return labels_to_scrape(run.settings, classes)


def assemble(run: RunContext | Settings, classes: list[str],
             scraped: Iterable[ScrapeSummary] = ()) -> DatasetSummary:
    """Merge the scraped parts into the dataset; ``by_class`` keeps each label's scrape."""
    from pixtag.data.scrape import assemble as merge

    run = as_context(run)
    merged = merge(run.settings, classes, run.settings.storage, store=run.store)
    return DatasetSummary(out=merged.out, classes=merged.classes, counts=merged.counts, dropped=merged.dropped,
                          images=merged.images, by_class={s.label: s for s in scraped})


def validate(run: RunContext | Settings, classes: list[str]) -> Validation:
    """Run the Great Expectations suite; raise :class:`FlowError` when the data fails."""
    from pixtag.data.validate import validate as check

    run = as_context(run)
    report = check(run.settings.storage, run.settings, classes=classes, reuse=True, store=run.store)
    log.info("%s", report.summary())
    if not report.success:
        raise FlowError(f"the dataset failed validation, training stops here:\n{report.summary()}")
    return Validation.model_validate(report.to_dict())


# --------------------------------------------------------------------------- model --------
def extract_features(run: RunContext | Settings, label: str) -> FeatureSummary:
    """Features of one label's images with the run's backbone (``run.backbone``: carried from
    ``select_classes``; resolved here only outside a run)."""
    from pixtag.model.features.compute import features

    run = as_context(run)
    return FeatureSummary.model_validate(features(run.settings, labels=[label], backbone=run.resolve_backbone(),
                                                  store=run.store))


def mlflow_ui(settings: Settings) -> str | None:
    """Where a person's browser reaches MLflow (links in the Airflow UI and the report)."""
    uri = settings.mlflow_ui_url or settings.mlflow_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


TRAINED_KEYS = ("run_id", "model_uri", "backbone", "labels", "images", "train_images", "test_images",
                "cv_accuracy", "cv_mean", "cv_var", "test_accuracy", "train_seconds", "dataset_hash", "reused",
                "threshold", "abstention_rate", "false_suggestion_rate", "precision_at_share", "coverage",
                "suggestion_precision", "precision_at_k", "recall_at_k", "top_k", "in_class_share", "per_tag")


def train(run: RunContext | Settings) -> Trained:
    """Cross-validate, refit and log a candidate with the run's backbone; returns its figures
    and MLflow run."""
    from pixtag.model.training.train import train as fit

    run = as_context(run)
    settings, backbone = run.settings, run.resolve_backbone()
    summary = fit(settings, backbone=backbone, store=run.store)
    result = {k: summary[k] for k in TRAINED_KEYS if k in summary}
    result["cv_std"] = math.sqrt(result.get("cv_var", 0.0))
    result["cv_folds"] = len(result.get("cv_accuracy", []))
    if settings.compare_backbones:
        result["compare"] = compare_backbones(run, summary["backbone"])
    ui = mlflow_ui(settings)
    if ui:
        from pixtag.model.tracking import connect

        experiment = connect(settings).get_run(summary["run_id"]).info.experiment_id
        result["mlflow_run_url"] = f"{ui}/#/experiments/{experiment}/runs/{summary['run_id']}"
    return Trained.model_validate(result)


def compare_backbones(run: RunContext | Settings, backbone: str) -> Comparison:
    """:func:`pixtag.model.training.train.compare` of this run's backbone and ``settings.compare_backbones``
    (same folds); returns its MLflow run, the tests and their notes."""
    from pixtag.model.training.train import compare

    run = as_context(run)
    names = list(dict.fromkeys([backbone, *run.settings.compare_backbones]))
    result = compare(run.settings, names, store=run.store)
    for note in result["notes"]:
        log.info("compare: %s", note)
    return Comparison(run_id=result["run_id"],
                      backbones={k: {m: v[m] for m in ("cv_accuracy", "cv_mean", "test_accuracy", "weights")}
                                 for k, v in result["backbones"].items()},
                      mann_whitney=result["mann_whitney"], paired=result["paired"], notes=result["notes"])


def register(run: RunContext | Settings, trained: Trained) -> Decision:
    """Register the candidate and apply the gate (champion only if accuracy holds).

    ``new_champion`` is false when a reused candidate (nothing new was trained) already was the
    champion: the registry is unchanged and there is nothing to announce.
    """
    from pixtag.model.promotion.register import register as gate

    run = as_context(run)
    decision = gate(run.settings, trained.run_id, store=run.store)
    decision["new_champion"] = bool(decision["promoted"]) and not (trained.reused and decision.get("already_champion"))
    decision["model_uri"] = f"models:/{decision['model_name']}/{decision['version']}"
    decision["backbone"] = trained.backbone
    ui = mlflow_ui(run.settings)
    if ui:
        decision["model_version_url"] = f"{ui}/#/models/{decision['model_name']}/versions/{decision['version']}"
    return Decision.model_validate(decision)


def report(selection: ClassSelection, dataset: DatasetSummary | None, trained: Trained | None,
           decision: Decision | None) -> Report:
    """What a user wants to see after a run."""
    return Report(
        classes=list(selection.classes), refused=dict(selection.refused),
        counts=dict(dataset.counts) if dataset else {}, dropped=dict(dataset.dropped) if dataset else {},
        backbone=trained.backbone if trained else None,
        cv_mean=trained.cv_mean if trained else None,
        cv_std=trained.cv_std if trained else None,
        cv_folds=trained.cv_folds if trained else None,
        test_accuracy=trained.test_accuracy if trained else None,
        false_suggestion_rate=trained.false_suggestion_rate if trained else None,
        abstention_rate=trained.abstention_rate if trained else None,
        **({k: getattr(trained, k) for k in ("coverage", "suggestion_precision", "precision_at_share", "precision_at_k",
                                             "recall_at_k", "top_k", "in_class_share", "per_tag")} if trained else {}),
        reused=bool(trained and trained.reused),
        mlflow_run_url=trained.mlflow_run_url if trained else None,
        compare=trained.compare if trained else None,
        decision=decision,
    )
