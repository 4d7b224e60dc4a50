"""What the required actions show and do with the answers (driven through Airflow's REST API
in tests/ui/test_airflow_ui.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixtag.core.config import load_settings
from pixtag.core.storage import open_storage
from pixtag.data.review import contact_refs, read_raw_manifest
from pixtag.pipeline.human import (
    ReviewInputError,
    apply_review,
    approval_body,
    parse_exclusions,
    review_body,
    review_request,
)
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
