"""Words -> classes (:func:`select_classes`): concrete, visually identifiable nouns.

Class selection (:func:`select_classes`) keeps concrete, visually identifiable nouns: the
word's most frequent WordNet noun sense (its first synset) must come from a concrete
lexicographer file (:data:`CONCRETE_LEXNAMES`) and descend from ``physical_entity.n.01``; and
no two classes may be hypernym and hyponym (or synonyms) of each other.
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


VOCABULARY = "tags/vocabulary.json"  # the tags people added or removed (Params), kept across runs


SELECTIONS = "tags/selections"


def automatic_selection(store: Storage, words: Mapping[str, int], settings: Settings,
                        add: list[str], force: list[str] | None = None) -> dict[str, Any]:
    """:func:`select_classes` on these counts and settings, kept in storage by its
    inputs: the same trending counts give the same classes without loading WordNet again."""
    import hashlib

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
