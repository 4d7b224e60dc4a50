"""The promotion gate: floor, tolerance against the champion on the same split, label-set
changes, human promotion, and no promotion when MLflow fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pixtag import registry
from pixtag.backbones import LITE0
from pixtag.cli import cli
from pixtag.config import load_settings
from pixtag.registry import Champion, decide, register
from pixtag.storage import open_storage
from pixtag.train import train
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


def test_a_new_label_set_is_a_new_baseline() -> None:
    d = decide(0.91, ("cat", "dog"), champ(0.99), 0.9, 0.02)
    assert d.passed and "label set changed" in d.reason


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
    }


def settings_for(runs: dict[str, Any], name: str, **extra: Any):
    return load_settings(**runs["base"] | {"model_name": name} | extra)


def client(settings):
    from mlflow import MlflowClient

    return MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def aliases(settings) -> dict[str, str]:
    return registry.aliases(client(settings), settings.model_name)


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


def test_a_changed_label_set_only_needs_the_floor(runs) -> None:
    settings = settings_for(runs, "labels")
    register(settings, runs["good"])
    three = register(settings, runs["three"])
    assert three["decision"] == "promoted" and "label set changed" in three["reason"]


def test_mlflow_failing_mid_gate_promotes_nothing_and_a_retry_reuses_the_version(
        runs, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.exceptions import MlflowException

    settings = settings_for(runs, "flaky")

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise MlflowException("connection refused", error_code="TEMPORARILY_UNAVAILABLE")

    with monkeypatch.context() as m:
        m.setattr(registry, "aliases", unreachable)
        with pytest.raises(registry.RegistryUnavailable, match="connection refused") as err:
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

    monkeypatch.setattr(registry, "champion_on_split", broken)
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
