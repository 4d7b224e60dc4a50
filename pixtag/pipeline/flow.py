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
    Approval,
    ClassSelection,
    ClassSummary,
    Comparison,
    DatasetSummary,
    Decision,
    Drift,
    FeatureSummary,
    Report,
    SuggestionFigures,
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
    "max_classes": "max_classes",
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
                      force: Iterable[str] = (), confirm: Iterable[str] = ()) -> dict[str, list[str]]:
    """Apply a run's added/removed tags to the stored vocabulary (they last until undone). A
    forced tag is added and kept without the class checks (``forced``) until removed. A
    confirmed word (``confirmed``) is one WordNet lacks that a person vouches for as a concrete,
    visual class: it then competes like any candidate (and an added one passes); it lasts until removed."""
    from pixtag.tags.select import VOCABULARY, read_vocabulary

    vocab = read_vocabulary(store)
    added, removed = set(vocab["added"]), set(vocab["removed"])
    forced, confirmed = set(vocab["forced"]), set(vocab["confirmed"])
    pushed, vouched = {_tag_word(t) for t in force}, {_tag_word(t) for t in confirm}
    plus, minus = {_tag_word(t) for t in add} | pushed, {_tag_word(t) for t in remove}
    if (plus | vouched) & minus:
        raise FlowError(f"the same tag is both added (or confirmed) and removed: {sorted((plus | vouched) & minus)}")
    added = (added | plus) - minus
    removed = (removed | minus) - plus
    forced = (forced | pushed) - minus
    confirmed = (confirmed | vouched) - minus
    vocab = {"added": sorted(added), "removed": sorted(removed)}
    if forced:
        vocab["forced"] = sorted(forced)
    if confirmed:
        vocab["confirmed"] = sorted(confirmed)
    if plus or minus or vouched:
        store.write_json(VOCABULARY, vocab)
        log.info("class vocabulary: added %s, removed %s, forced %s, confirmed %s", vocab["added"],
                 vocab["removed"], vocab.get("forced", []), vocab.get("confirmed", []))
    return vocab


def select_classes(run: RunContext | Settings, add: Iterable[str] = (), remove: Iterable[str] = (),
                   force: Iterable[str] = (), confirm: Iterable[str] = ()) -> ClassSelection:
    """Classes for this run through :func:`pixtag.tags.select.choose_classes` (the path ``pixtag
    classes --auto`` takes too): the automatic selection from the newest trending run (or the
    configured classes) with the stored vocabulary, which this run's Params update first (they
    last until undone): added tags add classes, removed ones are left out, confirmed words
    WordNet lacks compete like any candidate.

    Added tags are checked like any class (:func:`pixtag.tags.select.check_added`); a refused one is
    left out, with its reason under ``refused`` and in the log. Forced tags skip the checks.
    ``notes`` says what a person should know: the classes that made room for added tags, the
    words WordNet lacks (confirmed, or to confirm).

    The run's backbone is settled here too, once for the run (``auto`` resolved): the later
    tasks read it from this result.
    """
    from pixtag.tags.normalize import TagsError, remembered_normalizations
    from pixtag.tags.select import REMOVED, TOO_FEW_BEFORE, choose_classes

    run = as_context(run)
    with remembered_normalizations(run.store):
        vocab = update_vocabulary(run.store, add, remove, force, confirm)
    try:
        selection = choose_classes(run.settings, run.store)
    except TagsError as exc:
        raise FlowError(f"{exc} (the DAG's first task, refresh_trending, stores one)") from None
    refused = {w: r for w, r in selection.rejected.items() if r.startswith("added tag refused")}
    rejected = {w: r for w, r in list(selection.rejected.items())[:40] if r != REMOVED}
    rejected |= {w: r for w, r in selection.rejected.items() if r == REMOVED or w in selection.notes} | refused
    for word, reason in refused.items():
        log.warning("tag %r is not made a class: %s", word, reason)
    for word, note in selection.notes.items():
        log.info("%s: %s", word, note)
    for word, reason in selection.rejected.items():
        if reason.startswith(TOO_FEW_BEFORE):
            log.info("%s: %s", word, reason)
    classes = selection.classes
    if len(classes) < 2:
        raise FlowError(f"need at least two classes to train a classifier, got {classes}")
    return ClassSelection(classes=classes, rejected=rejected, refused=refused, notes=selection.notes,
                          vocabulary=Vocabulary(**vocab), backbone=run.resolve_backbone())


# --------------------------------------------------------------------------- data ---------
def scrape_class(run: RunContext | Settings, label: str, classes: list[str]) -> ClassSummary:
    from dataclasses import asdict

    from pixtag.data.scrape import scrape_class as collect
    from pixtag.tags.normalize import remembered_normalizations

    run = as_context(run)
    with remembered_normalizations(run.store):
        summary = collect(run.settings, label, classes, run.settings.storage, progress=False, store=run.store)
    return ClassSummary(**asdict(summary))


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
             scraped: Iterable[ClassSummary] = ()) -> DatasetSummary:
    """Merge the scraped parts into the dataset; ``by_class`` keeps each label's scrape.

    A class whose images are too few (``min_per_class``, ``balance_ratio``) is left out of this
    run (``left_out``, with its count and the minimum) and the others go on; fewer than two
    classes left stops the run (:class:`FlowError`). The classes left out are remembered
    (:func:`pixtag.tags.select.remember_left_out`): the automatic selection does not pick them
    again until more posts carry them."""
    from pixtag.data.scrape import assemble as merge
    from pixtag.tags.select import remember_left_out

    run = as_context(run)
    merged = merge(run.settings, classes, run.settings.storage, store=run.store)
    remember_left_out(run.store, merged.left_out, merged.classes)
    if merged.left_out and len(merged.classes) < 2:
        from pixtag.data.scrape import left_out_line

        raise FlowError(f"{left_out_line(merged.left_out)}; {len(merged.classes)} class(es) left "
                        f"({', '.join(merged.classes) or 'none'}): a classifier needs two")
    return DatasetSummary(out=merged.out, classes=merged.classes, counts=merged.counts, dropped=merged.dropped,
                          images=merged.images, by_class={s.label: s for s in scraped}, left_out=merged.left_out)


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
           decision: Decision | None, approval: Approval | None = None) -> Report:
    """What a user wants to see after a run; ``approval``: what became of the gate's decision
    (with ``promotion: human``, the person's answer: approved or rejected, by whom, when, why)."""
    return Report(
        classes=list(selection.classes), refused=dict(selection.refused),
        counts=dict(dataset.counts) if dataset else {}, dropped=dict(dataset.dropped) if dataset else {},
        backbone=trained.backbone if trained else None,
        cv_mean=trained.cv_mean if trained else None,
        cv_std=trained.cv_std if trained else None,
        cv_folds=trained.cv_folds if trained else None,
        test_accuracy=trained.test_accuracy if trained else None,
        **({k: getattr(trained, k) for k in SuggestionFigures.model_fields} if trained else {}),
        reused=bool(trained and trained.reused),
        mlflow_run_url=trained.mlflow_run_url if trained else None,
        compare=trained.compare if trained else None,
        decision=decision,
        left_out=dict(dataset.left_out) if dataset else {},
        notes=dict(selection.notes),
        rejected=dict(selection.rejected),
        approval=approval,
    )
