"""What ``pixtag local run`` prints after a run: the report's model line reads as the gate
decided (``promotion: auto``) or as the person answered (``promotion: human``); the classes left
out and the class selection's notes."""

from __future__ import annotations

from typing import Any

import pytest

from pixtag.stack.local import print_summary

GATE = {"model_uri": "models:/pixtag/2", "version": "2", "decision": "challenger", "promoted": False,
        "reason": "label set changed: only the floor applies"}


def summary(decision: dict[str, Any], approval: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    report = {"classes": ["cat", "dog"], "counts": {"cat": 60, "dog": 60}, "test_accuracy": 0.95,
              "decision": decision, "approval": approval}
    print_summary({"state": "success", "report": report, "airflow_url": "http://127.0.0.1:8080",
                   "mlflow_url": "http://127.0.0.1:5000", "instance": "http://127.0.0.1:8765", "demo": True},
                  lines.append)
    return [line for line in lines if line.startswith("  model:")]


@pytest.mark.parametrize(("approval", "line"), [
    ({"outcome": "approved", "by": "admin", "note": "checked the sheets"},
     "PROMOTED to champion by admin (note: checked the sheets)"),
    ({"outcome": "approved", "by": "admin", "note": ""}, "PROMOTED to champion by admin"),
    ({"outcome": "rejected", "by": "bob", "note": "too few flowers"}, "rejected by bob: too few flowers"),
    ({"outcome": "rejected", "by": "bob", "note": ""}, "rejected by bob: (no reason given)"),
    ({"outcome": "timed out"}, "challenger, awaiting approval (nobody answered in Airflow in time; "
                               "move @champion to it in MLflow)"),
])
def test_the_summary_says_what_the_person_decided(approval: dict[str, Any], line: str) -> None:
    assert summary(GATE, approval) == [f"  model:          models:/pixtag/2 version 2: {line}"]


def test_without_a_person_the_gate_speaks_as_before() -> None:
    promoted = GATE | {"decision": "promoted", "promoted": True, "reason": "no champion yet"}
    assert summary(promoted, {"outcome": "not needed"}) == [
        "  model:          models:/pixtag/2 version 2: PROMOTED to champion (no champion yet)"]
    rejected = GATE | {"decision": "rejected", "reason": "test accuracy 0.5 < floor 0.9"}
    assert summary(rejected, None) == [
        "  model:          models:/pixtag/2 version 2: not promoted (test accuracy 0.5 < floor 0.9)"]


def test_the_summary_names_the_classes_left_out_and_the_selections_notes() -> None:
    lines: list[str] = []
    report = {"classes": ["cat", "dog", "horse"], "counts": {"cat": 150, "dog": 150},
              "left_out": {"horse": "0 images, minimum 100"},
              "notes": {"ramen": "not in WordNet 3.0; a class as the settings confirm it (confirm_tags)"}}
    print_summary({"state": "success", "report": report, "airflow_url": "http://127.0.0.1:8080",
                   "mlflow_url": "http://127.0.0.1:5000", "instance": "http://127.0.0.1:8765", "demo": True},
                  lines.append)
    assert "  left out:       horse (0 images, minimum 100)" in lines
    assert "  note:           ramen: not in WordNet 3.0; a class as the settings confirm it (confirm_tags)" in lines
    quiet: list[str] = []
    print_summary({"state": "success", "report": {"classes": ["cat"], "counts": {"cat": 1}}, "airflow_url": "a",
                   "mlflow_url": "m", "instance": "i", "demo": False}, quiet.append)
    assert not [line for line in quiet if "left out" in line or "note:" in line]
