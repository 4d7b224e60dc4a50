"""Hashtags -> words -> classes: the study's tag pipeline.

Pure core first (:func:`normalize`, :func:`count_tags`, :func:`select_classes`), I/O at the
edges (:func:`trending` samples an instance and records the run in storage; the plots; the
``normalize``, ``trending`` and ``classes`` commands).

Normalisation, in the study's order (:func:`normalize`):

1. special characters, digits and punctuation are removed and act as word boundaries
   (``#Cats_of_Pixelfed`` and ``cats-of-pixelfed`` split like ``CatsOfPixelfed``); Unicode
   letters and combining marks are kept (``Katze``, ``café``);
2. words are split where the case changes: before an upper-case letter that follows a
   lower-case one, and before the last capital of an acronym that starts a capitalised word,
   so acronyms stay whole (``NYCStreets`` -> NYC Streets, ``iPhone`` -> i Phone);
   all-lower-case tags stay one word (``dogsofmastodon``);
3. lower-casing; 4. NLTK's English stopwords are dropped; 5. WordNet noun lemmas
   (``Cats`` -> cat).

Then one-letter Latin leftovers (``iPhone`` -> i, ``eBay`` -> e) are dropped and repeated words
kept once. The result can be empty (``#2024``).

Class selection (:func:`select_classes`) keeps concrete, visually identifiable nouns: the
word's most frequent WordNet noun sense (its first synset) must come from a concrete
lexicographer file (:data:`CONCRETE_LEXNAMES`) and descend from ``physical_entity.n.01``; and
no two classes may be hypernym and hyponym (or synonyms) of each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pixtag.core import logs
from pixtag.core.errors import PixtagError
from pixtag.tags import nlp

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage
    from pixtag.sources.pixelfed import Client, Status

log = logs.get_logger(__name__)

RUNS_PREFIX = "tags/runs/"
INSTANCE_TRENDING = "instance_trending"  # a run's copy of the instance's own trending list
CANDIDATE_LIMIT = 100  # only the most frequent words are considered as classes
SELECTION_RULES = 2  # bump when select_classes decides differently (stored selections are keyed by it)
PHYSICAL_ENTITY = "physical_entity.n.01"

#: Lexicographer files of concrete things (noun.Tops holds animal, food, artifact, ...; its
#: abstract members fail the physical_entity test).
CONCRETE_LEXNAMES = frozenset({
    "noun.Tops", "noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.object",
    "noun.plant",
})
TEMPORAL_LEXNAMES = frozenset({"noun.time"})
ABSTRACT_LEXNAMES = frozenset({
    "noun.act", "noun.attribute", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.group", "noun.motive", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state",
})
# Physical, but places, people, weather and materials are not object classes.
NOT_OBJECT_LEXNAMES = frozenset({
    "noun.location", "noun.person", "noun.phenomenon", "noun.substance",
})

SENSITIVE = "sensitive"
PLATFORM = "platform vocabulary"
#: Never classes, whatever WordNet says (extended by ``settings.deny_tags``). Words are matched
#: after normalisation (lemmas).
DEFAULT_DENY: dict[str, str] = {
    **dict.fromkeys((
        "war", "warfare", "politics", "election", "vote", "religion", "god", "nsfw", "nude",
        "nudity", "naked", "porn", "erotica", "sex", "gun", "weapon", "rifle", "pistol",
        "ammunition", "bomb", "protest", "riot", "terrorism", "military", "army", "soldier",
        "police", "drug", "blood", "gore", "death", "suicide", "abortion", "racism", "refugee",
    ), SENSITIVE),
    **dict.fromkeys((
        "mastodon", "pixelfed", "fediverse", "fedi", "activitypub", "instagram", "insta",
        "twitter", "facebook", "tiktok", "flickr", "vsco", "bluesky", "reddit", "tumblr",
        "snapchat", "youtube", "misskey", "lemmy", "friendica", "peertube",
    ), PLATFORM),
}


class TagsError(PixtagError, ValueError):
    """Bad input to the tag pipeline (no trending run yet, a malformed counts file, ...)."""


# ----------------------------------------------------------------------- normalisation -----
def _is_letter(char: str) -> bool:
    """Letters and combining marks (so ``e`` + U+0301 stays inside a word)."""
    return unicodedata.category(char)[0] in "LM"


def _letter_runs(text: str) -> list[str]:
    """Maximal runs of letters; every other character is a boundary (step 1)."""
    runs, current = [], []
    for char in text:
        if _is_letter(char):
            current.append(char)
        elif current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return runs


def _split_case(run: str) -> list[str]:
    """Split before ``aB`` and before the ``B`` of ``ABc`` (step 2): acronyms stay whole."""
    parts, start = [], 0
    for i in range(1, len(run)):
        prev, char = run[i - 1], run[i]
        following = run[i + 1] if i + 1 < len(run) else ""
        if char.isupper() and (prev.islower() or (prev.isupper() and following.islower())):
            parts.append(run[start:i])
            start = i
    parts.append(run[start:])
    return parts


def split_words(tag: str) -> list[str]:
    """Steps 1-2 of :func:`normalize`, case kept: ``#NYCStreets2024`` -> ``[NYC, Streets]``."""
    text = unicodedata.normalize("NFC", tag)
    return [part for run in _letter_runs(text) for part in _split_case(run)]


@functools.lru_cache(maxsize=65536)
def _normalize(tag: str) -> tuple[str, ...]:
    stop = nlp.stopwords()
    words: list[str] = []
    for word in (w.lower() for w in split_words(tag)):
        if word in stop:
            continue
        lemma = nlp.lemmatize(word)
        if len(lemma) == 1 and lemma.isascii():
            continue
        if lemma not in words:
            words.append(lemma)
    return tuple(words)


#: Normalisations known without WordNet: loaded from storage by :func:`remembered_normalizations`.
_REMEMBERED: dict[str, tuple[str, ...]] = {}
NORMALIZED = "tags/normalized.json"


def _normal(tag: str) -> tuple[str, ...]:
    found = _REMEMBERED.get(tag)
    if found is None:
        found = _REMEMBERED[tag] = _normalize(tag)
    return found


def normalize(tag: str) -> list[str]:
    """The normalised words of a hashtag (``#CatsOfPixelfed`` -> ``[cat, pixelfed]``).

    Needs WordNet (loaded once per process) unless the tag was remembered (see
    :func:`remembered_normalizations`); raises :class:`pixtag.tags.nlp.NltkDataMissing` if absent.
    """
    return list(_normal(tag))


def normalizer_version() -> str:
    """What a remembered normalisation depends on: pixtag's rules, NLTK's reader, the word lists."""
    from importlib.metadata import version

    from pixtag import __version__
    return f"pixtag {__version__}; nltk {version('nltk')}; wordnet 3.0"


def _stored_normalizations(store: Storage, wanted: str) -> dict[str, list[str]]:
    try:
        doc = store.read_json(NORMALIZED) if store.exists(NORMALIZED) else {}
    except (OSError, ValueError):  # a damaged file is only a lost cache
        return {}
    return dict(doc.get("tags", {})) if isinstance(doc, dict) and doc.get("version") == wanted else {}


@contextlib.contextmanager
def remembered_normalizations(store: Storage) -> Iterator[None]:
    """Remember normalisations in ``store`` (``tags/normalized.json``): a task whose hashtags
    were all seen before (a scheduled run with nothing new) loads neither NLTK nor WordNet
    (~5-10 s per task). New ones are merged into the file at the end (best effort: tasks
    running side by side may each add theirs; a lost entry is only computed again)."""
    wanted = normalizer_version()
    stored = _stored_normalizations(store, wanted)
    for tag, words in stored.items():
        _REMEMBERED.setdefault(tag, tuple(words))
    yield
    new = {tag: list(words) for tag, words in _REMEMBERED.items() if tag not in stored}
    if new:
        merged = _stored_normalizations(store, wanted) | {t: list(w) for t, w in _REMEMBERED.items()}
        store.write_json(NORMALIZED, {"version": wanted, "tags": merged})


# ------------------------------------------------------------------------------ counts -----
def _sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Most frequent first, ties alphabetically (deterministic output and plots)."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


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
    """
    spellings: dict[str, Counter[str]] = {}
    post_tags: list[set[str]] = []
    for status in statuses:
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
    """Chosen classes (most frequent first), why other candidates were rejected, and the
    Wu-Palmer similarity of the classes' first noun senses (``None`` where one has no sense)."""

    classes: list[str]
    rejected: dict[str, str]
    wup: list[list[float | None]]

    def to_dict(self) -> dict[str, Any]:
        matrix = [[None if v is None else round(v, 4) for v in row] for row in self.wup]
        return {"classes": self.classes, "rejected": self.rejected,
                "wup": {"labels": self.classes, "matrix": matrix}}


def first_sense(word: str) -> Any | None:
    """The most frequent WordNet noun sense of ``word`` (its first synset), or ``None``."""
    senses = nlp.wordnet().synsets(word.replace(" ", "_"), pos="n")
    return senses[0] if senses else None


@functools.cache
def _ancestors(synset: Any) -> frozenset[Any]:
    """Every hypernym (and instance hypernym) of ``synset`` up to the root."""
    return frozenset(s for path in synset.hypernym_paths() for s in path if s != synset)


def concreteness_problem(synset: Any) -> str | None:
    """Why a sense is not a concrete, visually identifiable thing; ``None`` when it is."""
    lexname = synset.lexname()
    if lexname in TEMPORAL_LEXNAMES:
        return f"temporal ({lexname})"
    if lexname in ABSTRACT_LEXNAMES:
        return f"abstract ({lexname})"
    if lexname not in CONCRETE_LEXNAMES:
        return f"not an object ({lexname})"
    if PHYSICAL_ENTITY not in {s.name() for s in _ancestors(synset)}:
        return f"abstract ({synset.name()} is not a physical entity)"
    return None


def polysemy_problem(word: str) -> str | None:
    """Why ``word`` is too ambiguous to be a class: its first noun sense holds less than half of
    the lemma's tagged uses in WordNet's sense counts (``None`` without counts: cannot tell)."""
    key = word.replace(" ", "_").lower()
    senses = nlp.wordnet().synsets(key, pos="n")
    if len(senses) < 2:
        return None
    counts = [sum(lemma.count() for lemma in s.lemmas() if lemma.name().lower() == key) for s in senses]
    total = sum(counts)
    if total and 2 * counts[0] < total:
        return (f"polysemous: its first sense {senses[0].name()} holds {counts[0]} of the "
                f"{total} tagged uses of its {len(senses)} noun senses")
    return None


def overlap_problem(synset: Any, kept: Mapping[str, Any]) -> str | None:
    """Why a sense cannot sit beside the classes kept so far (hyponymy both ways, synonymy)."""
    for word, other in kept.items():
        if other is None:
            continue
        if other == synset:
            return f"synonym of {word} ({synset.name()})"
        if other in _ancestors(synset):
            return f"hyponym of {word}"
        if synset in _ancestors(other):
            return f"hypernym of {word}"
    return None


def _variants(entry: str) -> set[str]:
    word = entry.strip().lstrip("#").lower()
    return {word, nlp.lemmatize(word)} if word else set()


def _deny_reasons(deny: Iterable[str]) -> dict[str, str]:
    reasons = {w: f"deny list: {category}" for w, category in DEFAULT_DENY.items()}
    for entry in deny:
        reasons.update(dict.fromkeys(_variants(entry), "deny list: settings"))
    return reasons


def _judge(word: str, sense: Any | None, allowed: set[str], deny: dict[str, str],
           user_deny: set[str]) -> str | None:
    """The reason to reject a candidate on its own (before comparing it with others)."""
    if word in user_deny:
        return deny[word]
    if word in allowed:
        return None
    if word in deny:
        return deny[word]
    if sense is None:
        return "not a noun in WordNet"
    return concreteness_problem(sense) or polysemy_problem(word)


FORCE_HINT = "list it in force_tags to keep it anyway"


def check_added(added: Iterable[str], current: Iterable[str], *, force: Iterable[str] = (),
                allow: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Tags a person added, checked like any class: concreteness, polysemy, and overlap (hyponym,
    hypernym, synonym) with the ``current`` classes and the tags accepted before them. A tag in
    ``force`` (or ``allow``) is kept unchecked. Returns (accepted word -> sense, refused word -> reason).
    """
    forced = {v for entry in [*force, *allow] for v in _variants(entry)}
    base = {w: first_sense(w) for w in current}
    kept: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for word in dict.fromkeys(w.strip().lstrip("#").lower() for w in added if w.strip()):
        sense = first_sense(word)
        if word in forced or word in base:
            kept[word] = sense
            continue
        reason = ("not a noun in WordNet" if sense is None
                  else concreteness_problem(sense) or polysemy_problem(word)
                  or overlap_problem(sense, {**base, **kept}))
        if reason:
            refused[word] = f"added tag refused: {reason}; {FORCE_HINT}"
        else:
            kept[word] = sense
    return kept, refused


def wup_matrix(senses: Sequence[Any | None]) -> list[list[float | None]]:
    """Pairwise Wu-Palmer similarity (1.0 on the diagonal, ``None`` without a sense)."""
    return [
        [1.0 if i == j else (a.wup_similarity(b) if a is not None and b is not None else None)
         for j, b in enumerate(senses)]
        for i, a in enumerate(senses)
    ]


def select_classes(
    counts: Mapping[str, int],
    max_classes: int = 5,
    allow: Iterable[str] = (),
    deny: Iterable[str] = (),
    add: Iterable[str] = (),
    *,
    force: Iterable[str] = (),
    limit: int = CANDIDATE_LIMIT,
) -> Selection:
    """Propose up to ``max_classes`` classes from normalised word counts.

    Candidates are the ``limit`` most frequent words. Precedence: ``add`` (classes once they
    pass :func:`check_added` against the classes chosen without them, or when listed in
    ``force``; they count towards ``max_classes``) > ``deny`` > ``allow`` (exempt from every
    WordNet check) > the default deny list > the WordNet checks: a noun whose first sense is
    concrete (:func:`concreteness_problem`), not polysemous (:func:`polysemy_problem`) and
    neither hyponym, hypernym nor synonym of a more frequent class (:func:`overlap_problem`).
    Every rejected candidate (and refused added tag) gets a reason.
    """
    deny_reasons = _deny_reasons(deny)
    user_deny = {v for entry in deny for v in _variants(entry)}
    allowed = {v for entry in allow for v in _variants(entry)}
    added = list(dict.fromkeys(w.strip().lstrip("#").lower() for w in add if w.strip()))
    current = select_classes(counts, max_classes, allow, deny, limit=limit).classes if added else []
    kept, rejected = check_added(added, current, force=force, allow=allow)
    room = max(0, max_classes - len(kept))
    for word, _count in list(_sorted_counts(counts).items())[:limit]:
        if word in kept or word in rejected:
            continue
        sense = first_sense(word)
        reason = _judge(word, sense, allowed, deny_reasons, user_deny)
        if reason is None and word not in allowed:
            reason = overlap_problem(sense, kept)
        if reason is None and room == 0:
            reason = f"beyond the {max_classes} most frequent classes"
        if reason:
            rejected[word] = reason
            continue
        kept[word] = sense
        room -= 1
    classes = sorted(kept, key=lambda w: -counts.get(w, 0))  # stable: ties keep their order
    return Selection(classes, rejected, wup_matrix([kept[w] for w in classes]))


# ------------------------------------------------------------------------------- plots -----
def _bar(ax: Any, counts: Mapping[str, int], title: str, n: int) -> None:
    items = list(counts.items())[:n]
    ax.bar(range(len(items)), [c for _, c in items], color="#4c72b0")
    ax.set_xticks(range(len(items)), [t for t, _ in items], rotation=90, fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("posts")


def plot_before_after(counts: TagCounts, path: Path, n: int = 20) -> Path:
    """Two bar charts: the top ``n`` raw tags and the top ``n`` normalised words."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    before, after = fig.subplots(1, 2)
    _bar(before, counts.raw, f"Top {min(n, len(counts.raw))} hashtags (raw)", n)
    _bar(after, counts.words, f"Top {min(n, len(counts.words))} words (normalised)", n)
    fig.savefig(path, dpi=100)
    return path


def top_tags_figure(counts: TagCounts, n: int = 100) -> Any:
    """The bar chart of the top ``n`` words after normalisation (the study's Fig. 2)."""
    from matplotlib.figure import Figure

    shown = min(n, len(counts.words))
    fig = Figure(figsize=(max(8, shown * 0.18), 5), layout="constrained")
    _bar(fig.subplots(), counts.words, f"Top {shown} words (normalised) of {counts.posts} posts", n)
    return fig


def plot_top_tags(counts: TagCounts, path: Path, n: int = 100) -> Path:
    """:func:`top_tags_figure` as a PNG."""
    top_tags_figure(counts, n).savefig(path, dpi=100)
    return path


def plot_wup(selection: Selection, path: Path) -> Path:
    """Heat map of the classes' Wu-Palmer similarity, values written in the cells."""
    import numpy as np
    from matplotlib.figure import Figure

    labels = selection.classes
    matrix = np.array([[np.nan if v is None else v for v in row] for row in selection.wup],
                      dtype=float).reshape(len(labels), len(labels))
    size = max(4, 0.8 * len(labels) + 2)
    fig = Figure(figsize=(size, size * 0.85), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                    color="black" if value > 0.6 else "white", fontsize=8)
    ax.set_title("Wu-Palmer similarity of the classes")
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100)
    return path


OVERLAP_RELATIONS = ("hyponym of ", "hypernym of ", "synonym of ")


def sample_size(counts: TagCounts) -> dict[str, Any]:
    """The sample's size: posts, hashtag uses, per-post mean, unique tags before and after
    normalisation."""
    uses = sum(counts.raw.values())
    return {"posts": counts.posts, "posts_with_tags": counts.tagged_posts, "hashtags": uses,
            "hashtags_per_post": round(uses / counts.posts, 4) if counts.posts else 0.0,
            "unique_before": len(counts.raw), "unique_after": len(counts.words),
            "instance": counts.instance, "timeline": counts.extra.get("timeline", "local"), "time": counts.time}


def overlap_edges(rejected: Mapping[str, str], counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """The candidates rejected for overlapping a class: word, relation, class, senses, Wu-Palmer."""
    edges = []
    for word, reason in rejected.items():
        relation = next((r for r in OVERLAP_RELATIONS if reason.startswith(r)), None)
        if relation is None:
            continue
        other = reason[len(relation):].split(" (")[0]
        a, b = first_sense(word), first_sense(other)
        edges.append({"word": word, "count": counts.get(word, 0), "relation": relation.split()[0],
                      "class": other, "word_sense": a.name() if a else None,
                      "class_sense": b.name() if b else None,
                      "wup": round(a.wup_similarity(b), 4) if a is not None and b is not None else None})
    return edges


def plot_overlap_graph(classes: Sequence[str], edges: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The classes on top, the candidates rejected as their hyponym/hypernym/synonym below, an
    arrow from each to its class labelled with the relation (the study's Fig. 4)."""
    from matplotlib.figure import Figure

    words = list(dict.fromkeys(e["word"] for e in edges))
    width = max(6.0, 1.3 * max(len(classes), len(words), 1))
    fig = Figure(figsize=(width, 4), layout="constrained")
    ax = fig.subplots()
    top = {c: (i + 0.5) * width / max(len(classes), 1) for i, c in enumerate(classes)}
    bottom = {w: (i + 0.5) * width / max(len(words), 1) for i, w in enumerate(words)}
    for c, x in top.items():
        ax.text(x, 1.0, c, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#c6dbef"})
    for w, x in bottom.items():
        ax.text(x, 0.0, w, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#fdd0a2"})
    for e in edges:
        if e["class"] not in top:  # a class removed since: still drawn, at the side
            top[e["class"]] = width
            ax.text(width, 1.0, e["class"], ha="center", va="center")
        x0, x1 = bottom[e["word"]], top[e["class"]]
        ax.annotate("", xy=(x1, 0.9), xytext=(x0, 0.1), arrowprops={"arrowstyle": "->", "color": "grey"})
        ax.text((x0 + x1) / 2, 0.5, e["relation"], ha="center", fontsize=7, color="dimgrey")
    if not edges:
        ax.text(width / 2, 0.5, "no candidate was rejected for overlapping a class", ha="center")
    ax.set_xlim(0, width + 0.5)
    ax.set_ylim(-0.3, 1.3)
    ax.axis("off")
    ax.set_title("Candidates rejected as hyponym, hypernym or synonym of a class")
    fig.savefig(path, dpi=100)
    return path


def candidate_table(counts: Mapping[str, int], classes: Sequence[str], rejected: Mapping[str, str],
                    removed: Iterable[str] = (), limit: int = CANDIDATE_LIMIT) -> list[dict[str, Any]]:
    """Every one of the ``limit`` most frequent words: its rank, count and fate (class, or why not)."""
    removed = set(removed)
    rows = []
    for rank, (word, count) in enumerate(list(_sorted_counts(counts).items())[:limit], start=1):
        if word in removed:
            status, reason = "removed", "removed by a manual trigger (Param remove_tags)"
        elif word in classes:
            status, reason = "class", ""
        else:
            status, reason = "rejected", rejected.get(word, "not considered")
        rows.append({"rank": rank, "word": word, "count": count, "status": status, "reason": reason})
    return rows


def _reason_kind(reason: str) -> str:
    for sep in (" (", ":", " of "):
        reason = reason.split(sep)[0]
    return reason or "class"


def plot_reasons(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Bar chart: how many of the top candidates each kind of reason rejected."""
    from matplotlib.figure import Figure

    kinds = Counter(_reason_kind(r["reason"]) if r["status"] != "class" else "class" for r in rows)
    items = sorted(kinds.items(), key=lambda kv: -kv[1])
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color="#4c72b0")
    ax.set(title=f"Fate of the top {len(rows)} candidate words", xlabel="words")
    fig.savefig(path, dpi=100)
    return path


def plot_sample_size(size: Mapping[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    names = ["posts", "posts_with_tags", "hashtags", "unique_before", "unique_after"]
    ax.barh(names[::-1], [size[n] for n in names][::-1], color="#4c72b0")
    ax.set_title(f"Sample: {size['hashtags_per_post']:.2f} hashtags per post")
    fig.savefig(path, dpi=100)
    return path


def write_selection_figures(settings: Settings, store: Storage, labels: Sequence[str], out: Path) -> bool:
    """The tag figures of the newest stored trending run into ``out/tags`` and the class figures
    of the trained ``labels`` into ``out/classes`` (PNG + JSON/CSV each). False (nothing written)
    when no trending run is stored."""
    import csv

    counts = latest_run(store)
    if counts is None:
        return False
    tags, classes = out / "tags", out / "classes"
    tags.mkdir(parents=True, exist_ok=True)
    classes.mkdir(parents=True, exist_ok=True)
    size = sample_size(counts) | {"run": list_runs(store)[-1]}
    (tags / "sample.json").write_text(json.dumps(size, indent=1))
    plot_sample_size(size, tags / "sample.png")
    plot_before_after(counts, tags / "top20_before_after.png")
    (tags / "top20_before_after.json").write_text(json.dumps(
        {"before": list(counts.raw.items())[:20], "after": list(counts.words.items())[:20]}))
    plot_top_tags(counts, tags / "top100_normalised.png")
    (tags / "top100_normalised.json").write_text(json.dumps(list(counts.words.items())[:100]))

    vocab = store.read_json(VOCABULARY) if store.exists(VOCABULARY) else {"added": [], "removed": []}
    selection = automatic_selection(store, counts.words, settings, [*settings.add_tags, *vocab["added"]],
                                    vocab.get("forced", []))
    chosen = Selection(list(labels), {}, wup_matrix([first_sense(w) for w in labels]))
    plot_wup(chosen, classes / "wup.png")
    (classes / "wup.json").write_text(json.dumps(chosen.to_dict()["wup"]))
    edges = overlap_edges(selection["rejected"], counts.words)
    plot_overlap_graph(list(labels), edges, classes / "overlap_graph.png")
    (classes / "overlap_graph.json").write_text(json.dumps(edges, indent=1))
    rows = candidate_table(counts.words, list(labels), selection["rejected"], vocab["removed"])
    (classes / "candidates.json").write_text(json.dumps(rows, indent=1))
    with (classes / "candidates.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["rank", "word", "count", "status", "reason"])
        writer.writeheader()
        writer.writerows(rows)
    plot_reasons(rows, classes / "candidates.png")
    return True


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


def auto_counts(settings: Settings, counts_file: Path | None = None) -> dict[str, int]:
    """Normalised word counts for ``classes --auto``: from ``counts_file``, else the last trending run."""
    if counts_file is not None:
        return word_counts(read_counts_file(counts_file))
    storage = _open_storage(settings)
    run = latest_run(storage)
    if run is None:
        raise TagsError(f"no trending run in {storage.url(RUNS_PREFIX)}: run `pixtag trending` "
                        "first or pass --counts FILE.json")
    return run.words


VOCABULARY = "tags/vocabulary.json"  # the tags people added or removed (Params), kept across runs
SELECTIONS = "tags/selections"


def automatic_selection(store: Storage, words: Mapping[str, int], settings: Settings,
                        add: list[str], force: list[str] | None = None) -> dict[str, Any]:
    """:func:`select_classes` on these counts and settings, kept in storage by its
    inputs: the same trending counts give the same classes without loading WordNet again."""
    import hashlib
    import json

    force = sorted({*settings.force_tags, *(force or [])})
    inputs = {"words": dict(words), "max": settings.max_classes, "allow": list(settings.allow_tags),
              "deny": list(settings.deny_tags), "add": add, "rules": normalizer_version(),
              "force": force, "selection": SELECTION_RULES}
    key = f"{SELECTIONS}/{hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()}.json"
    if not store.exists(key):
        selection = select_classes(words, settings.max_classes, allow=settings.allow_tags,
                                   deny=settings.deny_tags, add=add, force=force)
        # rejected as pairs: its order (most frequent first) survives the JSON file
        store.write_json(key, {"classes": list(selection.classes), "rejected": list(selection.rejected.items())})
    stored = store.read_json(key)
    return {"classes": list(stored["classes"]), "rejected": dict(stored["rejected"])}
