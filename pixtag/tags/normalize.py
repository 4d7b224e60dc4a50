"""Hashtags -> words: the study's normalisation (:func:`normalize`), remembered per storage.

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
"""

from __future__ import annotations

import contextlib
import functools
import unicodedata
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from pixtag.core import logs
from pixtag.core.errors import PixtagError
from pixtag.tags import nlp

if TYPE_CHECKING:
    from pixtag.core.storage import Storage


log = logs.get_logger(__name__)


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
