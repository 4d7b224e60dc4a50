"""Hashtag normalisation on real-world tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixtag.tags.normalize import normalize, split_words

pytestmark = pytest.mark.usefixtures("wordnet")

# tag -> normalised words (the study's steps, then one-letter leftovers dropped).
CASES: list[tuple[str, list[str]]] = [
    ("CatsOfPixelfed", ["cat", "pixelfed"]),
    ("#CatsOfPixelfed", ["cat", "pixelfed"]),
    ("#Cats_of_Pixelfed", ["cat", "pixelfed"]),
    ("cats-of-pixelfed", ["cat", "pixelfed"]),
    ("BirdPhotography", ["bird", "photography"]),
    ("NYCStreets", ["nyc", "street"]),
    ("caturday", ["caturday"]),
    ("Cats", ["cat"]),
    ("dogsofmastodon", ["dogsofmastodon"]),  # no case change: one word
    ("DogsOfMastodon", ["dog", "mastodon"]),
    ("35mm", ["mm"]),
    ("#2024", []),
    ("SundayFunday", ["sunday", "funday"]),
    ("BlackAndWhite", ["black", "white"]),
    ("black_and_white", ["black", "white"]),
    ("MastoArt", ["masto", "art"]),
    ("ThrowbackThursday", ["throwback", "thursday"]),
    ("Fediverse", ["fediverse"]),
    ("HalloweenCostume", ["halloween", "costume"]),
    ("iPhone", ["phone"]),  # "i" is a stopword
    ("eBay", ["bay"]),  # one-letter leftover dropped
    ("Katze", ["katze"]),
    ("#café", ["café"]),
    ("cafe\u0301", ["café"]),  # decomposed accent: NFC first, the mark stays in the word
    ("ÜberCool", ["über", "cool"]),
    ("Top10Dogs", ["top", "dog"]),
    ("NoFilter", ["filter"]),
    ("ThisIsFine", ["fine"]),
    ("CATS", ["cat"]),
    ("USA", ["usa"]),
    ("FlowersOfTheWorld", ["flower", "world"]),
    ("dogs&cats", ["dog", "cat"]),
    ("DogDogDog", ["dog"]),  # a word once per tag
    ("猫", ["猫"]),
    ("", []),
    ("#!?", []),
]


@pytest.mark.parametrize(("tag", "words"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_normalize_real_world_hashtags(tag: str, words: list[str]) -> None:
    assert normalize(tag) == words


@pytest.mark.parametrize(
    ("tag", "parts"),
    [
        ("NYCStreets", ["NYC", "Streets"]),
        ("CatsOfPixelfed", ["Cats", "Of", "Pixelfed"]),
        ("myNYC", ["my", "NYC"]),
        ("iPhone", ["i", "Phone"]),
        ("ABC", ["ABC"]),
        ("#Street_Photography2024", ["Street", "Photography"]),
        ("x-ray", ["x", "ray"]),
    ],
)
def test_split_words_keeps_acronyms_whole(tag: str, parts: list[str]) -> None:
    assert split_words(tag) == parts


def test_normalize_returns_a_fresh_list() -> None:
    first = normalize("CatsOfPixelfed")
    first.append("mutated")
    assert normalize("CatsOfPixelfed") == ["cat", "pixelfed"]


REMEMBERED_CODE = """
import json, sys
from pixtag.core.storage import open_storage
from pixtag.tags.normalize import normalize, remembered_normalizations
with remembered_normalizations(open_storage(sys.argv[1])):
    known = normalize("CatsOfPixelfed")
    print(json.dumps({"known": known, "nltk_imported": "nltk" in sys.modules}), flush=True)
    import nltk
    nltk.data.path[:] = sys.argv[2:]
    normalize("GeeseOfTheWorld")  # never seen: needs WordNet
"""


def test_remembered_normalizations_need_no_wordnet(tmp_path: Path) -> None:
    import nltk

    from pixtag.core.storage import open_storage
    from pixtag.tags.normalize import NORMALIZED, remembered_normalizations
    from tests.tags.conftest import run_python

    store = open_storage(str(tmp_path / "store"))
    with remembered_normalizations(store):
        assert normalize("CatsOfPixelfed") == ["cat", "pixelfed"]
    assert store.read_json(NORMALIZED)["tags"]["CatsOfPixelfed"] == ["cat", "pixelfed"]

    # A fresh process with no NLTK data at all: the remembered tag is known without importing
    # NLTK; an unknown one still needs WordNet and says so.
    empty = tmp_path / "no_nltk_data"
    empty.mkdir()
    done = run_python(REMEMBERED_CODE, str(tmp_path / "store"), str(empty))
    assert json.loads(done.stdout.strip().splitlines()[0]) == {"known": ["cat", "pixelfed"], "nltk_imported": False}
    assert done.returncode != 0 and "wordnet" in done.stderr.lower()

    # Another normaliser version (NLTK, pixtag) ignores the stored entries.
    doc = store.read_json(NORMALIZED)
    store.write_json(NORMALIZED, {**doc, "version": "pixtag 0.0; nltk 0.0", "tags": {"CatsOfPixelfed": ["x"]}})
    done = run_python(REMEMBERED_CODE, str(tmp_path / "store"), *nltk.data.path)
    assert json.loads(done.stdout.strip().splitlines()[0]) == {"known": ["cat", "pixelfed"], "nltk_imported": True}
