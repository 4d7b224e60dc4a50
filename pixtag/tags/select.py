"""Words -> classes: concrete, visually identifiable nouns.

Class selection (:func:`select_classes`) keeps concrete, visually identifiable nouns: the
word's most frequent WordNet noun sense (its first synset) must come from a concrete
lexicographer file (:data:`CONCRETE_LEXNAMES`) and descend from ``physical_entity.n.01``; and
no two classes may be hypernym and hyponym (or synonyms) of each other.

:func:`choose_classes` is the one path from settings, the stored vocabulary (the tags people
added, removed, forced or confirmed through the DAG's trigger form) and trending counts to a
run's classes: the DAG's ``select_classes`` task and ``pixtag classes --auto`` both call it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pixtag.core import logs
from pixtag.tags import nlp

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage
from pixtag.tags.normalize import _sorted_counts, normalizer_version
from pixtag.tags.trending import Selection

log = logs.get_logger(__name__)


CANDIDATE_LIMIT = 100  # only the most frequent words are considered as classes


DEFAULT_MAX_CLASSES = 20  # settings.max_classes' default (the study's protocol: 5)


SELECTION_RULES = 3  # bump when select_classes decides differently (stored selections are keyed by it)


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


def wordnet_version() -> str:
    """The version of the WordNet NLTK reads (``3.0`` from Debian's ``wordnet-base``)."""
    return str(nlp.wordnet().get_version())


CONFIRM_HINT = "confirm it in the trigger form (Tags to confirm) to make it a class"


REMOVED = "removed by a manual trigger (Param remove_tags)"


TOO_FEW_BEFORE = "too few images when last scraped"


def not_in_wordnet() -> str:
    """The reason for a word WordNet lacks, and what a person can do about it."""
    return f"not in WordNet {wordnet_version()}; {CONFIRM_HINT}"


def _judge(word: str, sense: Any | None, allowed: set[str], deny: dict[str, str],
           user_deny: set[str], confirmed: Mapping[str, str]) -> str | None:
    """The reason to reject a candidate on its own (before comparing it with others)."""
    if word in user_deny:
        return deny[word]
    if word in allowed:
        return None
    if word in deny:
        return deny[word]
    if sense is None:
        return None if word in confirmed else not_in_wordnet()
    return concreteness_problem(sense) or polysemy_problem(word)


FORCE_HINT = "list it in force_tags to keep it anyway"


def _words(entries: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(w.strip().lstrip("#").lower() for w in entries if w.strip()))


def check_added(added: Iterable[str], current: Iterable[str], *, force: Iterable[str] = (),
                allow: Iterable[str] = (), confirm: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Tags a person added, checked like any class: concreteness, polysemy, and overlap (hyponym,
    hypernym, synonym) with the ``current`` classes and the tags accepted before them. A tag in
    ``force`` (or ``allow``) is kept unchecked; a word WordNet lacks is kept only when ``confirm``
    holds it (there is nothing to check it against). Returns (accepted word -> sense, refused
    word -> reason).
    """
    forced = {v for entry in [*force, *allow] for v in _variants(entry)}
    confirmed = set(_words(confirm))
    base = {w: first_sense(w) for w in current}
    kept: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for word in _words(added):
        sense = first_sense(word)
        if word in forced or word in base:
            kept[word] = sense
            continue
        if sense is None:
            if word not in confirmed:
                refused[word] = f"added tag refused: {not_in_wordnet()}"
                continue
            reason = None
        else:
            reason = (concreteness_problem(sense) or polysemy_problem(word)
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


def _made_room(automatic: list[str], new: list[str], max_classes: int,
               counts: Mapping[str, int]) -> dict[str, str]:
    """The automatic classes (least frequent first) that leave so that the added tags ``new``
    fit in ``max_classes``, each with the reason a person reads in the run's report."""
    over = min(len(automatic), len(automatic) + len(new) - max_classes)
    if over <= 0:
        return {}
    tags = f"tag{'s' if len(new) > 1 else ''} {', '.join(new)}"
    rank = "the least frequent automatic class" if over == 1 else f"among the {over} least frequent automatic classes"
    return {word: f"made room for the added {tags}: the classes were full (max_classes {max_classes}) and "
                  f"{word} was {rank} ({counts.get(word, 0)} posts)"
            for word in reversed(automatic[-over:])}


def _confirmation_notes(words: Iterable[str], senses: Mapping[str, Any | None],
                        confirmed: Mapping[str, str]) -> dict[str, str]:
    """What a confirmation did for each confirmed word among ``words``."""
    notes = {}
    for word in words:
        if word not in confirmed:
            continue
        if senses.get(word) is None:
            notes[word] = f"not in WordNet {wordnet_version()}; a class as {confirmed[word]}"
        else:
            notes[word] = (f"in WordNet {wordnet_version()}: checked like any word (its confirmation, "
                           f"{confirmed[word]}, is not needed)")
    return notes


def _automatic(counts: Mapping[str, int], max_classes: int, limit: int, allow: Iterable[str], deny: Iterable[str],
               confirmed: Mapping[str, str], too_small: Mapping[str, Mapping[str, Any]], asked: set[str]
               ) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, Any | None]]:
    """The automatic classes among the ``limit`` most frequent words (word -> sense, removed ones
    included: later words are checked against them), the rejected words with why, the words
    WordNet lacks that had room (a person may confirm them), and every word's sense. ``asked``:
    a person's additions, scraped whatever happened before."""
    deny_reasons = _deny_reasons(deny)
    user_deny = {v for entry in deny for v in _variants(entry)}
    allowed = {v for entry in allow for v in _variants(entry)}
    kept: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    unknown: dict[str, str] = {}
    senses: dict[str, Any | None] = {}
    room = max_classes
    for word, count in list(_sorted_counts(counts).items())[:limit]:
        sense = senses[word] = first_sense(word)
        reason = _judge(word, sense, allowed, deny_reasons, user_deny, confirmed)
        if reason is None and sense is not None and word not in allowed:
            reason = overlap_problem(sense, kept)
        if reason is not None and sense is None and room > 0 and word not in deny_reasons:
            unknown[word] = reason  # WordNet lacks it, and it would have been a class: a person may confirm it
        if reason is None and room == 0:
            reason = f"beyond the {max_classes} most frequent classes"
        if reason is None and word in too_small and word not in asked and count <= too_small[word].get("posts", 0):
            reason = (f"{TOO_FEW_BEFORE} ({too_small[word].get('why', '?')}); "
                      f"tried again when more posts carry it ({count} now, {too_small[word].get('posts', 0)} then)")
            room -= 1  # keeps its place: no less frequent word is pulled in behind it to be scraped in vain
        if reason:
            rejected[word] = reason
            continue
        kept[word] = sense
        room -= 1
    return kept, rejected, unknown, senses


def select_classes(
    counts: Mapping[str, int],
    max_classes: int = DEFAULT_MAX_CLASSES,
    allow: Iterable[str] = (),
    deny: Iterable[str] = (),
    add: Iterable[str] = (),
    *,
    force: Iterable[str] = (),
    confirm: Iterable[str] | Mapping[str, str] = (),
    remove: Iterable[str] = (),
    too_small: Mapping[str, Mapping[str, Any]] | None = None,
    limit: int = CANDIDATE_LIMIT,
) -> Selection:
    """Up to ``max_classes`` classes from normalised word counts, plus the tags a person added.

    Candidates are the ``limit`` most frequent words. Precedence: ``deny`` > ``allow`` (exempt
    from every WordNet check) > the default deny list > the WordNet checks: a noun whose first
    sense is concrete (:func:`concreteness_problem`), not polysemous (:func:`polysemy_problem`)
    and neither hyponym, hypernym nor synonym of a more frequent class (:func:`overlap_problem`).
    A word WordNet lacks passes only when ``confirm`` holds it (word -> who confirmed it, or
    just the words). A removed word (``remove``) keeps its place in the ranking and is left out,
    so removing a class does not pull a less frequent word in behind it. So does a word whose
    last scrape was too small (``too_small``: word -> ``{"why", "posts"}``, see
    :func:`remember_left_out`) while no more posts carry it than then: the same evidence would
    give the same too few images.

    ``add``: tags a person added, classes once they pass :func:`check_added` (or are in
    ``force``). An added tag adds a class: it never pushes out an automatic one while there is
    room; when ``max_classes`` is reached the least frequent automatic classes make room, each
    with its reason in ``rejected`` and ``notes``. Every rejected candidate (and refused added
    tag) gets a reason.
    """
    confirmed = dict(confirm) if isinstance(confirm, Mapping) else dict.fromkeys(_words(confirm), "confirmed")
    removed = set(_words(remove))
    kept, rejected, unknown, senses = _automatic(counts, max_classes, limit, allow, deny, confirmed,
                                                 too_small or {}, asked=set(_words(add)))
    notes: dict[str, str] = {}
    automatic = [w for w in kept if w not in removed]
    # a word WordNet lacks is worth a person's look when it is as frequent as a class picked
    least = min((counts.get(w, 0) for w in automatic), default=0)
    notes |= {w: r for w, r in unknown.items() if counts.get(w, 0) >= least}
    added = [w for w in _words(add) if w not in removed]
    accepted, refused = check_added(added, automatic, force=force, allow=allow, confirm=confirmed)
    rejected |= refused
    new = [w for w in accepted if w not in automatic]
    leaving = _made_room(automatic, new, max_classes, counts)
    rejected |= leaving
    notes |= leaving
    rejected |= dict.fromkeys(sorted(removed), REMOVED)
    chosen = {**{w: kept[w] for w in automatic if w not in leaving}, **{w: accepted[w] for w in new}}
    senses |= {w: first_sense(w) for w in added if w not in senses}
    notes |= _confirmation_notes([*senses, *added], senses, confirmed)
    classes = sorted(chosen, key=lambda w: -counts.get(w, 0))  # stable: ties keep their order
    return Selection(classes, rejected, wup_matrix([chosen[w] for w in classes]), notes)


# ------------------------------------------------------------------------------- plots -----
def _bar(ax: Any, counts: Mapping[str, int], title: str, n: int) -> None:
    items = list(counts.items())[:n]
    ax.bar(range(len(items)), [c for _, c in items], color="#4c72b0")
    ax.set_xticks(range(len(items)), [t for t, _ in items], rotation=90, fontsize=8)
    ax.set_title(title)
    ax.set_ylabel("posts")


# -------------------------------------------------------------------- the one path ------
VOCABULARY = "tags/vocabulary.json"  # the tags people added, removed, forced or confirmed (Params), kept across runs


SELECTIONS = "tags/selections"


CONFIRMED_IN_FORM = "a person confirmed it in the trigger form (Tags to confirm)"


CONFIRMED_BY_SETTING = "the settings confirm it (confirm_tags)"


LEFT_OUT = "tags/left_out.json"  # classes a run left out for too few images, and their trending count then


def read_left_out(store: Storage) -> dict[str, dict[str, Any]]:
    """Classes left out of an earlier run for too few images: word -> ``{"why", "posts"}``."""
    return dict(store.read_json(LEFT_OUT)) if store.exists(LEFT_OUT) else {}


def remember_left_out(store: Storage, left_out: Mapping[str, str], kept: Iterable[str]) -> None:
    """Remember the classes this run left out (``why``, and ``posts``: their count in the newest
    trending run), forget the ones it trained. The automatic selection skips a remembered word
    until more posts carry it; a person can still add it."""
    from pixtag.tags.trending import latest_run

    memory = read_left_out(store)
    before = dict(memory)
    for word in kept:
        memory.pop(word, None)
    if left_out:
        run = latest_run(store)
        words = run.words if run is not None else {}
        memory |= {word: {"why": why, "posts": int(words.get(word, 0))} for word, why in left_out.items()}
    if memory != before:
        store.write_json(LEFT_OUT, memory)


def read_vocabulary(store: Storage) -> dict[str, list[str]]:
    """The stored vocabulary: ``added``, ``removed``, ``forced`` and ``confirmed`` words."""
    vocab = store.read_json(VOCABULARY) if store.exists(VOCABULARY) else {}
    return {key: list(vocab.get(key, [])) for key in ("added", "removed", "forced", "confirmed")}


def _fixed_selection(settings: Settings, add: list[str], force: list[str], confirmed: Mapping[str, str],
                     removed: set[str]) -> Selection:
    """``settings.classes`` (the study's fixed protocol) plus the added tags that pass the checks."""
    fixed = [c for c in settings.classes if c not in removed]
    extra = [c for c in dict.fromkeys(add) if c not in removed and c not in settings.classes]
    accepted, refused = check_added(extra, fixed, force=force, allow=settings.allow_tags,
                                    confirm=confirmed) if extra else ({}, {})
    classes = list(dict.fromkeys([*fixed, *accepted]))
    senses = {w: first_sense(w) for w in classes}
    notes = _confirmation_notes([*classes, *extra], senses, confirmed)
    rejected = dict.fromkeys(sorted(removed), REMOVED) | refused
    return Selection(classes, rejected, wup_matrix([senses[w] for w in classes]), notes)


def choose_classes(settings: Settings, store: Storage, counts: Mapping[str, int] | None = None) -> Selection:
    """The classes of a run: the one path of the DAG's ``select_classes`` and ``pixtag classes --auto``.

    Inputs: ``settings`` (fixed ``classes`` or ``max_classes`` automatic ones; ``add_tags``,
    ``force_tags``, ``confirm_tags``, ``allow_tags``, ``deny_tags``), the vocabulary stored in
    ``store`` (what people added, removed, forced or confirmed through the trigger form: it lasts
    until undone) and ``counts`` (normalised word counts; default: the newest trending run in
    ``store``). The selection is kept in ``store`` by its inputs, so the same inputs give the same
    classes without loading WordNet again. Raises :class:`~pixtag.tags.normalize.TagsError`
    when no counts can be had.
    """
    import hashlib

    from pixtag.tags.normalize import TagsError
    from pixtag.tags.trending import RUNS_PREFIX, latest_run

    vocab = read_vocabulary(store)
    removed = set(vocab["removed"])
    add = _words([*settings.add_tags, *vocab["added"]])
    force = sorted({*settings.force_tags, *vocab["forced"]})
    confirmed = {**dict.fromkeys(settings.confirm_tags, CONFIRMED_BY_SETTING),
                 **dict.fromkeys(vocab["confirmed"], CONFIRMED_IN_FORM)}
    if not settings.classes and counts is None:
        run = latest_run(store)
        if run is None:
            raise TagsError(f"no trending run in {store.url(RUNS_PREFIX)}: run `pixtag trending` "
                            "first or pass --counts FILE.json")
        counts = run.words
    too_small = {} if settings.classes else read_left_out(store)
    inputs = {"words": None if settings.classes else dict(counts or {}), "classes": list(settings.classes),
              "too_small": too_small,
              "max": settings.max_classes, "allow": list(settings.allow_tags), "deny": list(settings.deny_tags),
              "add": add, "force": force, "confirm": confirmed, "remove": sorted(removed),
              "rules": normalizer_version(), "selection": SELECTION_RULES}
    key = f"{SELECTIONS}/{hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()}.json"
    if not store.exists(key):
        if settings.classes:
            selection = _fixed_selection(settings, add, force, confirmed, removed)
        else:
            selection = select_classes(counts or {}, settings.max_classes, allow=settings.allow_tags,
                                       deny=settings.deny_tags, add=add, force=force, confirm=confirmed,
                                       remove=removed, too_small=too_small)
        # pairs: the order (most frequent first) survives the JSON file
        store.write_json(key, {"classes": selection.classes, "rejected": list(selection.rejected.items()),
                               "wup": selection.wup, "notes": list(selection.notes.items())})
    stored = store.read_json(key)
    return Selection(list(stored["classes"]), dict(stored["rejected"]), stored["wup"], dict(stored["notes"]))
