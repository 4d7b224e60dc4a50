"""The model card's comparison with the champion (the card itself: tests/model/promotion/test_registry.py)."""

from __future__ import annotations

from pixtag.model.promotion.card import changes


def test_changes_since_the_champion_count_classes_and_images() -> None:
    champion = {"labels": ["cat", "dog", "owl"], "train": ["a", "b"], "test": ["c"]}
    candidate = {"labels": ["cat", "dog", "fox"], "train": ["a", "d", "e"], "test": ["c"]}
    assert changes(candidate, champion) == {"classes_added": ["fox"], "classes_removed": ["owl"],
                                            "images_added": 2, "images_dropped": 1}
    assert changes(candidate, {})["images_added"] == 4
