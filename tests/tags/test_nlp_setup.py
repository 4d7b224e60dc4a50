"""NLTK data set-up (WordNet from the Debian files, stopwords from the package) and the loaders."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from pixtag.tags import nlp
from tests.conftest import REPO
from tests.tags.conftest import run_python


def test_lexnames_table() -> None:
    rows = [line.split("\t") for line in nlp.lexnames_text().splitlines()]
    assert len(rows) == 45
    assert rows[0] == ["00", "adj.all", "3"]
    assert rows[3] == ["03", "noun.Tops", "1"]
    assert rows[28] == ["28", "noun.time", "1"]
    assert rows[29] == ["29", "verb.body", "2"]
    assert rows[44] == ["44", "adj.ppl", "3"]


def test_stopwords_are_nltks_english_list() -> None:
    words = nlp.stopwords()
    assert len(words) == 179
    assert {"the", "of", "and", "i", "don't", "ourselves"} <= words
    assert "cat" not in words


def test_lemmatize(wordnet: object) -> None:
    assert nlp.lemmatize("cats") == "cat"
    assert nlp.lemmatize("streets") == "street"
    assert nlp.lemmatize("caturday") == "caturday"


def _assert_private_real_file(path: Path) -> None:
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode), path
    assert st.st_nlink == 1, path
    assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), path


def test_setup_installs_private_copies_and_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "nltk_data"
    result = nlp.setup_nltk(target)
    assert (result.wordnet, result.stopwords) == ("installed", "installed")
    wordnet_dir = target / "corpora" / "wordnet"
    for name in (*nlp.WORDNET_FILES, "lexnames"):
        _assert_private_real_file(wordnet_dir / name)
    assert (wordnet_dir / "data.noun").read_bytes() == (nlp.WORDNET_SOURCE / "data.noun").read_bytes()
    assert (wordnet_dir / "lexnames").read_text() == nlp.lexnames_text()
    english = target / "corpora" / "stopwords" / "english"
    _assert_private_real_file(english)
    assert len(english.read_text().split()) == 179
    for folder in (target, target / "corpora", wordnet_dir):
        assert not folder.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)

    again = nlp.setup_nltk(target)
    assert (again.wordnet, again.stopwords) == ("up to date", "up to date")
    assert again.seconds < 0.5

    # A link or a writable file is repaired on the next run (NLTK would refuse it).
    (wordnet_dir / "noun.exc").unlink()
    (wordnet_dir / "noun.exc").symlink_to(nlp.WORDNET_SOURCE / "noun.exc")
    english.chmod(0o666)
    repaired = nlp.setup_nltk(target)
    assert repaired.wordnet == "installed"
    _assert_private_real_file(wordnet_dir / "noun.exc")
    _assert_private_real_file(english)


def test_setup_makes_a_group_writable_target_private(tmp_path: Path) -> None:
    target = tmp_path / "shared_nltk"
    target.mkdir()
    target.chmod(0o775)
    nlp.setup_nltk(target)
    assert not target.stat().st_mode & stat.S_IWGRP


def test_setup_without_wordnet_names_the_debian_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp, "_wordnet_found", lambda: None)
    with pytest.raises(nlp.NltkSetupError) as info:
        nlp.setup_nltk(tmp_path / "target", source=tmp_path / "no-wordnet")
    message = str(info.value)
    assert "apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index" in message
    assert str(tmp_path / "no-wordnet") in message


def test_setup_keeps_a_downloaded_wordnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user who ran nltk.download('wordnet') needs no Debian packages."""
    monkeypatch.setattr(nlp, "_wordnet_found", lambda: "/home/u/nltk_data/corpora/wordnet.zip")
    result = nlp.setup_nltk(tmp_path / "target", source=tmp_path / "no-wordnet")
    assert result.wordnet == "found elsewhere: /home/u/nltk_data/corpora/wordnet.zip"
    assert (tmp_path / "target" / "corpora" / "stopwords" / "english").is_file()
    assert not (tmp_path / "target" / "corpora" / "wordnet").exists()


LOAD_CODE = """
import json, nltk
from pixtag.tags import nlp
wn = nlp.wordnet()
cat, dog = wn.synset("cat.n.01"), wn.synset("dog.n.01")
print(json.dumps({"root": str(wn.root), "wup": cat.wup_similarity(dog), "lemma": nlp.lemmatize("cats"),
                  "stop": nltk.data.find("corpora/stopwords/english").path}))
"""


def test_script_installs_data_that_nltk_loads(tmp_path: Path) -> None:
    target = tmp_path / "data"
    done = subprocess.run(["bash", str(REPO / "scripts" / "setup_nltk.sh"), str(target)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "wordnet installed" in done.stdout
    loaded = run_python(LOAD_CODE, env={"NLTK_DATA": str(target)})
    assert loaded.returncode == 0, loaded.stderr
    info = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert info["root"] == str(target / "corpora" / "wordnet")
    assert info["stop"] == str(target / "corpora" / "stopwords" / "english")
    assert info["wup"] == pytest.approx(0.857, abs=1e-3)
    assert info["lemma"] == "cat"
    assert "RuntimeWarning" not in loaded.stderr  # NLTK refused nothing


MISSING_CODE = """
import sys, nltk
nltk.data.path[:] = [sys.argv[1]]
from pixtag.cli import main
main(["normalize", "CatsOfPixelfed"])
"""


def test_missing_wordnet_is_one_clear_error(empty_nltk_dir: Path) -> None:
    done = run_python(MISSING_CODE, str(empty_nltk_dir))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert message.startswith("pixtag: error: NLTK resource 'wordnet'")
    assert str(empty_nltk_dir) in message  # the folders searched
    assert "make setup" in message and "scripts/setup_nltk.sh" in message


def test_incomplete_wordnet_folder_is_diagnosed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    folder = tmp_path / "nltk_data"
    (folder / "corpora" / "wordnet").mkdir(parents=True)
    (folder / "corpora" / "wordnet" / "data.noun").write_text("")
    (folder / "corpora").chmod(0o777)
    monkeypatch.setattr(nltk.data, "path", [str(folder)])
    message = str(nlp.missing_wordnet_error())
    assert f"Searched: {folder}." in message
    assert f"unusable: {folder / 'corpora'} group/world-writable; lexnames missing" in message


def test_the_lean_wordnet_reader_answers_like_nltks_own() -> None:
    """pixtag's reader skips NLTK's start-up WordNet->WordNet sense map (OMW only) and must
    give the same lemmas, senses and categories as the stock reader on the same files."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    lean = nlp.wordnet()
    assert type(lean).__name__ == "EnglishWordNetReader" and lean.map30 is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stock = WordNetCorpusReader(lean.root, None)
    for word in ("cats", "geese", "flowers", "photography", "car", "halloween", "dogsofpixelfed"):
        assert lean.morphy(word, "n") == stock.morphy(word, "n"), word
        ours = [(s.name(), s.lexname(), [h.name() for h in s.hypernyms()]) for s in lean.synsets(word, "n")]
        theirs = [(s.name(), s.lexname(), [h.name() for h in s.hypernyms()]) for s in stock.synsets(word, "n")]
        assert ours == theirs, word
    cat, dog = lean.synset("cat.n.01"), lean.synset("dog.n.01")
    assert cat.wup_similarity(dog) == stock.synset("cat.n.01").wup_similarity(stock.synset("dog.n.01"))
