"""The promotion gate: floor, tolerance against the champion on the same split, label-set
changes, human promotion, and no promotion when MLflow fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.core.storage import open_storage
from pixtag.model.backbones.weights import LITE0
from pixtag.model.promotion import approval, rescoring, versions
from pixtag.model.promotion import register as register_module
from pixtag.model.promotion.gate import Champion, GateError, decide, mcnemar
from pixtag.model.promotion.register import register
from pixtag.model.training.train import train
from tests.helpers import make_dataset, random_weights, shared_dataset

LABELS = ("bird", "car", "cat", "dog", "flower")
TINY = "mobilenetv3_small_050"


# --- the pure gate ---------------------------------------------------------------------------
def champ(accuracy: float, labels: tuple[str, ...] = LABELS, scored_on: str = "candidate_split",
          note: str = "") -> Champion:
    return Champion("3", labels, accuracy, 0.99, scored_on, note)


def test_below_the_floor_is_never_promoted() -> None:
    d = decide(0.89, LABELS, None, 0.9, 0.02)
    assert not d.passed and "below the floor 0.9000" in d.reason
    assert not decide(0.89, LABELS, champ(0.5), 0.9, 0.02).passed


def test_first_model_needs_only_the_floor() -> None:
    d = decide(0.91, LABELS, None, 0.9, 0.02)
    assert d.passed and "no champion yet" in d.reason


def test_tolerance_against_the_champion_on_the_same_split() -> None:
    assert decide(0.96, LABELS, champ(0.97), 0.9, 0.02).passed
    d = decide(0.94, LABELS, champ(0.97), 0.9, 0.02)
    assert not d.passed and "champion v3 0.9700 (on the candidate's test split)" in d.reason
    logged = decide(0.94, LABELS, champ(0.97, scored_on="logged", note="not re-scored: x"), 0.9,
                    0.02)
    assert "logged (not re-scored: x)" in logged.reason


def test_only_a_champion_with_no_class_in_common_is_a_new_baseline() -> None:
    d = decide(0.91, ("fox", "owl"), champ(0.99), 0.9, 0.02)
    assert d.passed and "no class in common with champion v3" in d.reason and "new baseline" in d.reason


def test_a_class_removed_leaves_the_gate_comparing_on_the_shared_classes() -> None:
    """The champion knew five classes, the candidate three of them: both are compared on those
    three's test images (the old gate called it a new baseline and checked the floor only)."""
    three = ("car", "cat", "dog")
    champion = Champion("3", LABELS, 0.97, 0.99, "candidate_split", compared_on=three)
    worse = decide(0.96, three, champion, 0.9, 0.02, shared_accuracy=0.93)
    assert not worse.passed
    assert "classes changed since champion v3 (added: none; removed: bird, flower)" in worse.reason
    assert "compared on the 3 classes both have" in worse.reason
    assert "test accuracy on the shared classes 0.9300 is below champion v3 0.9700" in worse.reason
    paired = mcnemar([True] * 40 + [False] * 10, [True] * 50)  # the champion wins 10 of the shared images
    refused = decide(0.97, three, champion, 0.9, 0.02, paired=paired, shared_accuracy=0.96)
    assert not refused.passed and "significantly worse than the champion" in refused.reason
    assert decide(0.97, three, champion, 0.9, 0.02, shared_accuracy=0.96).passed


def test_a_class_added_is_gated_like_the_others() -> None:
    """A class a person added (through the trigger form) needs the recall floor; the classes the
    champion knew are compared with it on their test images."""
    five = (*LABELS, "fox")
    champion = Champion("3", LABELS, 0.97, 0.99, "candidate_split", compared_on=LABELS)
    recalls = dict.fromkeys(five, 0.95) | {"fox": 0.5}
    d = decide(0.95, five, champion, 0.9, 0.02, recalls=recalls, recall_floor=0.7, shared_accuracy=0.97)
    assert not d.passed and "recall below the per-class floor 0.70: fox 0.50 (new class)" in d.reason
    assert "(added: fox; removed: none)" in d.reason
    good = decide(0.95, five, champion, 0.9, 0.02, recalls=dict.fromkeys(five, 0.9), recall_floor=0.7,
                  shared_accuracy=0.965)
    assert good.passed and "new classes reach the recall floor 0.70: fox 0.90" in good.reason
    assert "test accuracy on the shared classes 0.9650 >= champion v3 0.9700" in good.reason
    # a candidate better on its own, but worse on the classes the champion knew, is refused
    assert not decide(0.99, five, champion, 0.9, 0.02, shared_accuracy=0.94).passed


def test_exact_mcnemar_matches_the_binomial_test() -> None:
    from scipy.stats import binomtest

    cand = [True] * 80 + [False] * 9 + [True] * 2 + [False] * 9
    champion = [True] * 80 + [True] * 9 + [False] * 2 + [False] * 9
    paired = mcnemar(cand, champion)
    assert (paired.images, paired.candidate_only, paired.champion_only) == (100, 2, 9)
    assert paired.p_worse == pytest.approx(binomtest(9, 11, 0.5, alternative="greater").pvalue)
    assert mcnemar([True, False], [True, False]).p_worse == 1.0
    with pytest.raises(GateError, match="not the same images"):
        mcnemar([True], [True, False])


def test_significantly_worse_on_the_same_images_is_refused_within_the_tolerance() -> None:
    # 0.955 vs 0.97 on 1000 images is within the tolerance of 0.02, but the candidate loses 25
    # images the champion gets and wins 10: the paired test says it is worse.
    cand = [True] * 945 + [False] * 25 + [True] * 10 + [False] * 20
    champion = [True] * 945 + [True] * 25 + [False] * 10 + [False] * 20
    paired = mcnemar(cand, champion)
    d = decide(0.955, LABELS, champ(0.97), 0.9, 0.02, paired=paired, confidence=0.95)
    assert not d.passed and "significantly worse than the champion at 95% confidence" in d.reason
    assert f"p = {paired.p_worse:.4f}" in d.reason and paired.p_worse < 0.05
    # a few discordant images either way are no evidence
    even = mcnemar([True] * 4 + [False] * 3, [False] * 4 + [True] * 3)
    assert decide(0.96, LABELS, champ(0.97), 0.9, 0.02, paired=even).passed


def test_the_ratchet_is_refused() -> None:
    """Each candidate is 0.015 below the last champion, within the tolerance of 0.02: the old
    gate promoted all five (0.075 lost); the reference never drifts below the best champion."""
    best, champion, promoted = None, champ(0.97), []
    for step in range(1, 6):
        accuracy = round(0.97 - 0.015 * step, 3)
        old = decide(accuracy, LABELS, Champion("x", LABELS, accuracy + 0.015, 0.0, "candidate_split"),
                     0.5, 0.02)
        assert old.passed  # one step at a time, nothing looks wrong
        d = decide(accuracy, LABELS, champion, 0.5, 0.02, best=best)
        if d.passed:
            promoted.append(accuracy)
            best = max(best or champion, champion, key=lambda c: c.accuracy)
            champion = Champion(str(step), LABELS, accuracy, accuracy, "candidate_split")
    assert promoted == [0.955]
    refused = decide(0.94, LABELS, champion, 0.5, 0.02, best=best)
    assert not refused.passed
    assert "below the best champion of this label set, v3 0.9700" in refused.reason


def test_a_one_class_collapse_is_refused() -> None:
    """The candidate is 0.94 overall, better than the champion, but finds only 6 of 10 cats."""
    from pixtag.model.training.protocol import held_out_metrics

    truth = np.repeat(LABELS, 10)
    pred = truth.copy()
    pred[np.flatnonzero(truth == "cat")[:4]] = "dog"
    figures = held_out_metrics(truth, pred, LABELS)
    recalls = {k: v["recall"] for k, v in figures["by_class"].items()}
    assert figures["accuracy"] == pytest.approx(0.92) and recalls["cat"] == pytest.approx(0.6)
    assert decide(0.92, LABELS, champ(0.91), 0.9, 0.02).passed  # what the old gate saw
    d = decide(0.92, LABELS, champ(0.91), 0.9, 0.02, recalls=recalls, recall_floor=0.7)
    assert not d.passed and d.reason == "recall below the per-class floor 0.70: cat 0.60"
    first = decide(0.92, LABELS, None, 0.9, 0.02, recalls=recalls, recall_floor=0.7)
    assert not first.passed  # a first model needs every class too


# --- against MLflow (sqlite): runs trained once, one registered model name per test ----------
@pytest.fixture(scope="module")
def runs(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("registry")
    base = {"storage": str(shared_dataset(photos, 40)), "backbone": LITE0,
            "mlflow_uri": f"sqlite:///{root / 'mlflow.db'}"}
    tiny = random_weights(TINY, root / "tiny.pth")
    three = root / "three"
    make_dataset(photos, open_storage(three), per_class=12, classes=["car", "cat", "dog"])
    return {
        "base": base,
        "good": train(load_settings(**base))["run_id"],
        "good_again": train(load_settings(**base), reuse=False)["run_id"],  # a second candidate, same data
        "worse": train(load_settings(**base | {"backbone": TINY,
                                               "weights": {TINY: str(tiny)}}))["run_id"],
        "three": train(load_settings(**base | {"storage": str(three)}))["run_id"],
        "tiny": tiny,
    }


def settings_for(runs: dict[str, Any], name: str, **extra: Any):
    return load_settings(**runs["base"] | {"model_name": name} | extra)


def client(settings):
    from mlflow import MlflowClient

    return MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def aliases(settings) -> dict[str, str]:
    return versions.aliases(client(settings), settings.model_name)


def test_champion_then_a_worse_candidate_is_registered_but_not_promoted(runs) -> None:
    settings = settings_for(runs, "auto-gate")
    first = register(settings, runs["good"])
    assert (first["version"], first["decision"], first["promoted"]) == ("1", "promoted", True)
    assert "no champion yet" in first["reason"]
    worse = register(settings, runs["worse"])
    assert (worse["version"], worse["decision"], worse["promoted"]) == ("2", "rejected", False)
    assert "below the floor" in worse["reason"] and worse["test_accuracy"] < 0.9
    c = client(settings)
    assert aliases(settings) == {"champion": "1"}
    tags = c.get_model_version("auto-gate", "2").tags
    assert tags["pixtag.gate.decision"] == "rejected"
    assert tags["pixtag.gate.reason"] == worse["reason"]


def test_worse_than_champion_minus_tolerance_on_the_same_split(runs, tmp_path: Path) -> None:
    # The candidate's settings name other weights for the champion's backbone: the champion
    # must still be re-scored with its own.
    other = random_weights("tf_efficientnet_lite0", tmp_path / "other-lite0.pth")
    settings = settings_for(runs, "tolerance", accuracy_floor=0.0, weights={LITE0: str(other)})
    register(settings, runs["good"])
    worse = register(settings, runs["worse"])
    assert worse["decision"] == "rejected"
    assert worse["champion"]["scored_on"] == "candidate_split"
    assert worse["champion"]["accuracy"] >= 0.95
    assert "on the candidate's test split" in worse["reason"]
    tags = client(settings).get_model_version("tolerance", "2").tags
    assert tags["pixtag.gate.champion_scored_on"] == "candidate_split"
    assert float(tags["pixtag.gate.champion_accuracy"]) >= 0.95
    equal = register(settings, runs["good_again"])  # as good as the champion: promoted
    assert equal["decision"] == "promoted" and equal["version"] == "3"


def test_a_champion_moved_down_by_hand_does_not_lower_the_reference(runs) -> None:
    """The ratchet against MLflow: a person moves @champion to a worse version; a candidate as
    good as that one is still refused, against the best champion this label set had."""
    settings = settings_for(runs, "ratchet", accuracy_floor=0.0, recall_floor=0.0)
    assert register(settings, runs["good"])["decision"] == "promoted"
    worse = register(settings, runs["worse"])
    assert worse["decision"] == "rejected" and "significantly worse than the champion" in worse["reason"]
    c = client(settings)
    tags = c.get_model_version("ratchet", "2").tags
    assert tags["pixtag.gate.paired_test"] == "exact McNemar"
    assert float(tags["pixtag.gate.mcnemar_p"]) < 0.05 and int(tags["pixtag.gate.paired_champion_only"]) > 0
    assert float(tags["pixtag.gate.min_recall"]) == min(float(tags[f"pixtag.gate.recall.{k}"]) for k in LABELS)
    c.set_registered_model_alias("ratchet", "champion", "2")  # a person, in the MLflow UI
    tiny = settings.model_copy(update={"backbone": TINY, "weights": {TINY: str(runs["tiny"])}})
    third = register(settings, train(tiny, reuse=False)["run_id"])
    assert third["decision"] == "rejected" and third["champion"]["version"] == "2"
    assert third["reason"].startswith("test accuracy") and "significantly" not in third["reason"]
    assert "below the best champion of this label set, v1" in third["reason"]
    tags = c.get_model_version("ratchet", third["version"]).tags
    assert float(tags["pixtag.gate.mcnemar_p"]) > 0.5  # no worse than the champion it replaces
    assert tags["pixtag.gate.best_version"] == "1" and tags["pixtag.gate.best_scored_on"] == "candidate_split"
    assert float(tags["pixtag.gate.reference_accuracy"]) >= 0.95
    assert c.get_model_version("ratchet", "2").tags["pixtag.gate.was_champion"] == "true"


def test_every_version_carries_a_model_card(runs) -> None:
    settings = settings_for(runs, "card")
    register(settings, runs["good"])
    second = register(settings, runs["three"])
    c = client(settings)
    first = c.get_model_version("card", "1").description
    assert first.startswith("## pixtag candidate: promoted")
    assert "classes (5): bird (40 images), car (40 images)" in first
    assert "posts from 2026-11-01T00:00:00Z to 2026-11-01T00:00:00Z" in first
    assert f"backbone: `{LITE0}`" in first and "CV accuracy:" in first and "over 5 folds" in first
    assert "| class | recall | precision | test images |" in first
    assert all(f"| {label} | " in first and f"recall.{label}" not in first for label in LABELS)
    assert "no champion before this version" in first
    card = c.get_model_version("card", second["version"]).description
    assert "classes (3): car (12 images), cat (12 images), dog (12 images)" in card
    assert "champion v1" in card and "classes added: none; removed: bird, flower" in card
    assert "images added: 0" in card  # the three-class images are a subset of the 40-per-class ones
    assert second["reason"] in card


def test_human_promotion_uses_challenger_and_whatever_champion_a_person_set(runs) -> None:
    settings = settings_for(runs, "human", promotion="human")
    first = register(settings, runs["good"])
    assert (first["decision"], first["alias"], first["promoted"]) == ("challenger", "challenger",
                                                                      False)
    c = client(settings)
    assert aliases(settings) == {"challenger": "1"}
    c.set_registered_model_alias("human", "champion", "1")  # a person, in the MLflow UI
    second = register(settings, runs["good_again"])
    assert second["decision"] == "challenger" and second["champion"]["version"] == "1"
    assert aliases(settings) == {"champion": "1", "challenger": "2"}
    assert register(settings, runs["worse"])["decision"] == "rejected"
    assert aliases(settings) == {"champion": "1", "challenger": "2"}


def test_a_persons_approval_moves_the_champion_and_a_rejection_says_why(runs) -> None:
    settings = settings_for(runs, "approval", promotion="human")
    first = register(settings, runs["good"])
    assert first["decision"] == "challenger" and first["comparison"]["champion"] is None
    done = approval.record_approval(settings, "1", True, "alice", "looked at the sheets")
    assert done["new_champion"] and aliases(settings) == {"champion": "1"}  # @challenger moved on
    tags = client(settings).get_model_version("approval", "1").tags
    assert (tags["pixtag.gate.approved_by"], tags["pixtag.gate.approval_note"]) == ("alice", "looked at the sheets")
    assert "**Approved by alice**" in client(settings).get_model_version("approval", "1").description
    second = register(settings, runs["good_again"])
    comp = second["comparison"]
    assert comp["champion"]["version"] == "1" and set(comp["champion"]["recall"]) == set(LABELS)
    assert comp["disagreements"] == [] and comp["candidate"]["recall"].keys() == comp["champion"]["recall"].keys()
    approval.record_approval(settings, second["version"], False, "bob", "")
    assert aliases(settings) == {"champion": "1", "challenger": second["version"]}
    tags = client(settings).get_model_version("approval", second["version"]).tags
    assert tags["pixtag.gate.rejected_by"] == "bob" and tags["pixtag.gate.decision"] == "rejected_by_person"
    assert tags["pixtag.gate.rejection_reason"] == "(no reason given)"


def test_a_class_that_disappears_leaves_the_gate_comparing_on_the_shared_classes(runs) -> None:
    """The champion knew five classes; bird and flower left the vocabulary: the champion is
    re-scored on the candidate's test images of car, cat and dog, image by image."""
    import mlflow

    settings = settings_for(runs, "labels")
    register(settings, runs["good"])
    three = register(settings, runs["three"])
    assert "label set changed" not in three["reason"]
    assert "classes changed since champion v1 (added: none; removed: bird, flower)" in three["reason"]
    assert three["champion"]["scored_on"] == "candidate_split"
    assert list(three["champion"]["compared_on"]) == ["car", "cat", "dog"]
    tags = client(settings).get_model_version("labels", three["version"]).tags
    assert tags["pixtag.gate.paired_test"] == "exact McNemar on the shared classes"
    assert (tags["pixtag.gate.classes_removed"], tags["pixtag.gate.classes_added"]) == ("bird,flower", "")
    mlflow.set_tracking_uri(settings.mlflow_uri)
    split = mlflow.artifacts.load_dict(f"runs:/{runs['three']}/split.json")
    shared_images = sum(1 for label in split["test_labels"] if label in ("car", "cat", "dog"))
    assert int(tags["pixtag.gate.paired_images"]) == shared_images > 0
    card = client(settings).get_model_version("labels", three["version"]).description
    assert "classes added: none; removed: bird, flower" in card


def test_a_class_added_is_trained_and_gated_like_the_others(runs) -> None:
    """The champion knew car, cat and dog; the candidate adds bird and flower (as a tag added
    through the trigger form does): compared with the champion on the three, and every class,
    the new ones too, held to the recall floor."""
    settings = settings_for(runs, "added", recall_floor=0.7)
    register(settings, runs["three"])
    five = register(settings, runs["good"])
    assert "classes changed since champion v1 (added: bird, flower; removed: none)" in five["reason"]
    assert list(five["champion"]["compared_on"]) == ["car", "cat", "dog"]
    tags = client(settings).get_model_version("added", five["version"]).tags
    assert tags["pixtag.gate.classes_added"] == "bird,flower" and "pixtag.gate.mcnemar_p" in tags
    recalls = {k: float(tags[f"pixtag.gate.recall.{k}"]) for k in LABELS}
    assert five["decision"] == "promoted" and min(recalls.values()) >= 0.7
    assert "new classes reach the recall floor 0.70: bird" in five["reason"]


def test_mlflow_failing_mid_gate_promotes_nothing_and_a_retry_reuses_the_version(
        runs, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException

    settings = settings_for(runs, "flaky")

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise MlflowException("connection refused", error_code="TEMPORARILY_UNAVAILABLE")

    with monkeypatch.context() as m:
        m.setattr(register_module, "aliases", unreachable)
        with pytest.raises(versions.RegistryUnavailable, match="connection refused") as err:
            register(settings, runs["good"])
        assert isinstance(err.value.__cause__, MlflowException)
    c = client(settings)
    assert aliases(settings) == {}
    assert "pixtag.gate.decision" not in c.get_model_version("flaky", "1").tags
    retried = register(settings, runs["good"])
    assert (retried["version"], retried["decision"]) == ("1", "promoted")
    assert register(settings, runs["good"])["version"] == "1"  # idempotent


def test_champion_not_rescored_says_why(runs, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(runs, "fallback")
    register(settings, runs["good"])

    def broken(*args: Any, **kwargs: Any) -> float:
        raise RuntimeError("images gone")

    monkeypatch.setattr(rescoring, "champion_on_split", broken)
    result = register(settings, runs["good_again"])
    assert result["champion"]["scored_on"] == "logged"
    assert "images gone" in result["champion"]["note"] and "logged (not re-scored" in result["reason"]
    tags = client(settings).get_model_version("fallback", result["version"]).tags
    assert "images gone" in tags["pixtag.gate.champion_note"]


def test_cli_train_registers_and_register_prints_the_decision(
        runs, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in runs["base"].items():
        monkeypatch.setenv(f"PIXTAG_{key.upper()}", value)
    monkeypatch.setenv("PIXTAG_MODEL_NAME", "cli")
    out = CliRunner().invoke(cli, ["train", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["registry"]["decision"] == "promoted" and result["test_accuracy"] >= 0.95
    again = CliRunner().invoke(cli, ["register", runs["worse"]])
    assert again.exit_code == 0, again.output
    assert "cli v2 not promoted: test accuracy" in again.stdout
