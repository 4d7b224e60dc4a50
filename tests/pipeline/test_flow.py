"""The flow's class selection: tags a person adds are checked like any class, refused ones are
reported with their reason (summary and log), forced ones are kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pixtag.core.config import load_settings
from pixtag.core.storage import open_storage
from pixtag.pipeline import flow
from pixtag.tags.select import CONFIRM_HINT, FORCE_HINT, REMOVED
from pixtag.tags.trending import TagCounts, save_run

pytestmark = pytest.mark.usefixtures("wordnet")
WORDS = {"cat": 50, "dog": 40, "bird": 30, "animal": 20, "puppy": 10}


def test_configured_classes_check_the_added_tags(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(storage=str(tmp_path / "store"), classes=["cat", "dog"], add_tags=["tabby"])
    with caplog.at_level(logging.WARNING, logger="pixtag.pipeline.flow"):
        selection = flow.select_classes(settings, add=["ferret", "Sundays"])
    assert selection.classes == ["cat", "dog", "ferret"]
    assert selection.refused == {"tabby": f"added tag refused: hyponym of cat; {FORCE_HINT}",
                                 "sunday": f"added tag refused: temporal (noun.time); {FORCE_HINT}"}
    assert selection.rejected["tabby"] == selection.refused["tabby"]
    assert "'tabby' is not made a class: added tag refused: hyponym of cat" in caplog.text
    # forced: kept without the checks, and it lasts (stored in the vocabulary) until removed
    forced = flow.select_classes(settings, force=["Sunday"])
    assert forced.classes == ["cat", "dog", "ferret", "sunday"] and "sunday" not in forced.refused
    assert forced.vocabulary.forced == ["sunday"]
    assert "sunday" in flow.select_classes(settings).classes
    removed = flow.select_classes(settings, remove=["sunday"])
    assert "sunday" not in removed.classes and "forced" not in removed.xcom()["vocabulary"]


def test_trending_classes_check_the_added_tags(tmp_path: Path) -> None:
    store = open_storage(str(tmp_path / "store"))
    save_run(store, TagCounts(raw=dict(WORDS), words=dict(WORDS), posts=100, tagged_posts=100,
                              time="2026-12-01T00:00:00+00:00"))
    settings = load_settings(storage=str(tmp_path / "store"), max_classes=3)
    selection = flow.select_classes(settings, add=["poodle", "car"])
    assert selection.refused == {"poodle": f"added tag refused: hyponym of dog; {FORCE_HINT}"}
    assert selection.classes == ["cat", "dog", "car"]  # car displaces bird, the rarest
    report = flow.report(selection, None, None, None)
    assert report.refused == selection.refused and report.counts == {} and report.decision is None
    forced = flow.select_classes(settings, force=["poodle"])
    assert "poodle" in forced.classes and not forced.refused


def test_run_params_reach_the_settings() -> None:
    settings = flow.run_settings({"timeline": "federated", "compare_backbones": ["vgg16"], "backbone": None})
    assert settings.timeline == "federated" and settings.compare_backbones == ["vgg16"]
    assert flow.run_settings({}).timeline == "local"


def cli_classes(store: Path, *args: str) -> dict:
    """``pixtag classes --auto --json`` on this storage, as a person would run it."""
    import json

    from click.testing import CliRunner

    from pixtag.cli.app import cli

    result = CliRunner().invoke(cli, ["classes", "--auto", "--json", *args], env={"PIXTAG_STORAGE": str(store)})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_cli_and_the_dag_choose_the_classes_through_one_path(tmp_path: Path) -> None:
    store = tmp_path / "store"
    words = {"cat": 50, "dog": 40, "bird": 30, "ramen": 25, "flower": 20, "car": 10}
    save_run(open_storage(str(store)), TagCounts(raw=dict(words), words=dict(words), posts=100, tagged_posts=100,
                                                 time="2026-12-01T00:00:00+00:00"))
    settings = load_settings(storage=str(store))
    dag = flow.select_classes(settings)
    assert dag.classes == cli_classes(store)["classes"] == ["cat", "dog", "bird", "flower", "car"]
    assert dag.notes["ramen"] == f"not in WordNet 3.0; {CONFIRM_HINT}"
    # a person changes the vocabulary in the trigger form: the CLI reads the same storage and follows
    changed = flow.select_classes(settings, add=["horse"], remove=["car"], confirm=["ramen"])
    assert changed.vocabulary.confirmed == ["ramen"]
    chosen = cli_classes(store)
    assert chosen["classes"] == changed.classes == ["cat", "dog", "bird", "ramen", "flower", "horse"]
    assert chosen["notes"]["ramen"] == changed.notes["ramen"] == (
        "not in WordNet 3.0; a class as a person confirmed it in the trigger form (Tags to confirm)")
    # --max and the study's protocol: the same function, the same vocabulary
    five = flow.select_classes(settings.model_copy(update={"max_classes": 5}))
    assert five.classes == cli_classes(store, "--max", "5")["classes"] == ["cat", "dog", "bird", "ramen", "horse"]
    assert five.notes["flower"].startswith("made room for the added tag horse: the classes were full (max_classes 5)")
    report = flow.report(five, None, None, None)
    assert report.notes == five.notes and report.left_out == {} and report.rejected == five.rejected
    assert report.rejected["flower"] == five.notes["flower"] and report.rejected["car"] == REMOVED


def test_a_run_param_raises_or_lowers_the_number_of_classes() -> None:
    assert load_settings().max_classes == 20
    assert flow.run_settings({"max_classes": 5}).max_classes == 5
    assert flow.run_settings({"max_classes": None}).max_classes == 20


def test_confirming_and_removing_the_same_tag_is_refused(tmp_path: Path) -> None:
    store = open_storage(str(tmp_path / "store"))
    with pytest.raises(flow.FlowError, match="both added .or confirmed. and removed"):
        flow.update_vocabulary(store, confirm=["ramen"], remove=["ramen"])
    assert flow.update_vocabulary(store, confirm=["#Ramen"]) == {"added": [], "removed": [], "confirmed": ["ramen"]}
    assert flow.update_vocabulary(store, remove=["ramen"]) == {"added": [], "removed": ["ramen"]}


def test_a_class_left_out_waits_until_more_posts_carry_it(tmp_path: Path) -> None:
    from pixtag.tags.select import read_left_out, remember_left_out

    store = open_storage(str(tmp_path / "store"))
    words = {"cat": 50, "dog": 40, "sea": 30}
    save_run(store, TagCounts(raw=dict(words), words=dict(words), posts=100, time="2026-12-01T00:00:00+00:00"))
    settings = load_settings(storage=str(tmp_path / "store"))
    assert flow.select_classes(settings).classes == ["cat", "dog", "sea"]
    remember_left_out(store, {"sea": "12 images, minimum 50"}, ["cat", "dog"])  # what assemble does
    assert read_left_out(store) == {"sea": {"why": "12 images, minimum 50", "posts": 30}}
    again = flow.select_classes(settings)
    assert again.classes == cli_classes(tmp_path / "store")["classes"] == ["cat", "dog"]
    assert again.rejected["sea"] == ("too few images when last scraped (12 images, minimum 50); tried again "
                                     "when more posts carry it (30 now, 30 then)")
    more = {**words, "sea": 45}
    save_run(store, TagCounts(raw=more, words=more, posts=100, time="2026-12-08T00:00:00+00:00"))
    assert flow.select_classes(settings).classes == ["cat", "sea", "dog"]  # new posts: scraped again
    remember_left_out(store, {}, ["cat", "dog", "sea"])  # and this time it trained
    assert read_left_out(store) == {}
