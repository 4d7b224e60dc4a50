"""End to end: `trending` on the local demo instance, then automatic class selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.tags.select import select_classes
from pixtag.tags.trending import latest_run, trending
from pixtag_demo.app import DemoInstance
from tests.conftest import demo_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

EXPECTED_REJECTIONS = {
    "mastodon": "deny list",  # WordNet knows it as an extinct animal
    "travel": "abstract",
    "thursday": "temporal",
    "halloween": "temporal",
    "war": "deny list",
    "photography": "abstract",
}


def test_trending_then_classes_on_the_demo_instance(demo: DemoInstance, tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(**demo_settings(demo.url, storage=str(store)))
    counts = trending(settings, posts=1000)
    assert 0 < counts.posts <= 1000
    assert latest_run(LocalStorage(store)).words == counts.words

    selection = select_classes(counts.words, max_classes=5, allow=settings.allow_tags,
                               deny=settings.deny_tags, add=settings.add_tags)
    assert set(selection.classes) == {"cat", "dog", "bird", "flower", "car"}
    for word, reason in EXPECTED_REJECTIONS.items():
        assert selection.rejected.get(word, "").startswith(reason), (word, selection.rejected.get(word))
    assert len(selection.wup) == 5 and all(len(row) == 5 for row in selection.wup)


def test_a_timeline_with_nothing_new_is_not_sampled_again(demo: DemoInstance, tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(**demo_settings(demo.url, storage=str(store)))
    first = trending(settings, posts=400)
    before = demo.stats()["api_requests"]
    again = trending(settings, posts=400)  # the demo instance has no new posts
    assert demo.stats()["api_requests"] - before == 1  # the newest page only, no paging
    assert again.extra["unchanged_since"] == first.time and again.extra["newest_id"] == first.extra["newest_id"]
    assert (again.raw, again.words, again.posts) == (first.raw, first.words, first.posts)
    # The instance's own trending list is kept with the run (each class's scrape reads it there).
    assert first.extra["instance_trending"] and again.extra["instance_trending"] == first.extra["instance_trending"]
    assert again.extra["key"] != first.extra["key"]  # recorded as a run of its own (drift: none)
    before = demo.stats()["api_requests"]
    bigger = trending(settings, posts=800)  # another sample size: sampled in full
    assert demo.stats()["api_requests"] - before > 10 and "unchanged_since" not in bigger.extra


def test_the_same_trending_counts_select_the_same_classes_without_wordnet(
        demo: DemoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixtag.pipeline import flow
    from pixtag.tags import select as tags
    settings = load_settings(**demo_settings(demo.url, storage=str(tmp_path / "store"), max_classes=5))
    flow.refresh_trending(settings)
    first = flow.select_classes(settings)
    assert set(first.classes) == {"cat", "dog", "bird", "flower", "car"}

    def no_wordnet(*_: object, **__: object) -> None:
        raise AssertionError("selected again although the counts and settings did not change")

    monkeypatch.setattr(tags, "select_classes", no_wordnet)
    assert flow.select_classes(settings) == first
    changed = settings.model_copy(update={"max_classes": 4})
    with pytest.raises(AssertionError, match="selected again"):
        flow.select_classes(changed)


def test_the_timeline_setting_picks_the_feed(demo: DemoInstance, tmp_path: Path) -> None:
    """federated: the remote accounts' posts only (``acct`` with a domain), as the study sampled."""
    from pixtag.sources.pixelfed import Client
    from pixtag.tags.trending import count_tags

    settings = load_settings(**demo_settings(demo.url, storage=str(tmp_path / "store"), timeline="federated"))
    with Client(settings) as client:
        remote = list(client.iter_public(10_000, local=False, remote=True))
        local = list(client.iter_public(10_000))
    assert remote and all("@" in s.account.acct for s in remote)
    assert local and all("@" not in s.account.acct for s in local)
    federated = trending(settings, posts=10_000)
    assert federated.extra["timeline"] == "federated" and federated.posts == len(remote)
    assert federated.raw == count_tags(remote).raw
    both = trending(settings.model_copy(update={"timeline": "both"}), posts=10_000)  # not "nothing new"
    assert both.posts == len(remote) + len(local) and "unchanged_since" not in both.extra
    assert latest_run(LocalStorage(tmp_path / "store")).extra["timeline"] == "both"
