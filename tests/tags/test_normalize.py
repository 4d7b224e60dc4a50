"""Hashtag normalisation on real-world tags."""

from __future__ import annotations

import pytest

from pixtag.tags import normalize, split_words

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
