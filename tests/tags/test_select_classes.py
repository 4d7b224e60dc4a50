"""WordNet decisions and class selection."""

from __future__ import annotations

from typing import Any

import pytest

from pixtag.tags import select as tags
from pixtag.tags.select import (
    CONFIRM_HINT,
    DEFAULT_DENY,
    check_added,
    concreteness_problem,
    first_sense,
    overlap_problem,
    polysemy_problem,
    select_classes,
)

pytestmark = pytest.mark.usefixtures("wordnet")
NOT_IN_WORDNET = f"not in WordNet 3.0; {CONFIRM_HINT}"

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
        "caturday": NOT_IN_WORDNET,
        "nature": "abstract (noun.attribute)",
        "sky": "beyond the 5 most frequent classes",
        "auto": "synonym of car (car.n.01)",
        "pixelfed": "deny list: platform vocabulary",
        "city": "not an object (noun.location)",
        "katze": NOT_IN_WORDNET,
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
    # dog is no class, so puppy is the fifth automatic one; the added kitten takes its place, saying so
    assert selection.rejected["puppy"] == selection.notes["puppy"] == (
        "made room for the added tag kitten: the classes were full (max_classes 5) and puppy was the least "
        "frequent automatic class (190 posts)")
    assert selection.rejected["caturday"] == "beyond the 5 most frequent classes"


def test_allowed_word_without_a_sense() -> None:
    selection = select_classes({"caturday": 5, "cat": 3, "animal": 2}, allow=["caturday"])
    assert selection.classes == ["caturday", "cat"]
    assert selection.rejected == {"animal": "hypernym of cat"}
    assert selection.wup == [[1.0, None], [None, 1.0]]


def test_settings_deny_beats_allow_and_add_beats_limit() -> None:
    selection = select_classes({"cat": 3, "dog": 2}, max_classes=1, allow=["cat"], deny=["cat"],
                               add=["bird", "car"])
    assert selection.classes == ["bird", "car"]  # added classes even beyond max_classes
    assert selection.rejected == {"cat": "deny list: settings", "dog": (
        "made room for the added tags bird, car: the classes were full (max_classes 1) and dog was the least "
        "frequent automatic class (2 posts)")}


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
        "caturday": f"added tag refused: {NOT_IN_WORDNET}",
        "pony": f"added tag refused: hyponym of horse; {tags.FORCE_HINT}",  # an addition accepted before it
    }
    assert selection.classes == ["cat", "dog", "bird", "horse", "ferret"]  # the additions displace the rarest
    assert [w for w, r in selection.rejected.items() if r.startswith("made room")] == ["car", "flower"]
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


# The local instance (pixtag_demo): eighteen class tags in the top 100, everyday-photo tags less
# frequent than any of them, and the off-topic tags of a Pixelfed timeline.
LOCAL_CLASSES = ("cat", "dog", "bird", "flower", "car", "butterfly", "deer", "fox", "hedgehog", "motorcycle",
                 "mushroom", "pizza", "rabbit", "ramen", "snail", "spider", "squirrel", "sushi")
LOCAL_COUNTS = {
    "photography": 350, "mastodon": 80, "travel": 100, "thursday": 80,
    **{word: 70 - 2 * rank for rank, word in enumerate(LOCAL_CLASSES)},
    "nature": 30, "animal": 30, "sunset": 25, "sea": 22, "pet": 20, "sky": 20, "beach": 16, "landscape": 15,
    "food": 14, "tree": 10, "garden": 10, "coffee": 10, "caturday": 8, "underwater": 6,
}


def test_the_local_instance_gives_its_eighteen_classes_with_ramen_confirmed() -> None:
    selection = select_classes(LOCAL_COUNTS, confirm={"ramen": "the settings confirm it (confirm_tags)"})
    assert len(selection.classes) == 20 and set(LOCAL_CLASSES) <= set(selection.classes)
    assert selection.classes[:18] == list(LOCAL_CLASSES)  # most frequent first; two slots left for sea, pet, ...
    assert selection.notes["ramen"] == "not in WordNet 3.0; a class as the settings confirm it (confirm_tags)"
    ramen = selection.classes.index("ramen")
    assert selection.wup[ramen] == [None if i != ramen else 1.0 for i in range(20)]  # no sense to compare
    assert selection.rejected["food"] == "hypernym of pizza" and selection.rejected["animal"] == "hypernym of cat"
    assert selection.rejected["landscape"] == "not an object (noun.location)"


def test_a_word_wordnet_lacks_says_how_to_make_it_a_class() -> None:
    selection = select_classes(LOCAL_COUNTS)
    assert "ramen" not in selection.classes and set(LOCAL_CLASSES) - {"ramen"} <= set(selection.classes)
    assert selection.rejected["ramen"] == selection.notes["ramen"] == NOT_IN_WORDNET
    # words WordNet lacks that would not have been classes anyway get no note
    assert selection.rejected["underwater"] == NOT_IN_WORDNET and "underwater" not in selection.notes
    # an added word WordNet lacks: refused until a person confirms it, then a class
    refused = select_classes({"cat": 5, "dog": 4}, add=["ramen"])
    assert refused.rejected["ramen"] == f"added tag refused: {NOT_IN_WORDNET}" and "ramen" not in refused.classes
    assert select_classes({"cat": 5, "dog": 4}, add=["ramen"], confirm=["ramen"]).classes == ["cat", "dog", "ramen"]
    # a confirmed word WordNet knows is checked like any other
    checked = select_classes({"cat": 5, "sunday": 4}, confirm=["sunday"])
    assert checked.rejected["sunday"] == "temporal (noun.time)" and "sunday" in checked.notes


def test_the_studys_five_classes_are_one_setting_away() -> None:
    five = select_classes(LOCAL_COUNTS, max_classes=5)
    assert five.classes == ["cat", "dog", "bird", "flower", "car"]
    assert five.rejected["butterfly"] == "beyond the 5 most frequent classes"
    assert five.wup == select_classes(COUNTS, max_classes=5).wup  # same classes, same Wu-Palmer matrix


def test_an_added_tag_adds_a_class_and_names_what_made_room_when_full() -> None:
    confirmed = ["ramen"]
    automatic = select_classes(LOCAL_COUNTS, confirm=confirmed, max_classes=18)
    assert automatic.classes == list(LOCAL_CLASSES)
    # the trial: horse and sea added on the five-class instance now add two classes
    added = select_classes(COUNTS, add=["horse", "sea"])
    assert added.classes == ["cat", "dog", "bird", "flower", "car", "sky", "horse", "sea"]
    assert not any(r.startswith("made room") for r in added.rejected.values())
    # the eighteen and two everyday tags (sea, pet) fill the twenty: the one that makes room is named
    local = select_classes(LOCAL_COUNTS, confirm=confirmed, add=["horse", "sea"])
    assert set(local.classes) == {*LOCAL_CLASSES, "horse", "sea"}
    assert {w for w, n in local.notes.items() if n.startswith("made room")} == {"pet"}  # sea is a class already
    full = select_classes(LOCAL_COUNTS, confirm=confirmed, add=["horse"], max_classes=18)
    assert set(full.classes) == {*LOCAL_CLASSES, "horse"} - {"sushi"}
    assert full.notes["sushi"] == ("made room for the added tag horse: the classes were full (max_classes 18) and "
                                   "sushi was the least frequent automatic class (36 posts)")
    # the study's five with two tags added: the two least frequent automatic classes make room, named
    study = select_classes(LOCAL_COUNTS, max_classes=5, add=["horse", "sea"])
    assert study.classes == ["cat", "dog", "bird", "sea", "horse"]
    assert [w for w, n in study.notes.items() if n.startswith("made room")] == ["car", "flower"]


def test_a_removed_class_keeps_its_place_and_frees_room_for_an_added_one() -> None:
    selection = select_classes(COUNTS, max_classes=5, remove=["flower"], add=["horse"])
    assert selection.classes == ["cat", "dog", "bird", "car", "horse"]  # sky does not slip in behind flower
    assert selection.rejected["flower"] == tags.REMOVED
    assert selection.rejected["sky"] == "beyond the 5 most frequent classes"
    assert not any(r.startswith("made room") for r in selection.rejected.values())
    # a removed class still keeps its hyponyms out (as before), an added one may be its hyponym
    assert select_classes(COUNTS, max_classes=5, remove=["dog"]).rejected["puppy"] == "hyponym of dog"
    assert "poodle" in select_classes(COUNTS, max_classes=5, remove=["dog"], add=["poodle"]).classes


def test_a_class_too_small_when_last_scraped_waits_for_more_posts() -> None:
    too_small = {"sea": {"why": "18 images, minimum 50", "posts": 22}}
    selection = select_classes(LOCAL_COUNTS, confirm=["ramen"], too_small=too_small)
    assert "sea" not in selection.classes and set(LOCAL_CLASSES) <= set(selection.classes)
    assert "sea" not in selection.notes and selection.rejected["sea"] == (
        "too few images when last scraped (18 images, minimum 50); tried again when more posts carry it "
        "(22 now, 22 then)")
    # it keeps its place: sky, less frequent, is not scraped in vain behind it
    assert selection.rejected["sky"] == "beyond the 20 most frequent classes"
    assert "sea" in select_classes({**LOCAL_COUNTS, "sea": 40}, confirm=["ramen"], too_small=too_small).classes
    assert "sea" in select_classes(LOCAL_COUNTS, confirm=["ramen"], too_small=too_small, add=["sea"]).classes
