"""The normalize and classes commands (CliRunner, plus the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.storage import LocalStorage
from pixtag.tags.normalize import TagsError
from pixtag.tags.trending import TagCounts, save_run

pytestmark = pytest.mark.usefixtures("wordnet")

PIXTAG = Path(sys.executable).parent / "pixtag"
PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)


def test_normalize_json_and_text() -> None:
    result = invoke("normalize", "--json", "CatsOfPixelfed", "#2024", "NYCStreets")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "CatsOfPixelfed": ["cat", "pixelfed"], "#2024": [], "NYCStreets": ["nyc", "street"],
    }
    result = invoke("normalize", "BirdPhotography", "#2024")
    assert result.stdout.splitlines() == ["BirdPhotography\tbird photography", "#2024\t(no words)"]


def test_classes_without_auto_prints_the_configured_classes() -> None:
    result = invoke("classes", "--json", env={"PIXTAG_CLASSES": "cat,dog", "PIXTAG_ADD_TAGS": "Bird,dog"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"classes": ["cat", "dog", "bird"]}


def test_classes_auto_from_a_counts_file(tmp_path: Path) -> None:
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({
        "CatsOfPixelfed": 40, "Cats": 10, "DogsOfMastodon": 30, "ThrowbackThursday": 20,
        "BirdPhotography": 15, "AnimalLovers": 12, "#2024": 99,
    }))
    plots = tmp_path / "plots"
    result = invoke("classes", "--auto", "--max", "3", "--counts", str(counts), "--json", "--plots", str(plots))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # words: cat 50, pixelfed 40, dog 30, mastodon 30, throwback 20, thursday 20, bird 15, photography 15, ...
    assert data["classes"] == ["cat", "dog", "bird"]
    assert data["rejected"]["pixelfed"] == "deny list: platform vocabulary"
    assert data["rejected"]["thursday"] == "temporal (noun.time)"
    assert data["rejected"]["animal"] == "hypernym of cat"
    assert data["wup"]["labels"] == data["classes"]
    assert data["wup"]["matrix"][0][1] == pytest.approx(0.857, abs=1e-3)
    assert (plots / "classes_wup.png").read_bytes().startswith(PNG)


def test_classes_auto_uses_the_latest_trending_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    words = {"dog": 9, "puppy": 8, "flower": 7, "war": 6}
    save_run(LocalStorage(store), TagCounts(raw={}, words=words, posts=9, time="2026-01-01T00:00:00+00:00"))
    result = invoke("classes", "--auto", "--max", "5", env={"PIXTAG_STORAGE": str(store)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "classes (2): dog, flower"
    assert any(line.split() == ["puppy", "hyponym", "of", "dog"] for line in lines)
    assert "Wu-Palmer similarity:" in lines


def test_classes_auto_without_a_run_or_with_a_bad_counts_file(tmp_path: Path) -> None:
    result = invoke("classes", "--auto", env={"PIXTAG_STORAGE": str(tmp_path / "empty")})
    assert isinstance(result.exception, TagsError)
    assert "run `pixtag trending` first" in str(result.exception)
    bad = tmp_path / "bad.json"
    bad.write_text('{"cats": "many"}')
    result = invoke("classes", "--auto", "--counts", str(bad))
    assert isinstance(result.exception, TagsError)
    assert "hashtag -> count" in str(result.exception)


def test_console_script(tmp_path: Path) -> None:
    done = subprocess.run([str(PIXTAG), "normalize", "--json", "#Cats_of_Pixelfed", "BlackAndWhite"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"#Cats_of_Pixelfed": ["cat", "pixelfed"], "BlackAndWhite": ["black", "white"]}
    done = subprocess.run([str(PIXTAG), "classes", "--auto"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PIXTAG_STORAGE": "nothing"})
    assert done.returncode == 2
    assert done.stderr.startswith("pixtag: error: no trending run in ")
    assert "Traceback" not in done.stderr


LOCAL_CLASSES = ("cat", "dog", "bird", "flower", "car", "butterfly", "deer", "fox", "hedgehog", "motorcycle",
                 "mushroom", "pizza", "rabbit", "ramen", "snail", "spider", "squirrel", "sushi")


def test_classes_auto_on_counts_shaped_like_the_local_instance(tmp_path: Path) -> None:
    """Eighteen class tags in the top 100 (ramen unknown to WordNet 3.0), everyday tags below them."""
    counts = tmp_path / "counts.json"
    raw = {"photography": 350, "Travel": 100, "ThrowbackThursday": 80, "Pixelfed": 70, "RamenTime": 5,
           **{word: 70 - 2 * rank for rank, word in enumerate(LOCAL_CLASSES)},
           "AnimalLovers": 30, "sunset": 25, "pet": 20, "sky": 20, "sea": 18, "landscape": 15, "food": 14}
    counts.write_text(json.dumps(raw))
    env = {"PIXTAG_STORAGE": str(tmp_path / "store")}
    unconfirmed = invoke("classes", "--auto", "--counts", str(counts), "--json", env=env)
    data = json.loads(unconfirmed.stdout)
    assert "ramen" not in data["classes"] and len(data["classes"]) == 20
    assert data["notes"] == {"ramen": "not in WordNet 3.0; confirm it in the trigger form (Tags to confirm) "
                                      "to make it a class"}
    confirmed = json.loads(invoke("classes", "--auto", "--counts", str(counts), "--json",
                                  env={**env, "PIXTAG_CONFIRM_TAGS": "ramen"}).stdout)
    assert set(LOCAL_CLASSES) <= set(confirmed["classes"]) and len(confirmed["classes"]) == 20
    assert confirmed["notes"]["ramen"] == "not in WordNet 3.0; a class as the settings confirm it (confirm_tags)"
    study = invoke("classes", "--auto", "--counts", str(counts), env={**env, "PIXTAG_MAX_CLASSES": "5"})
    assert study.stdout.splitlines()[0] == "classes (5): cat, dog, bird, flower, car"
