"""Tag counting, run records and drift between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pixtag.core.storage import LocalStorage
from pixtag.sources.pixelfed import Status
from pixtag.tags.trending import TagCounts, count_tags, latest_run, list_runs, save_run, top_changes, word_counts

pytestmark = pytest.mark.usefixtures("wordnet")


def status(n: int, content_tags: list[str], api_tags: list[str] | None = None) -> Status:
    links = " ".join(
        f'<a href="https://pix.example/discover/tags/{t.lower()}" class="u-url hashtag">#{t}</a>'
        for t in content_tags
    )
    data: dict[str, Any] = {
        "id": str(1000 - n), "content": f"<p>photo {links}</p>", "visibility": "public",
        "account": {"id": "1", "username": "alice"},
        "tags": [{"name": t.lower()} for t in (api_tags if api_tags is not None else content_tags)],
    }
    return Status.from_api(data)


def test_count_tags_merges_spellings_and_counts_words_once_per_post() -> None:
    statuses = [
        status(1, ["cats", "CatsOfPixelfed"]),  # both normalise to cat: one post, cat counts 1
        status(2, [], api_tags=["catsofpixelfed"]),  # only the lower-cased API name
        status(3, ["Caturday", "Dogs"]),
        status(4, []),
    ]
    counts = count_tags(statuses)
    assert counts.posts == 4
    assert counts.tagged_posts == 3
    # case-insensitive merge, shown with the spelling that carries word boundaries
    assert counts.raw == {"CatsOfPixelfed": 2, "Caturday": 1, "Dogs": 1, "cats": 1}
    # post 2's lower-case tag is normalised from the CamelCase spelling seen in post 1
    assert counts.words == {"cat": 2, "pixelfed": 2, "caturday": 1, "dog": 1}


def test_word_counts_from_raw_tags() -> None:
    assert word_counts({"CatsOfPixelfed": 3, "cats": 2, "#2024": 9, "DogDog": 1}) == {
        "cat": 5, "pixelfed": 3, "dog": 1,
    }


def run(time: str, words: dict[str, int]) -> TagCounts:
    return TagCounts(raw=dict(words), words=words, posts=10, tagged_posts=8, instance="pix.example", time=time)


def test_runs_are_saved_and_the_newest_is_read_back(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    assert latest_run(storage) is None
    first = save_run(storage, run("2026-01-02T03:04:05.000006+00:00", {"cat": 3, "dog": 1}))
    second = save_run(storage, run("2026-02-01T00:00:00+00:00", {"dog": 4, "bird": 2}))
    assert first == "tags/runs/2026-01-02T03-04-05.000006Z.json"
    assert list_runs(storage) == [first, second]
    newest = latest_run(storage)
    assert newest is not None
    assert newest.words == {"dog": 4, "bird": 2}
    assert newest.instance == "pix.example" and newest.posts == 10 and newest.tagged_posts == 8
    older = latest_run(storage, before=second)
    assert older is not None and older.words == {"cat": 3, "dog": 1}
    record = storage.read_json(second)
    assert set(record) == {"time", "instance", "posts_sampled", "posts_with_tags", "raw", "normalized"}


def test_top_changes() -> None:
    old = run("t1", {"cat": 5, "dog": 4, "bird": 3})
    new = run("t2", {"dog": 9, "flower": 5, "cat": 1})
    assert top_changes(old, new, n=2) == {"entered": ["flower"], "left": ["cat"]}


def test_display_spelling_prefers_word_boundaries_then_frequency() -> None:
    statuses = [status(1, ["Photography"]), status(2, ["photography"]), status(3, ["photography"]),
                status(4, ["catsofpixelfed"]), status(5, ["catsofpixelfed"]), status(6, ["CatsOfPixelfed"])]
    assert count_tags(statuses).raw == {"CatsOfPixelfed": 3, "photography": 3}


def test_the_top_100_figure_shows_the_normalised_words() -> None:
    """The study's Fig. 2 is of the words after normalisation, not of the raw hashtags."""
    from pixtag.tags.figures import top_tags_figure
    from pixtag.tags.trending import TagCounts

    counts = TagCounts(raw={"CatsOfPixelfed": 5, "cats": 4, "Dogs": 3}, words={"cat": 9, "dog": 3, "pixelfed": 5},
                       posts=12)
    (ax,) = top_tags_figure(counts).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "pixelfed"]
    assert [bar.get_height() for bar in ax.patches] == [9, 3, 5]
    assert ax.get_title() == "Top 3 words (normalised) of 12 posts"


def test_posts_of_bot_accounts_never_count() -> None:
    """pixtag's own bot writes the tags it suggested in its answers: those must not become trending."""
    people = [status(1, ["Cats"]), status(2, ["Dogs"])]
    bot = Status.from_api({"id": "997", "visibility": "unlisted", "content": "<p>@alice #Cats #Birds</p>",
                           "account": {"id": "9", "username": "pixtag", "bot": True},
                           "tags": [{"name": "cats"}, {"name": "birds"}]})
    counts = count_tags([*people, bot])
    assert counts.posts == 2 and "Birds" not in counts.raw and counts.raw["Cats"] == 1
