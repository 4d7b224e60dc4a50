"""Open-set suggestions: a model trained with background images says nothing on photos of
other subjects, while class photos keep their tags.

One instance serving the labelled photos *and* the everyday photos of ../shared/data/others,
one scrape with background, one training: every check below reads from them. Held-out photos
are those the scrape never kept (compared by content hash).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.images import ImageRejected, prepare
from pixtag.data.scrape import class_variants, scrape, screen_background
from pixtag.data.validate import background_frame, validate
from pixtag.model.backbones.weights import LITE0
from pixtag.model.classifier.openset import BACKGROUND, confidence, precision_at, tag_probabilities, wrong_confidence
from pixtag.model.classifier.thresholds import choose_threshold
from pixtag.model.promotion.gate import Champion, decide
from pixtag.model.promotion.register import register
from pixtag.model.training.train import train
from pixtag.tags.normalize import normalize
from pixtag.tags.select import select_classes
from pixtag.tags.trending import trending
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.builder import build_world
from pixtag_demo.world.vocab import OTHER_TRAPS
from tests.conftest import DEMO_TOKEN, REPO, demo_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

CLASSES = ["bird", "car", "cat", "dog", "flower"]
PER_CLASS = 40


def others_dir() -> Path:
    return REPO.parent / "shared" / "data" / "others"


# --- pure parts ---------------------------------------------------------------------------
def test_a_tag_must_beat_the_background() -> None:
    labels = [BACKGROUND, "cat", "dog"]
    probs = np.array([[0.9, 0.6, 0.1], [0.1, 0.7, 0.3]])
    assert tag_probabilities(probs, labels).tolist() == [[0.0, 0.0], [0.7, 0.3]]
    assert confidence(probs, labels).tolist() == [0.0, 0.7]
    assert wrong_confidence(probs, labels, ["cat", "cat"]).tolist() == [0.0, 0.3]
    # no background column: the calibrated probabilities as they are
    assert tag_probabilities(probs[:, 1:], labels[1:]).tolist() == probs[:, 1:].tolist()


def test_the_threshold_lets_at_most_the_target_through() -> None:
    scores = np.linspace(0.01, 1.0, 100)
    for target in (0.0, 0.03, 0.1, 0.5):
        t = choose_threshold(scores, target)
        assert np.mean(scores >= t) <= target
        assert np.mean(scores >= np.nextafter(t, 0) - 0.01) > target  # and it is the smallest
    assert choose_threshold(np.zeros(10), 0.05) == pytest.approx(1e-6)


def test_precision_at_a_realistic_mix() -> None:
    # 15 % class posts, all tagged right; 30 % of the rest tagged wrongly: 37 % are right
    assert precision_at(0.15, 1.0, 1.0, 0.30) == pytest.approx(0.15 / (0.15 + 0.85 * 0.30))
    assert precision_at(0.15, 0.0, 0.0, 0.0) is None


def test_the_gate_refuses_more_false_suggestions() -> None:
    champion = Champion("3", tuple(CLASSES), 0.97, 0.97, "candidate_split", false_suggestion_rate=0.02)
    refused = decide(0.98, tuple(CLASSES), champion, 0.9, 0.02, false_rate=0.10)
    assert not refused.passed and "false-suggestion rate 0.1000 is above champion v3 0.0200" in refused.reason
    assert decide(0.98, tuple(CLASSES), champion, 0.9, 0.02, false_rate=0.035).passed


def test_background_overlapping_a_class_image_is_named() -> None:
    import pandas as pd

    frame = pd.DataFrame({"label": ["cat", BACKGROUND, BACKGROUND], "sha256": ["a" * 64, "a" * 64, "b" * 64],
                          "phash": ["0" * 16, "f" * 16, "0" * 16 + ""], "row_ref": ["r0", "r1", "r2"]})
    out = background_frame(frame, 6)
    assert out["row_ref"].tolist() == ["r1", "r2"]
    assert out["class_overlap"].tolist() == ["same bytes as r0", "near duplicate of r0 (distance 0)"]


# --- the instance, scraped and trained on once ----------------------------------------------
@pytest.fixture(scope="module")
def instance(photos: Path) -> Iterator[DemoInstance]:
    world = build_world(photos, others=others_dir())
    with DemoInstance(world=world, token=DEMO_TOKEN) as demo:
        yield demo


@pytest.fixture(scope="module")
def trained(instance: DemoInstance, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openset")
    values = demo_settings(instance.url, storage=str(root / "ds"), backbone=LITE0, per_class=PER_CLASS,
                           background=2 * PER_CLASS, min_per_class=30, mlflow_uri=f"sqlite:///{root / 'mlflow.db'}")
    settings = load_settings(**values)
    summary = scrape(settings, CLASSES, out=settings.storage, progress=False)
    result = train(settings)
    store = LocalStorage(root / "ds")
    return {"root": root, "values": values, "settings": settings, "scrape": summary, "train": result,
            "store": store, "manifest": store.read_parquet(dataset.MANIFEST),
            "dropped": store.read_parquet(dataset.DROPPED)}


def test_everyday_photos_are_most_of_the_public_timeline(instance: DemoInstance) -> None:
    world = instance.world
    feed = world.public_timeline(limit=40)
    while len(feed) < 600:
        feed += world.public_timeline(limit=40, max_id=feed[-1].id)
    shown = [world.media[p.media_ids[0]] for p in feed[:600]]
    of_classes = sum(1 for m in shown if m.photo)
    assert of_classes < len(shown) / 2  # photos of the classes are a minority
    assert sum(1 for m in shown if m.other) > of_classes / 2
    trap_tags = {tag for tag, _ in OTHER_TRAPS.values()}
    assert trap_tags <= {t for p in world.posts if p.kind == "other_trap" for t in p.hashtags}


def test_trending_still_picks_the_five_classes(instance: DemoInstance, tmp_path: Path) -> None:
    settings = load_settings(**demo_settings(instance.url, storage=str(tmp_path / "s")))
    counts = trending(settings, posts=1000)
    assert sorted(select_classes(counts.words, 5).classes) == CLASSES


def test_background_images_carry_no_class_tag(trained: dict[str, Any], instance: DemoInstance) -> None:
    world, manifest = instance.world, trained["manifest"]
    background = manifest[manifest["label"] == BACKGROUND]
    assert len(background) == 2 * PER_CLASS
    assert trained["scrape"].counts[BACKGROUND] == 2 * PER_CLASS
    assert set(manifest["label"]) == {*CLASSES, BACKGROUND}
    spellings = {t.lower() for c in CLASSES for t in world.class_tags[c]}
    for post_id in background["post_id"]:
        post = world.posts_by_id[int(post_id)]
        words = {w for tag in post.hashtags for w in normalize(tag)}
        assert not words & set(CLASSES) and not {t.lower() for t in post.hashtags} & spellings, post
        assert post.kind in ("other", "filler", "noise"), post.kind  # never a privacy trap
    trap_posts = {str(p.id) for p in world.posts if p.kind.startswith("other_")}
    assert not trap_posts & set(manifest["post_id"])
    dropped = trained["dropped"]
    assert (dropped["reason"] == "class_tag").any()
    hot = dropped[dropped["detail"].str.contains("dog") & (dropped["reason"] == "class_tag")]
    assert len(hot)  # #HotDog on food: a class word, so never background
    assert not set(background["sha256"]) & set(manifest[manifest["label"] != BACKGROUND]["sha256"])


def test_screen_background_uses_raw_and_normalised_spellings(instance: DemoInstance) -> None:
    from pixtag.sources.pixelfed import Client

    world = instance.world
    post = next(p for p in world.posts if p.kind == "other" and p.visibility == "public"
                and world.accounts[p.account_id].local)
    with Client(load_settings(**demo_settings(instance.url))) as client:
        base = client.status(str(post.id))
    spellings = set(class_variants("dog", ["DogsOfPixelfed"]))
    assert screen_background(base, CLASSES, spellings) is None
    tagged = base.model_copy(update={"tag_names": ("HotDog",), "content": ""})
    assert screen_background(tagged, CLASSES, spellings) == ("class_tag", "dog")
    tagged = base.model_copy(update={"tag_names": ("DogsOfPixelfed",), "content": ""})
    assert screen_background(tagged, CLASSES, spellings) == ("class_tag", "dog,dogsofpixelfed")
    private = base.model_copy(update={"visibility": "unlisted"})
    assert screen_background(private, CLASSES, spellings)[0] == "not_public"


def test_validation_checks_the_background(trained: dict[str, Any], tmp_path: Path) -> None:
    report = validate(str(trained["store"].root), load_settings(**trained["values"]))
    assert report.success, report.summary()
    assert report.classes[BACKGROUND] == 2 * PER_CLASS
    # a copy whose background repeats a class image fails its own expectation
    copy = tmp_path / "copy"
    shutil.copytree(trained["store"].root, copy, ignore=shutil.ignore_patterns("features", "reports"))
    manifest = trained["manifest"].copy()
    first_bg = manifest.index[manifest["label"] == BACKGROUND][0]
    cat = manifest[manifest["label"] == "cat"].iloc[0]
    manifest.loc[first_bg, ["sha256", "phash", "path"]] = [cat["sha256"], cat["phash"], cat["path"]]
    LocalStorage(copy).write_parquet(dataset.MANIFEST, manifest)
    bad = validate(str(copy), load_settings(**trained["values"]))
    assert not bad.success
    assert any(f.suite == "background" and f.column == "class_overlap" for f in bad.failed), bad.summary()


def test_training_logs_the_open_set_figures(trained: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    result = trained["train"]
    assert result["labels"] == CLASSES  # the background is never a tag
    assert result["background_images"] == 2 * PER_CLASS and result["test_background_images"] >= 5
    assert 0 < result["threshold"] < 1 and "out-of-fold" in result["threshold_source"]
    metrics = MlflowClient(trained["settings"].mlflow_uri).get_run(result["run_id"]).data.metrics
    for key in ("false_suggestion_rate", "abstention_rate", "precision_at_share", "threshold", "test_accuracy"):
        assert key in metrics, key
    assert metrics["false_suggestion_rate"] == result["false_suggestion_rate"]


def _unseen(folder: Path, seen: set[str], out: Path, per_folder: int) -> Path:
    """Links to up to ``per_folder`` photos per sub-folder whose content the scrape never kept."""
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        kept = 0
        for path in sorted(sub.glob("*.jpg")):
            try:
                sha = prepare(path.read_bytes()).sha256
            except ImageRejected:
                continue
            if sha in seen or kept >= per_folder:
                continue
            (out / sub.name).mkdir(parents=True, exist_ok=True)
            (out / sub.name / path.name).symlink_to(path)
            kept += 1
    return out


@pytest.fixture(scope="module")
def held_out(trained: dict[str, Any], photos: Path) -> dict[str, Path]:
    seen = set(trained["manifest"]["sha256"])
    root = trained["root"]
    return {"photos": _unseen(photos, seen, root / "unseen-photos", 8),
            "others": _unseen(others_dir(), seen, root / "unseen-others", 4)}


def test_photos_of_other_subjects_get_no_tag(trained: dict[str, Any], held_out: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The champion of the issue tagged 31 % of such photos; a model that learned the
    background from 80 timeline images must stay far below that, and keep class photos."""
    for key, value in trained["values"].items():
        monkeypatch.setenv(f"PIXTAG_{key.upper()}", json.dumps(value) if isinstance(value, list) else str(value))
    result = CliRunner().invoke(cli, ["evaluate", "--photos", str(held_out["photos"]), "--others",
                                      str(held_out["others"]), "--model", trained["train"]["model_uri"], "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["others_images"] >= 40 and report["images"] >= 35
    assert report["false_suggestion_rate"] <= 0.15, report
    assert report["accuracy"] >= 0.9 and report["abstention_rate"] <= 0.15, report
    assert 0 < report["precision_at_share"] <= 1


def test_a_sunset_gets_no_tag(trained: dict[str, Any], held_out: dict[str, Path]) -> None:
    from pixtag.model.serving.suggest import suggest

    sunsets = sorted((held_out["others"] / "sky_sunset").glob("*.jpg"))
    results = suggest(trained["settings"], sunsets, trained["train"]["model_uri"])
    assert sum(r["no_confident_tag"] for r in results) >= len(sunsets) - 1, results


def test_the_gate_refuses_a_candidate_with_more_false_suggestions(trained: dict[str, Any]) -> None:
    settings = load_settings(**trained["values"] | {"model_name": "openset-gate"})
    assert register(settings, trained["train"]["run_id"])["promoted"]
    # same images and classifier (same accuracy), but threshold 0: every photo gets a tag
    loose = train(load_settings(**trained["values"] | {"threshold": 0.0}))
    assert loose["test_accuracy"] == trained["train"]["test_accuracy"]
    assert loose["false_suggestion_rate"] == 1.0 and loose["threshold_source"] == "settings"
    decision = register(settings, loose["run_id"])
    assert decision["decision"] == "rejected" and "false-suggestion rate" in decision["reason"], decision
    assert decision["champion"]["scored_on"] == "candidate_split"
