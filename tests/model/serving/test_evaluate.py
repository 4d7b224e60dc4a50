"""Scoring a registered model on a labelled folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.model.backbones.weights import LITE0
from pixtag.model.promotion.register import register
from pixtag.model.serving.evaluate import EvaluateError, evaluate, labelled_files, summarise
from pixtag.model.training.train import train
from tests.helpers import shared_dataset

CLASSES = ["bird", "car", "cat", "dog", "flower"]


def test_summarise() -> None:
    truth = ["cat", "cat", "dog", "dog", "boat"]
    top = ["cat", "dog", "dog", "dog", "cat"]
    confident = [True, False, True, True, True]
    report = summarise(truth, top, confident, ["cat", "dog"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["confident_accuracy"] == pytest.approx(3 / 4)
    assert report["abstention_rate"] == pytest.approx(1 / 5)
    assert report["per_class"]["cat"] == {"n": 2, "recall": 0.5, "precision": 0.5,
                                          "abstention_rate": 0.5}
    assert report["per_class"]["dog"]["precision"] == pytest.approx(2 / 3)
    assert report["confusion"] == {"rows": ["boat", "cat", "dog"], "columns": ["cat", "dog"],
                                   "matrix": [[1, 0], [1, 1], [0, 2]]}
    assert report["unknown_classes"] == ["boat"]


def test_a_folder_without_classes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loose.jpg").write_bytes(b"x")
    with pytest.raises(EvaluateError, match="CLASS"):
        labelled_files(tmp_path)


@pytest.fixture(scope="module")
def champion(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("evaluate")
    settings = load_settings(storage=str(shared_dataset(photos, 40)), backbone=LITE0,
                             mlflow_uri=f"sqlite:///{root / 'mlflow.db'}")
    register(settings, train(settings)["run_id"])
    folder = root / "photos"
    for label in CLASSES:  # the last photos of each class: not in the training set
        (folder / label).mkdir(parents=True)
        for path in sorted((photos / label).glob("*.jpg"))[-4:]:
            shutil.copy(path, folder / label / path.name)
    (folder / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    return {"settings": settings, "photos": folder}


def test_evaluate_the_champion(champion: dict[str, Any]) -> None:
    report = evaluate(champion["settings"], champion["photos"])
    assert report["model"] == "models:/pixtag@champion" and report["images"] == 20
    assert report["accuracy"] >= 0.9 and report["abstention_rate"] <= 0.2
    assert set(report["per_class"]) == set(CLASSES)
    assert all(m["n"] == 4 and 0 <= m["recall"] <= 1 for m in report["per_class"].values())
    assert sum(map(sum, report["confusion"]["matrix"])) == 20
    (error,) = report["errors"]
    assert error["file"].endswith("broken.jpg") and "not_image" in error["error"]


def test_cli_evaluate_json(champion: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", champion["settings"].mlflow_uri)
    result = CliRunner().invoke(cli, ["evaluate", "--photos", str(champion["photos"]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"] >= 0.9 and set(report["per_class"]) == set(CLASSES)
    # today's keys, and the suggestions' figures: every tag past its own threshold, at most top_k
    assert {"images", "accuracy", "confident_accuracy", "abstention_rate", "per_class", "confusion",
            "unknown_classes", "errors", "model", "photos", "others", "threshold", "seconds"} <= set(report)
    assert report["coverage"] == pytest.approx(1 - report["abstention_rate"])
    assert report["suggestion_precision"] >= 0.9 and report["recall_at_k"] >= report["accuracy"]
    assert report["precision_at_k"] == pytest.approx(report["recall_at_k"] / report["top_k"])
    assert report["thresholds"] == dict.fromkeys(CLASSES, 0.5)  # trained without background: the default
    assert set(report["per_tag"]["cat"]) == {"threshold", "precision", "recall", "support"}
    assert "evaluate: 100%|" not in result.stderr  # --json: no progress bar


def test_cli_evaluate_shows_progress_in_text_mode(champion: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", champion["settings"].mlflow_uri)
    few = tmp_path / "few" / "cat"
    few.mkdir(parents=True)
    for path in sorted((Path(champion["photos"]) / "cat").glob("*.jpg"))[:3]:
        (few / path.name).write_bytes(path.read_bytes())
    result = CliRunner().invoke(cli, ["evaluate", "--photos", str(few.parent)])
    assert result.exit_code == 0, result.output
    assert "evaluate: 100%|" in result.stderr and "3/3" in result.stderr


def test_cli_evaluate_unknown_model(champion: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", champion["settings"].mlflow_uri)
    text = CliRunner().invoke(cli, ["evaluate", "--photos", str(champion["photos"]),
                                    "--model", "models:/pixtag@nobody"])
    assert text.exit_code != 0 and "cannot load model" in str(text.exception)
