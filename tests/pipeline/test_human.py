"""What the required actions show and do with the answers (driven through Airflow's UI in
tests/ui/test_airflow_ui.py, a rejection through dag.test() in tests/dags/test_approval.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pixtag.core.config import load_settings
from pixtag.core.storage import open_storage
from pixtag.data.review import contact_refs, read_raw_manifest
from pixtag.pipeline.human import (
    ReviewInputError,
    apply_review,
    approval_body,
    approval_not_needed,
    approval_timed_out,
    parse_exclusions,
    record_answer,
    review_body,
    review_request,
)
from pixtag.pipeline.results import Decision
from tests.helpers import make_dataset


@pytest.fixture
def small(photos: Path, tmp_path: Path):
    store = open_storage(tmp_path / "ds")
    make_dataset(photos, store, per_class=3, classes=["cat", "dog"])
    return load_settings(storage=str(tmp_path / "ds"), mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_parse_exclusions_one_per_line() -> None:
    assert parse_exclusions("cat:1\n\n dog:2 , cat:3\n") == ["cat:1", "dog:2", "cat:3"]
    assert parse_exclusions(None) == []


def test_review_writes_sheets_of_the_new_images_and_applies_exclusions(small) -> None:
    request = review_request(small, "http://127.0.0.1:9/")
    assert request["new_images"] == 6 and request["counts"] == {"cat": 3, "dog": 3}
    assert request["sheets"] == "http://127.0.0.1:9/pixtag/review/new/index.html"
    store = open_storage(small.storage)
    assert store.exists("reports/review/new/cat.html") and "cat:2" in store.read_text("reports/review/new/cat.html")
    body = review_body(request)
    assert "**6 images** are new since ever (no champion)" in body and request["data_docs"] in body

    frame = read_raw_manifest(store)
    cat1 = dict(zip(contact_refs(frame), frame["sha256"], strict=True))["cat:1"]
    done = apply_review(small, "cat:1\n", "alice")
    assert done == {"reviewed_by": "alice", "asked": ["cat:1"], "excluded": [cat1]}
    assert json.loads(store.read_text("exclusions.json"))["sha256"] == [cat1]
    assert review_request(small, "http://x")["new_images"] == 5  # excluded images are not asked about again
    with pytest.raises(ReviewInputError, match="unknown contact-sheet index cat:99"):
        apply_review(small, "cat:99", "alice")
    with pytest.raises(ReviewInputError, match="not understood: rm -rf"):
        apply_review(small, "rm -rf", "alice")


@pytest.mark.parametrize("empty", [None, "", "\n \n"])
def test_an_empty_review_excludes_nothing(small, empty: str | None) -> None:
    """OK on an empty form: the UI sends null for an emptied field, a script may send ""."""
    assert apply_review(small, empty, "alice") == {"reviewed_by": "alice", "asked": [], "excluded": []}
    assert not open_storage(small.storage).exists("exclusions.json")


def test_the_approval_body_puts_the_candidate_beside_the_champion() -> None:
    decision = {"model_name": "pixtag", "version": "4", "reason": "not significantly worse",
                "comparison": {"candidate": {"accuracy": 0.95, "false_suggestion_rate": 0.02,
                                             "recall": {"cat": 0.9, "dog": 1.0}},
                               "champion": {"version": "3", "accuracy": 0.94, "false_suggestion_rate": 0.03,
                                            "recall": {"cat": 1.0, "dog": 0.8}},
                               "disagreements": [{"sha256": "a", "label": "cat", "right": "champion"},
                                                 {"sha256": "b", "label": "dog", "right": "candidate"},
                                                 {"sha256": "c", "label": "dog", "right": "candidate"}],
                               "disagreement_count": 3}}
    body = approval_body(decision, "http://af/pixtag/review/disagreements/index.html", "http://mlflow/#/v4")
    assert "| | candidate | champion v3 |" in body and "| recall cat | 90.0% | 100.0% |" in body
    assert "| false-suggestion rate | 2.0% | 3.0% |" in body
    assert "disagree on 3 test images: the candidate is right on 2, the champion on 1" in body
    assert "(http://af/pixtag/review/disagreements/index.html)" in body and "(http://mlflow/#/v4)" in body


CHALLENGER = Decision(model_name="pixtag", version="2", decision="challenger", promoted=False, alias="challenger",
                      reason="label set changed: only the floor applies", test_accuracy=0.95,
                      message="pixtag v2 is @challenger", model_uri="models:/pixtag/2")


def fake_record_approval(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """approval.record_approval (tests/model/promotion/test_registry.py tests it on MLflow), calls kept."""
    from pixtag.model.promotion import approval

    calls: list[tuple[Any, ...]] = []

    def record(settings: Any, version: str, approved: bool, user: str, note: str = "") -> dict[str, Any]:
        calls.append((version, approved, user, note))
        verb = f"approved by {user}" if approved else f"rejected by {user}: {note or '(no reason given)'}"
        return {"model_name": "pixtag", "version": version, "approved": approved, "by": user, "note": note,
                "new_champion": approved, "message": f"pixtag v{version} {verb}"}

    monkeypatch.setattr(approval, "record_approval", record)
    return calls


def test_an_answer_says_who_when_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_record_approval(monkeypatch)
    settings = load_settings()
    at = datetime(2026, 12, 3, 11, 30, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    approved = record_answer(settings, CHALLENGER, True, "admin", None, at)  # the Note left empty: null
    assert (approved.outcome, approved.approved, approved.by, approved.note) == ("approved", True, "admin", "")
    assert approved.at == "2026-12-03T10:30:05+00:00" and approved.new_champion and approved.version == "2"
    rejected = record_answer(settings, CHALLENGER, False, "bob", "too few flowers", "2026-12-03T10:31:00+00:00")
    assert (rejected.outcome, rejected.approved, rejected.by, rejected.note) == ("rejected", False, "bob",
                                                                                "too few flowers")
    assert rejected.at == "2026-12-03T10:31:00+00:00" and not rejected.new_champion
    assert calls == [("2", True, "admin", ""), ("2", False, "bob", "too few flowers")]
    assert datetime.fromisoformat(record_answer(settings, CHALLENGER, False, "bob", "").at or "").tzinfo == UTC


def test_no_answer_needed_and_no_answer_given() -> None:
    promoted = CHALLENGER.model_copy(update={"decision": "promoted", "promoted": True, "new_champion": True})
    assert approval_not_needed(promoted).model_dump(include={"outcome", "approved", "new_champion", "by"}) == {
        "outcome": "not needed", "approved": False, "new_champion": True, "by": None}
    late = approval_timed_out(CHALLENGER, 24)
    assert (late.outcome, late.approved, late.new_champion, late.by) == ("timed out", False, False, None)
    assert "v2 stays @challenger: nobody answered within 24 h" in late.message
