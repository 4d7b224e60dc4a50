"""The tasks' typed results survive the trip through a JSON XCom, refuse shapes they do not
declare, take the domain modules' outputs as they are, and a run resolves ``auto`` once."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pixtag.core.config import load_settings
from pixtag.pipeline import flow
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
    Result,
    Trained,
    Trending,
    Validation,
    Vocabulary,
)

SCRAPED = ClassSummary(label="cat", posts_seen=130, kept=60, downloaded=58, reused=2,
                        dropped={"duplicate_near": 3}, seconds=4.2, api_requests=12, api_rps_max=9.5)
TRAINED = Trained(run_id="r1", model_uri="runs:/r1/model", backbone="efficientnet_lite0", labels=["cat", "dog"],
                  images=120, train_images=96, test_images=24, cv_accuracy=[0.9, 0.95], cv_mean=0.925,
                  cv_var=0.000625, cv_std=0.025, cv_folds=2, test_accuracy=0.96, train_seconds=1.5,
                  dataset_hash="abc", threshold=0.4, false_suggestion_rate=None,
                  compare=Comparison(run_id="c1", backbones={"vgg16": {"cv_accuracy": [0.8], "cv_mean": 0.8,
                                                                       "test_accuracy": 0.8, "weights": "hub"}},
                                     mann_whitney=[{"a": "x", "b": "y", "u": 1.0, "p": 0.5}], paired=[], notes=["n"]),
                  mlflow_run_url="http://mlflow/#/experiments/1/runs/r1", coverage=0.97, suggestion_precision=0.99,
                  precision_at_k=0.33, recall_at_k=1.0, top_k=3, in_class_share=0.15,
                  per_tag={"cat": {"threshold": 0.3, "precision": 1.0, "recall": 0.95, "support": 12},
                           "dog": {"threshold": 0.42, "precision": None, "recall": None, "support": 0}})
DECISION = Decision(model_name="pixtag", version="1", decision="promoted", promoted=True, alias="champion",
                    reason="no champion yet", test_accuracy=0.96, message="pixtag v1 promoted", new_champion=True,
                    model_uri="models:/pixtag/1", comparison={"candidate": {"accuracy": 0.96}, "champion": None,
                                                              "disagreements": []}, backbone="efficientnet_lite0")
EXAMPLES: list[Result] = [
    Trending(run="tags/runs/x.json", posts=500, top={"cat": 40, "dog": 30},
             drift=Drift(key="tags/drift/x.json", new=["car"], vanished=[], top_overlap=0.9, jaccard=0.8)),
    Trending(run=None, posts=0, top={}),
    ClassSelection(classes=["cat", "dog"], rejected={"animal": "hypernym of cat"}, refused={},
                   vocabulary=Vocabulary(added=["dog"], forced=["tabby"]), backbone="efficientnet_lite0"),
    SCRAPED,
    DatasetSummary(out="/store", classes=["cat", "dog"], counts={"cat": 60, "dog": 60}, dropped={"x": 1},
                   images=120, by_class={"cat": SCRAPED}),
    Validation(dataset="/store", success=False, rows=120, excluded=1, classes={"cat": 60}, evaluated=10, passed=9,
               failed=[{"suite": "manifest", "expectation": "e", "description": "d", "column": "label",
                        "unexpected_count": 2, "details": ["x"]}], docs="/store/index.html", cached=True),
    FeatureSummary(backbone="efficientnet_lite0", cache_key="efficientnet_lite0", storage="/store", device="cpu",
                   runtime="onnx", images=60, computed=0, cached=60, seconds=0.1, labels=["cat"]),
    TRAINED,
    DECISION,
    Approval(outcome="not needed", version="1", new_champion=True, message="pixtag v1 promoted"),
    Report(classes=["cat", "dog"], counts={"cat": 60, "dog": 60}, backbone="efficientnet_lite0",
           test_accuracy=0.96, compare=TRAINED.compare, decision=DECISION,
           approval=Approval(outcome="rejected", version="1", by="admin", at="2026-12-03T10:00:00+00:00",
                             note="too few flowers", message="pixtag v1 rejected by admin: too few flowers")),
]


@pytest.mark.parametrize("result", EXAMPLES, ids=lambda r: type(r).__name__)
def test_a_result_round_trips_through_a_json_xcom(result: Result) -> None:
    pushed = json.loads(json.dumps(result.xcom()))  # what the XCom table holds
    assert type(result).model_validate(pushed) == result
    assert type(result).model_validate(pushed).xcom() == pushed


def test_the_keys_the_ui_the_plugin_and_the_summary_read_stay() -> None:
    report = EXAMPLES[-1].xcom()
    assert {"classes", "counts", "backbone", "decision", "test_accuracy", "refused", "dropped", "reused",
            "cv_mean", "cv_std", "cv_folds", "false_suggestion_rate", "abstention_rate"} <= set(report)
    assert {"version", "promoted", "new_champion", "model_uri", "reason", "decision"} <= set(report["decision"])
    assert {"outcome", "approved", "by", "at", "note"} <= set(report["approval"])  # the summary's, announce's
    assert TRAINED.xcom()["mlflow_run_url"] and "model_version_url" in DECISION.xcom()
    assert set(EXAMPLES[2].xcom()) >= {"classes", "vocabulary"} and "top" in EXAMPLES[0].xcom()
    # the per-label scrapes are by_class (per_class is the number of images wanted per class)
    assert "by_class" in EXAMPLES[4].xcom() and "per_class" not in EXAMPLES[4].xcom()


def test_the_report_carries_the_suggestions_figures_and_each_tag() -> None:
    from pixtag.pipeline.flow import report

    selection = ClassSelection(classes=["cat", "dog"])
    done = report(selection, None, TRAINED, DECISION)
    assert (done.coverage, done.suggestion_precision, done.precision_at_k, done.top_k) == (0.97, 0.99, 0.33, 3)
    assert done.per_tag["dog"].threshold == 0.42 and done.per_tag["cat"].support == 12
    assert Report.model_validate(json.loads(json.dumps(done.xcom()))) == done
    assert report(selection, None, None, None).per_tag == {}


def test_the_vocabulary_names_forced_tags_only_when_there_are_some() -> None:
    assert Vocabulary(added=["flower"]).xcom() == {"added": ["flower"], "removed": []}
    assert Vocabulary(forced=["tabby"]).xcom()["forced"] == ["tabby"]
    assert Vocabulary.model_validate({"added": [], "removed": ["dog"]}).forced == []


def test_a_result_refuses_a_shape_it_does_not_declare() -> None:
    with pytest.raises(ValidationError, match="unexpected"):
        ClassSummary.model_validate({**SCRAPED.xcom(), "unexpected": 1})
    with pytest.raises(ValidationError):
        Decision.model_validate({**DECISION.xcom(), "decision": "maybe"})
    with pytest.raises(ValidationError):
        Trending.model_validate({"posts": 1, "top": {}})  # run missing


def test_the_domain_outputs_fit_the_results() -> None:
    from pixtag.data.scrape import ClassSummary
    from pixtag.data.validate import FailedExpectation, ValidationReport
    from pixtag.model.promotion.gate import Champion
    from pixtag.model.promotion.register import _result

    assert ClassSummary(**asdict(ClassSummary("dog", kept=3))).kept == 3
    report = ValidationReport("/s", True, 10, 0, {"cat": 5, "dog": 5}, 4, 4,
                              [FailedExpectation("m", "e", "d", None, None)], "/s/docs/index.html")
    assert Validation.model_validate(report.to_dict()).failed[0].suite == "m"
    champion = Champion("1", ("cat", "dog"), 0.9, 0.91, "candidate_split", correct=(True,))
    gate = _result("pixtag", "2", "challenger", False, "challenger", "better", 0.95, champion)
    decision = Decision.model_validate(gate | {"new_champion": False, "model_uri": "models:/pixtag/2",
                                               "comparison": {"candidate": {}}})
    assert decision.champion is not None and decision.champion.labels == ["cat", "dog"]


def test_a_run_resolves_auto_once_and_carries_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """select_classes resolves ``auto``; the features (one task per label), train and register
    are handed the name through the typed XComs and resolve nothing again."""
    from pixtag.model.backbones import weights as backbones
    from pixtag.model.features import compute as features
    from pixtag.model.promotion import register as registry
    from pixtag.model.training import train

    resolved: list[str] = []

    def resolve_name(backbone: str, weights: Any = None) -> str:
        if backbone == "auto":
            resolved.append(backbone)
            return "efficientnet_lite0"
        return backbone

    monkeypatch.setattr(backbones, "resolve_name", resolve_name)
    monkeypatch.setattr(features, "resolve_name", resolve_name)
    used: dict[str, list[str]] = {"features": [], "train": []}
    opened: list[str] = []
    real_open = RunContext.open.__func__  # type: ignore[attr-defined]

    def open_once(cls: type[RunContext], settings: Any, backbone: str | None = None) -> RunContext:
        opened.append(settings.storage)
        return real_open(cls, settings, backbone)

    def fake_features(settings: Any, *, labels: Any, backbone: str | None = None, store: Any = None) -> dict[str, Any]:
        assert store is not None  # the task's storage, not a reopened one
        name = features.resolve_name(backbone or settings.backbone)  # as the real one does
        used["features"].append(name)
        return FeatureSummary(backbone=name, cache_key=name, storage=store.uri, device="cpu", runtime="onnx",
                              images=1, computed=1, cached=0, seconds=0.0, labels=list(labels)).model_dump()

    def fake_fit(settings: Any, *, backbone: str | None = None, store: Any = None) -> dict[str, Any]:
        assert store is not None
        name = backbones.resolve_name(backbone or settings.backbone)
        used["train"].append(name)
        return TRAINED.model_dump(exclude={"compare", "mlflow_run_url", "cv_std", "cv_folds"}) | {"backbone": name}

    def fake_gate(settings: Any, run_id: str, store: Any = None) -> dict[str, Any]:
        assert store is not None and run_id == "r1"
        return registry._result("pixtag", "1", "promoted", True, "champion", "first", 0.96, None)

    monkeypatch.setattr(RunContext, "open", classmethod(open_once))
    monkeypatch.setattr(features, "features", fake_features)
    monkeypatch.setattr(train, "train", fake_fit)
    monkeypatch.setattr(registry, "register", fake_gate)
    settings = load_settings(storage=str(tmp_path / "store"), classes=["cat", "dog"], backbone="auto",
                             mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    xcom = lambda result: json.loads(json.dumps(result.xcom()))  # noqa: E731

    selection = ClassSelection.model_validate(xcom(flow.select_classes(RunContext.open(settings))))
    assert selection.backbone == "efficientnet_lite0" and resolved == ["auto"]
    for label in selection.classes:  # mapped: one task (and context) per label
        summary = FeatureSummary.model_validate(
            xcom(flow.extract_features(RunContext.open(settings, selection.backbone), label)))
        assert summary.backbone == "efficientnet_lite0"
    trained = Trained.model_validate(xcom(flow.train(RunContext.open(settings, selection.backbone))))
    decision = Decision.model_validate(xcom(flow.register(RunContext.open(settings, trained.backbone), trained)))
    assert resolved == ["auto"]  # once for the whole run
    assert used == {"features": ["efficientnet_lite0"] * 2, "train": ["efficientnet_lite0"]}
    assert decision.backbone == trained.backbone == "efficientnet_lite0" and decision.new_champion
    assert len(opened) == 5  # one storage per task: select, 2 x features, train, register


def test_bare_settings_get_a_context_of_their_own(tmp_path: Path) -> None:
    settings = load_settings(storage=str(tmp_path / "s"), backbone="vgg16")
    run = as_context(settings)
    assert run.settings is settings and run.store.uri.endswith("s") and as_context(run) is run
    assert run.resolve_backbone() == "vgg16" == run.backbone
