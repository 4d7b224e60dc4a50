"""WordNet decisions and class selection."""

from __future__ import annotations

from typing import Any

import pytest

from pixtag.tags import select as tags
from pixtag.tags.select import (
    DEFAULT_DENY,
    check_added,
    concreteness_problem,
    first_sense,
    overlap_problem,
    polysemy_problem,
    select_classes,
)

pytestmark = pytest.mark.usefixtures("wordnet")

COUNTS = {
    "cat": 500, "dog": 450, "mastodon": 400, "photography": 380, "bird": 300, "animal": 290,
    "travel": 250, "flower": 240, "thursday": 200, "puppy": 190, "halloween": 150, "car": 140,
    "war": 120, "caturday": 110, "nature": 100, "sky": 90, "auto": 70, "pixelfed": 60,
    "city": 55, "katze": 40, "water": 30,
}


def sense(word: str) -> Any:
    synset = first_sense(word)
    assert synset is not None, word
    return synset


def test_wu_palmer_cat_dog() -> None:
    assert sense("cat").wup_similarity(sense("dog")) == pytest.approx(0.857, abs=1e-3)


@pytest.mark.parametrize(
    ("word", "reason"),
    [
        ("thursday", "temporal (noun.time)"),
        ("halloween", "temporal (noun.time)"),
        ("winter", "temporal (noun.time)"),
        ("travel", "abstract (noun.act)"),
        ("photography", "abstract (noun.act)"),
        ("nature", "abstract (noun.attribute)"),
        ("city", "not an object (noun.location)"),
        ("water", "not an object (noun.substance)"),
        ("cat", None),
        ("flower", None),
        ("car", None),
        ("coffee", None),  # noun.food: a substance in WordNet, still physical
        ("animal", None),  # noun.Tops, physical
    ],
)
def test_concreteness(word: str, reason: str | None) -> None:
    assert concreteness_problem(sense(word)) == reason


def test_concrete_lexname_but_not_physical() -> None:
    # fungi.n.01 is a taxonomic kingdom (a group), filed under noun.plant
    assert concreteness_problem(sense("fungi")) == "abstract (fungi.n.01 is not a physical entity)"


def test_overlap_both_ways_and_synonyms() -> None:
    assert overlap_problem(sense("animal"), {"cat": sense("cat")}) == "hypernym of cat"
    assert overlap_problem(sense("puppy"), {"dog": sense("dog")}) == "hyponym of dog"
    assert overlap_problem(sense("auto"), {"car": sense("car")}) == "synonym of car (car.n.01)"
    assert overlap_problem(sense("bird"), {"cat": sense("cat"), "dog": sense("dog")}) is None


def test_default_deny_list() -> None:
    assert DEFAULT_DENY["mastodon"] == "platform vocabulary"  # WordNet: an extinct animal
    assert DEFAULT_DENY["war"] == "sensitive"
    assert "photo" not in DEFAULT_DENY


def test_select_classes_synthetic_counts() -> None:
    selection = select_classes(COUNTS, max_classes=5)
    assert selection.classes == ["cat", "dog", "bird", "flower", "car"]
    assert selection.rejected == {
        "mastodon": "deny list: platform vocabulary",
        "photography": "abstract (noun.act)",
        "animal": "hypernym of cat",
        "travel": "abstract (noun.act)",
        "thursday": "temporal (noun.time)",
        "puppy": "hyponym of dog",
        "halloween": "temporal (noun.time)",
        "war": "deny list: sensitive",
        "caturday": "not a noun in WordNet",
        "nature": "abstract (noun.attribute)",
        "sky": "beyond the 5 most frequent classes",
        "auto": "synonym of car (car.n.01)",
        "pixelfed": "deny list: platform vocabulary",
        "city": "not an object (noun.location)",
        "katze": "not a noun in WordNet",
        "water": "not an object (noun.substance)",
    }
    data = selection.to_dict()
    assert data["wup"]["labels"] == selection.classes
    matrix = data["wup"]["matrix"]
    assert matrix[0][1] == pytest.approx(0.857, abs=1e-3) and matrix[1][0] == matrix[0][1]
    assert all(matrix[i][i] == 1.0 for i in range(5))
    assert all(0 < v < 1 for i, row in enumerate(matrix) for j, v in enumerate(row) if i != j)


def test_more_frequent_of_a_pair_wins() -> None:
    selection = select_classes({"animal": 10, "cat": 5, "dog": 4}, max_classes=5)
    assert selection.classes == ["animal"]
    assert selection.rejected == {"cat": "hyponym of animal", "dog": "hyponym of animal"}


def test_allow_deny_add() -> None:
    selection = select_classes(
        COUNTS, max_classes=5,
        allow=["caturday", "mastodon"],  # exempt from the WordNet checks and the default deny list
        deny=["dogs"],  # settings deny: matched on the lemma
        add=["#Kitten"],  # a class once checked (WordNet: a young mammal, no hyponym of cat)
    )
    assert selection.classes == ["cat", "mastodon", "bird", "flower", "kitten"]
    assert selection.rejected["dog"] == "deny list: settings"
    assert selection.rejected["caturday"] == "beyond the 5 most frequent classes"
    assert selection.rejected["puppy"] == "beyond the 5 most frequent classes"  # dog is no class


def test_allowed_word_without_a_sense() -> None:
    selection = select_classes({"caturday": 5, "cat": 3, "animal": 2}, allow=["caturday"])
    assert selection.classes == ["caturday", "cat"]
    assert selection.rejected == {"animal": "hypernym of cat"}
    assert selection.wup == [[1.0, None], [None, 1.0]]


def test_settings_deny_beats_allow_and_add_beats_limit() -> None:
    selection = select_classes({"cat": 3, "dog": 2}, max_classes=1, allow=["cat"], deny=["cat"],
                               add=["bird", "car"])
    assert selection.classes == ["bird", "car"]  # added classes even beyond max_classes
    assert selection.rejected == {"cat": "deny list: settings", "dog": "beyond the 1 most frequent classes"}


def test_only_the_top_candidates_are_considered() -> None:
    counts = {f"zzz{i:03d}": 1000 - i for i in range(120)} | {"cat": 1}
    selection = select_classes(counts, max_classes=5)
    assert selection.classes == []
    assert len(selection.rejected) == tags.CANDIDATE_LIMIT
    assert "cat" not in selection.rejected


def test_added_tags_are_checked_against_the_classes_and_each_other() -> None:
    selection = select_classes(COUNTS, max_classes=5, add=["tabby", "puppy", "sunday", "caturday", "horse",
                                                           "pony", "ferret"])
    refused = {w: r for w, r in selection.rejected.items() if r.startswith("added tag refused")}
    assert refused == {
        "tabby": f"added tag refused: hyponym of cat; {tags.FORCE_HINT}",  # a class without the additions
        "puppy": f"added tag refused: hyponym of dog; {tags.FORCE_HINT}",
        "sunday": f"added tag refused: temporal (noun.time); {tags.FORCE_HINT}",
        "caturday": f"added tag refused: not a noun in WordNet; {tags.FORCE_HINT}",
        "pony": f"added tag refused: hyponym of horse; {tags.FORCE_HINT}",  # an addition accepted before it
    }
    assert selection.classes == ["cat", "dog", "bird", "horse", "ferret"]  # the additions displace the rarest
    # forced: kept as the study's manual override, unchecked
    kept, refused = check_added(["tabby", "horse", "pony"], ["cat"], force=["#Tabby"])
    assert list(kept) == ["tabby", "horse"]
    assert refused == {"pony": f"added tag refused: hyponym of horse; {tags.FORCE_HINT}"}


def test_polysemous_words_get_a_reason() -> None:
    assert polysemy_problem("cat") is None and polysemy_problem("bank") is None  # bank.n.01: 25 of 48
    assert polysemy_problem("ferret") is None  # no sense counts: cannot tell
    assert polysemy_problem("fan") == ("polysemous: its first sense fan.n.01 holds 4 of the 10 tagged uses "
                                       "of its 3 noun senses")
    selection = select_classes({"fan": 10, "cat": 5, "dog": 4})
    assert selection.classes == ["cat", "dog"] and selection.rejected["fan"].startswith("polysemous")
    selection = select_classes({"cat": 5, "dog": 4}, add=["fan"])
    assert selection.rejected["fan"] == f"added tag refused: {polysemy_problem('fan')}; {tags.FORCE_HINT}"
    assert select_classes({"cat": 5}, add=["fan"], force=["fan"]).classes == ["cat", "fan"]
