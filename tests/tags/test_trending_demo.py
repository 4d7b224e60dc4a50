"""End to end: `trending` on the local demo instance, then automatic class selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixtag.config import load_settings
from pixtag.storage import LocalStorage
from pixtag.tags import latest_run, select_classes, trending

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

TOKEN = "demo-token"
EXPECTED_REJECTIONS = {
    "mastodon": "deny list",  # WordNet knows it as an extinct animal
    "travel": "abstract",
    "thursday": "temporal",
    "halloween": "temporal",
    "war": "deny list",
    "photography": "abstract",
}


def test_trending_then_classes_on_the_demo_instance(photos: Path, tmp_path: Path) -> None:
    from pixtag.demo.server import DemoInstance

    store = tmp_path / "store"
    with DemoInstance(photos, seed=0, token=TOKEN, port=0) as demo:
        settings = load_settings(instance_url=demo.url, token=TOKEN, allow_private_hosts=["127.0.0.1"],
                                 storage=str(store), request_rate=100)
        counts = trending(settings, posts=1000)
    assert 0 < counts.posts <= 1000
    assert latest_run(LocalStorage(store)).words == counts.words

    selection = select_classes(counts.words, max_classes=5, allow=settings.allow_tags,
                               deny=settings.deny_tags, add=settings.add_tags)
    assert set(selection.classes) == {"cat", "dog", "bird", "flower", "car"}
    for word, reason in EXPECTED_REJECTIONS.items():
        assert selection.rejected.get(word, "").startswith(reason), (word, selection.rejected.get(word))
    assert len(selection.wup) == 5 and all(len(row) == 5 for row in selection.wup)
