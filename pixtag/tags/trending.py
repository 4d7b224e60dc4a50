"""Trending counts: sample recent public posts of an instance, count their raw and normalised
hashtags (:func:`count_tags`), and keep each run in storage (:func:`trending`, :func:`latest_run`)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pixtag.core import logs

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage
    from pixtag.sources.pixelfed import Client, Status
from pixtag.tags.normalize import TagsError, _normal, _sorted_counts, split_words

log = logs.get_logger(__name__)


RUNS_PREFIX = "tags/runs/"


INSTANCE_TRENDING = "instance_trending"  # a run's copy of the instance's own trending list


@dataclass
class TagCounts:
    """Hashtag counts of a sample of posts: ``raw`` (author's spelling) and normalised ``words``."""

    raw: dict[str, int]
    words: dict[str, int]
    posts: int = 0  # posts sampled
    tagged_posts: int = 0  # of which with at least one hashtag
    instance: str | None = None  # host[:port], never a token
    time: str | None = None  # UTC, ISO 8601
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time, "instance": self.instance, "posts_sampled": self.posts,
            "posts_with_tags": self.tagged_posts, "raw": self.raw, "normalized": self.words,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TagCounts:
        known = {"time", "instance", "posts_sampled", "posts_with_tags", "raw", "normalized"}
        return cls(
            raw=_sorted_counts(data.get("raw") or {}),
            words=_sorted_counts(data.get("normalized") or {}),
            posts=int(data.get("posts_sampled") or 0),
            tagged_posts=int(data.get("posts_with_tags") or 0),
            instance=data.get("instance"),
            time=data.get("time"),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _display_spelling(spellings: Counter[str]) -> str:
    """The spelling shown for a case-insensitive tag: the one that splits into the most words
    (``CatsOfPixelfed`` over ``catsofpixelfed``: normalisation needs its case changes), then
    the most frequent, then the first seen."""
    order = {s: i for i, s in enumerate(spellings)}
    return min(spellings, key=lambda s: (-len(split_words(s)), -spellings[s], order[s]))


def count_tags(statuses: Iterable[Status]) -> TagCounts:
    """Raw tag counts (merged case-insensitively) and per-post normalised word counts.

    A post counts a tag once, and a word once even when several of its tags normalise to it
    (``#cats #CatsOfPixelfed`` -> cat: 1). Every post's tags are normalised from the tag's
    display spelling, so ``#catsofpixelfed`` splits like ``#CatsOfPixelfed`` seen elsewhere.
    Posts of bot accounts (``account.bot``: pixtag's own bot among them, whose answers carry
    the tags it suggested) are not counted: trending is what people tag.
    """
    spellings: dict[str, Counter[str]] = {}
    post_tags: list[set[str]] = []
    for status in statuses:
        if status.account.bot:
            continue
        keys = set()
        for spelling in status.hashtags:
            if spelling:
                keys.add(spelling.lower())
                spellings.setdefault(spelling.lower(), Counter())[spelling] += 1
        post_tags.append(keys)
    display = {key: _display_spelling(s) for key, s in spellings.items()}
    raw: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for keys in post_tags:
        raw.update(display[k] for k in keys)
        words.update({w for k in keys for w in _normal(display[k])})
    return TagCounts(
        raw=_sorted_counts(raw), words=_sorted_counts(words), posts=len(post_tags),
        tagged_posts=sum(1 for keys in post_tags if keys),
    )


def word_counts(raw: Mapping[str, int]) -> dict[str, int]:
    """Word counts from raw tag counts (a tag adds its count to each of its words once)."""
    words: Counter[str] = Counter()
    for tag, count in raw.items():
        for word in _normal(tag):
            words[word] += count
    return _sorted_counts(words)


def top_changes(old: TagCounts, new: TagCounts, n: int = 20) -> dict[str, list[str]]:
    """Drift between two runs: words that entered or left the top ``n`` normalised words."""
    before, after = list(old.words)[:n], list(new.words)[:n]
    return {"entered": [w for w in after if w not in before],
            "left": [w for w in before if w not in after]}


# ---------------------------------------------------------------------------- trending -----
def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def _open_storage(settings: Settings) -> Storage:
    from pixtag.core.storage import open_storage

    return open_storage(settings.storage, settings.s3_endpoint_url)


def save_run(storage: Storage, counts: TagCounts) -> str:
    """Write a run to ``tags/runs/<UTC time>.json``; returns the key."""
    when = datetime.fromisoformat(counts.time) if counts.time else datetime.now(UTC)
    key = f"{RUNS_PREFIX}{when.astimezone(UTC).strftime('%Y-%m-%dT%H-%M-%S.%fZ')}.json"
    storage.write_json(key, counts.to_dict())
    return key


def list_runs(storage: Storage) -> list[str]:
    """Keys of the recorded runs, oldest first."""
    return [k for k in storage.list(RUNS_PREFIX) if k.endswith(".json")]


def latest_run(storage: Storage, before: str | None = None) -> TagCounts | None:
    """The newest recorded run (older than key ``before`` if given), or ``None``."""
    keys = [k for k in list_runs(storage) if before is None or k < before]
    return TagCounts.from_dict(storage.read_json(keys[-1])) if keys else None


# settings.timeline -> (local, remote) flags of the public timeline request
TIMELINE_FLAGS = {"local": (True, False), "federated": (False, True), "both": (True, True)}


def _nothing_new(previous: TagCounts | None, newest: Status | None, posts: int, host: str,
                 timeline: str = "local") -> bool:
    """Whether the last run sampled the same timeline: same instance, timeline and size, same
    newest post."""
    return (previous is not None and newest is not None and previous.instance == host
            and previous.extra.get("timeline", "local") == timeline
            and previous.extra.get("posts_requested") == posts and previous.extra.get("newest_id") == newest.id)


def instance_trending(client: Client) -> list[str] | None:
    """The instance's own trending hashtags, or ``None`` where it refuses or fails (optional:
    some instances restrict the endpoint)."""
    from pixtag.sources.http import HTTPError

    try:
        return [t.name for t in client.trending_hashtags()]
    except HTTPError as exc:
        log.info("trending hashtags unavailable (%s)", exc)
        return None


def trending(settings: Settings, instance_url: str | None = None,
             posts: int | None = None, store: Storage | None = None) -> TagCounts:
    """Count the hashtags of the ``posts`` most recent public posts and record the run.

    The run (raw and normalised counts, posts sampled, instance host, time; never the token)
    goes to ``tags/runs/<UTC time>.json`` in ``settings.storage``; its key is in
    ``extra["key"]`` of the result. When the timeline's newest post is the one the last run saw
    first (nothing was posted since), that run's counts are recorded again without paging or
    normalising (``extra["unchanged_since"]``). The run also keeps the instance's own trending
    list (``extra["instance_trending"]``), so that each class's scrape need not ask for it again.
    ``store``: ``settings.storage`` already opened (else it is opened here).
    """
    from pixtag.sources.pixelfed import Client

    posts = posts or settings.trending_posts
    store = store or _open_storage(settings)
    previous = latest_run(store)
    with Client(settings, instance_url) as client:
        host = _host(client.base_url)
        local, remote = TIMELINE_FLAGS[settings.timeline]
        statuses = client.iter_public(posts, local=local, remote=remote)
        newest = next(statuses, None)
        if _nothing_new(previous, newest, posts, host, settings.timeline):
            # No post since the last run: its sample, and so its counts, would come back as they were.
            counts = dataclasses.replace(previous, extra={"unchanged_since": previous.time})
            listed = previous.extra.get(INSTANCE_TRENDING)  # nothing posted: nothing newly trending
        else:
            counts = count_tags(itertools.chain([newest] if newest else [], statuses))
            listed = None
        if listed is None:
            listed = instance_trending(client)
        if listed is not None:
            counts.extra[INSTANCE_TRENDING] = listed
        unparseable = dict(client.unparseable)
    counts.instance = host
    counts.time = datetime.now(UTC).isoformat(timespec="microseconds")
    counts.extra |= {"posts_requested": posts, "unparseable": unparseable, "newest_id": newest.id if newest else None,
                     "timeline": settings.timeline}
    key = save_run(store, counts)
    counts.extra["key"] = key
    log.info("sampled %d posts of the %s timeline of %s (%d with hashtags); saved %s",
             counts.posts, settings.timeline, host, counts.tagged_posts, key)
    return counts


# ----------------------------------------------------------------------------- classes -----
@dataclass
class Selection:
    """Chosen classes (most frequent first), why other candidates were rejected, the Wu-Palmer
    similarity of the classes' first noun senses (``None`` where one has no sense), and ``notes``:
    what a person should know about single words (a class that made room for an added tag, a
    word WordNet lacks that needs or got a person's confirmation)."""

    classes: list[str]
    rejected: dict[str, str]
    wup: list[list[float | None]]
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        matrix = [[None if v is None else round(v, 4) for v in row] for row in self.wup]
        return {"classes": self.classes, "rejected": self.rejected,
                "wup": {"labels": self.classes, "matrix": matrix}, "notes": self.notes}


def read_counts_file(path: Path) -> dict[str, int]:
    """A JSON object of raw tag -> count."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TagsError(f"cannot read counts from {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in data.items()
    ):
        raise TagsError(f"{path} must hold a JSON object of hashtag -> count (integer >= 0)")
    return data
