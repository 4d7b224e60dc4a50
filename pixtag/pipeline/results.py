"""The typed results of the ``pixtag_retrain`` tasks: what each function of
:mod:`pixtag.pipeline.flow` returns and what its task pushes as its one XCom.

A task pushes ``result.model_dump(mode="json")`` (XComs stay plain JSON) and the task that
reads it rebuilds the object with ``Model.model_validate(xcom)``. Every model refuses keys it
does not declare (``extra="forbid"``), so a result that changes shape fails at the task that
made it, not in a later task, the Airflow plugin's links or ``pixtag local run``'s summary.

Names the UI test, the plugin's buttons and the run summary read are part of the contract:
``Trending.top``, ``ClassSelection.classes`` / ``.vocabulary``, ``Trained.mlflow_run_url``,
``Decision.model_version_url``, ``Approval.approved`` (announce_champion), ``Report.classes`` /
``.counts`` / ``.backbone`` / ``.decision`` / ``.approval`` / ``.test_accuracy``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer


class Result(BaseModel):
    """A task's result: JSON-able, declared field by field."""

    model_config = ConfigDict(extra="forbid")

    def xcom(self) -> dict[str, Any]:
        """What the task pushes (one XCom, plain JSON)."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- tags ---------
class Drift(Result):
    """How the newest trending run differs from the one before (:func:`pixtag.tags.drift.drift`)."""

    key: str | None = None  # where the drift report is stored
    new: list[str] = Field(default_factory=list)
    vanished: list[str] = Field(default_factory=list)
    top_overlap: float
    jaccard: float


class Trending(Result):
    """``refresh_trending``: the stored trending run, its top words and the drift."""

    run: str | None  # the run's key under tags/runs/
    posts: int
    top: dict[str, int]  # the 15 most frequent normalised words, most frequent first
    drift: Drift | None = None  # None: fewer than two runs stored


class Vocabulary(Result):
    """The classes a person added, removed, forced or confirmed (a word WordNet lacks) through
    the Params (they last until undone)."""

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    forced: list[str] = Field(default_factory=list)
    confirmed: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _no_empty_lists(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("forced", "confirmed"):  # as stored in tags/vocabulary.json: only when any
            if not data.get(key):
                data.pop(key, None)
        return data


class ClassSelection(Result):
    """``select_classes``: what this run trains, its classes and its backbone.

    ``backbone`` is the run's backbone with ``auto`` resolved (once, here); extract_features,
    train and register use this name, so every task of a run uses the same backbone.
    """

    classes: list[str]
    rejected: dict[str, str] = Field(default_factory=dict)  # word -> why it is not a class
    refused: dict[str, str] = Field(default_factory=dict)  # added tags refused by the class checks
    notes: dict[str, str] = Field(default_factory=dict)  # word -> what a person should know (made room, WordNet)
    vocabulary: Vocabulary = Field(default_factory=Vocabulary)
    backbone: str | None = None


# --------------------------------------------------------------------------- data ---------
class ClassSummary(Result):
    """``scrape`` (one per label): what collecting one class did (:class:`pixtag.data.scrape.ClassSummary`)."""

    label: str
    posts_seen: int = 0
    kept: int = 0
    downloaded: int = 0
    reused: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)  # reason -> images
    seconds: float = 0.0
    api_requests: int = 0
    api_rps_max: float = 0.0


class DatasetSummary(Result):
    """``assemble``: the merged dataset (manifest and dropped rows) and each label's scrape.

    ``classes`` are the classes this run trains: the selected ones minus ``left_out`` (class ->
    why: too few images for ``min_per_class`` or beside the largest class, ``balance_ratio``).
    """

    out: str  # the dataset's storage URI
    classes: list[str]
    counts: dict[str, int]  # label -> images in the manifest
    dropped: dict[str, int]  # reason -> rows dropped
    images: int
    by_class: dict[str, ClassSummary] = Field(default_factory=dict)  # label -> its scrape
    left_out: dict[str, str] = Field(default_factory=dict)  # selected classes this run does not train, and why

    @property
    def labels(self) -> list[str]:
        """The labels this run trains on: its classes, then the background (if collected)."""
        return list(self.counts)


class FailedCheck(Result):
    """One failed Great Expectations expectation (:class:`pixtag.data.validate.FailedExpectation`)."""

    suite: str
    expectation: str
    description: str
    column: str | None = None
    unexpected_count: int | None = None
    details: list[str] = Field(default_factory=list)


class Validation(Result):
    """``validate``: the verdict on the dataset (:class:`pixtag.data.validate.ValidationReport`)."""

    dataset: str
    success: bool
    rows: int
    excluded: int
    classes: dict[str, int]
    evaluated: int
    passed: int
    failed: list[FailedCheck] = Field(default_factory=list)
    docs: str | None = None
    cached: bool = False


# --------------------------------------------------------------------------- model --------
class FeatureSummary(Result):
    """``extract_features`` (one per label): features computed or found in the cache."""

    backbone: str
    cache_key: str
    storage: str
    device: str
    runtime: str
    images: int
    computed: int
    cached: int
    seconds: float
    shards_written: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)


class BackboneScore(Result):
    cv_accuracy: list[float]
    cv_mean: float
    test_accuracy: float
    weights: str


class Comparison(Result):
    """The run's backbone beside ``settings.compare_backbones`` on the same folds."""

    run_id: str
    backbones: dict[str, BackboneScore]
    mann_whitney: list[dict[str, Any]]
    paired: list[dict[str, Any]]
    notes: list[str]


class TagFigures(Result):
    """One tag of a candidate: its threshold and its test figures at it (precision over every
    test image, background included; recall; support: test images that carry it)."""

    threshold: float
    precision: float | None = None
    recall: float | None = None
    support: int = 0


class SuggestionFigures(Result):
    """The suggestions on a candidate's test part, each tag at its own threshold
    (``openset.suggestion_metrics``): a candidate's (:class:`Trained`) and its run's report's."""

    abstention_rate: float | None = None
    false_suggestion_rate: float | None = None
    precision_at_share: float | None = None
    coverage: float | None = None
    suggestion_precision: float | None = None
    precision_at_k: float | None = None
    recall_at_k: float | None = None
    top_k: int | None = None
    in_class_share: float | None = None
    per_tag: dict[str, TagFigures] = Field(default_factory=dict)


class Trained(SuggestionFigures):
    """``train``: the candidate's figures and its MLflow run (not yet registered)."""

    run_id: str
    model_uri: str | None
    backbone: str
    labels: list[str]
    images: int
    train_images: int
    test_images: int
    cv_accuracy: list[float]
    cv_mean: float
    cv_var: float
    cv_std: float
    cv_folds: int
    test_accuracy: float
    train_seconds: float
    dataset_hash: str
    reused: bool = False
    threshold: float | None = None  # the one threshold of the old rule (for comparison); thresholds serve
    compare: Comparison | None = None
    mlflow_run_url: str | None = None  # the plugin's "MLflow run" button


class ChampionScore(Result):
    """The champion the candidate was compared with (:class:`pixtag.model.promotion.gate.Champion`)."""

    version: str
    labels: list[str]
    accuracy: float
    logged_accuracy: float
    scored_on: str
    note: str = ""
    false_suggestion_rate: float | None = None
    compared_on: list[str] = Field(default_factory=list)  # classes whose test images it was re-scored on


class Decision(Result):
    """``register``: the gate's decision on the candidate (:func:`pixtag.model.promotion.register.register`)."""

    model_name: str
    version: str
    decision: Literal["promoted", "challenger", "rejected"]
    promoted: bool
    alias: str | None = None
    reason: str
    test_accuracy: float
    champion: ChampionScore | None = None
    message: str
    already_champion: bool = False
    comparison: dict[str, Any] | None = None  # candidate beside champion, for the approval
    new_champion: bool = False  # False for a reused candidate that already was the champion
    model_uri: str
    model_version_url: str | None = None  # the plugin's "Model version" button
    backbone: str | None = None  # the run's backbone, carried from train


class Approval(Result):
    """``approve_promotion``: what became of the gate's decision with ``promotion: human``.

    ``outcome``: ``approved`` / ``rejected`` (a person answered; ``by``, ``at``, ``note``),
    ``timed out`` (nobody answered in time: the candidate stays ``@challenger``), or ``not needed``
    (the gate promoted or rejected the candidate itself, or promotion is ``auto``).
    """

    outcome: Literal["approved", "rejected", "timed out", "not needed"]
    approved: bool = False  # a person moved @champion (announce_champion reads it)
    version: str | None = None
    by: str | None = None  # the Airflow user who answered
    at: str | None = None  # when they answered (ISO 8601, UTC)
    note: str = ""  # the approval's Note: why, on a rejection
    new_champion: bool = False
    message: str = ""


class Report(SuggestionFigures):
    """``report``: what a person wants to see after a run (``pixtag local run`` prints it)."""

    classes: list[str]
    refused: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)
    backbone: str | None = None
    cv_mean: float | None = None
    cv_std: float | None = None
    cv_folds: int | None = None
    test_accuracy: float | None = None
    reused: bool = False
    mlflow_run_url: str | None = None
    compare: Comparison | None = None
    decision: Decision | None = None
    left_out: dict[str, str] = Field(default_factory=dict)  # selected classes not trained this run, and why
    notes: dict[str, str] = Field(default_factory=dict)  # the class selection's notes (made room, WordNet)
    rejected: dict[str, str] = Field(default_factory=dict)  # the candidates that are not classes, and why
    approval: Approval | None = None  # with promotion: human, the person's answer (or none)


__all__ = [
    "Approval",
    "BackboneScore",
    "ChampionScore",
    "ClassSelection",
    "ClassSummary",
    "Comparison",
    "DatasetSummary",
    "Decision",
    "Drift",
    "FailedCheck",
    "FeatureSummary",
    "Report",
    "Result",
    "SuggestionFigures",
    "TagFigures",
    "Trained",
    "Trending",
    "Validation",
    "Vocabulary",
]
