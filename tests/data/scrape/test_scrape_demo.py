"""Scraping the local instance: what reaches the manifest, what is dropped and why.

One exhaustive scrape (every class timeline to its end) is shared by the checks below, and
compared with the world the instance was built from: every planted trap is accounted for.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.images import is_grayscale, near_duplicate_pairs
from pixtag.data.scrape import scrape
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.model import World
from tests.conftest import demo_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

CLASSES = ["cat", "dog", "bird", "flower", "car"]
# What the scraper must call each planted trap (None: the server never shows it on a tag timeline).
EXPECTED_REASON = {
    "locked": "locked_account",
    "unlisted": None,
    "private": None,
    "too_old": None,
    "sensitive": "sensitive",
    "spoiler": "spoiler",
    "media_nsfw": "media_nsfw",
    "opt_out_bio": "opted_out",
    "not_indexable": "opted_out",
    "two_classes": "multiple_classes",
    "animated": "animated",
    "not_image": "not_image",
    "grayscale": "grayscale",
    "duplicate_exact": "duplicate_exact",
    "duplicate_near": "duplicate_near",
    "duplicate_cross_class": "duplicate_cross_class",
}


@pytest.fixture(scope="module")
def exhaustive(demo: DemoInstance, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every class timeline scraped to its end (per_class above what the instance holds)."""
    root = tmp_path_factory.mktemp("exhaustive")
    settings = load_settings(**demo_settings(demo.url, storage=str(root / "store")))
    summary = scrape(settings, CLASSES, per_class=400, out=str(root / "ds"), progress=False)
    store = LocalStorage(root / "ds")
    return {"summary": summary, "store": store, "manifest": store.read_parquet(dataset.MANIFEST),
            "dropped": store.read_parquet(dataset.DROPPED)}


def photo_of(world: World, media_id: str) -> str | None:
    return world.media[int(media_id)].photo


def test_every_kept_image_is_clean_consenting_and_correctly_labelled(exhaustive: dict, world: World) -> None:
    manifest: pd.DataFrame = exhaustive["manifest"]
    assert set(manifest["label"]) == set(CLASSES)
    for row in manifest.itertuples():
        post = world.posts_by_id[int(row.post_id)]
        account = world.accounts[post.account_id]
        assert post.visibility == "public" and not post.sensitive and not post.spoiler_text
        assert not account.locked and account.opt_out is None and account.indexable is not False
        photo = photo_of(world, row.media_id)
        assert photo is not None and photo.split("/")[0] == row.label, (row.post_id, photo, row.label)
    photos = [photo_of(world, m) for m in manifest["media_id"]]
    assert len(photos) == len(set(photos)), "an image is in the manifest twice"
    assert manifest["sha256"].is_unique
    assert not near_duplicate_pairs(list(manifest["phash"]), 6)
    assert not manifest["sensitive"].any() and set(manifest["visibility"]) == {"public"}


def test_stored_images_are_rgb_224_colour(exhaustive: dict) -> None:
    store, manifest = exhaustive["store"], exhaustive["manifest"]
    for path in manifest["path"]:  # every one: validation checks every one
        with Image.open(store.local_path(path)) as img:
            assert img.mode == "RGB" and img.size == (224, 224)
            assert not is_grayscale(img), path
    originals = [store.local_path(p) for p in manifest["original_path"]]
    assert all(p.is_file() for p in originals)


def test_every_reachable_trap_is_dropped_for_its_reason(exhaustive: dict, world: World) -> None:
    manifest, dropped = exhaustive["manifest"], exhaustive["dropped"]
    kept_posts = set(manifest["post_id"].astype(int))
    dropped_posts = dropped[dropped["post_id"] != ""]
    reasons_by_post: dict[int, set[str]] = {}
    for row in dropped_posts.itertuples():
        reasons_by_post.setdefault(int(row.post_id), set()).add(row.reason)
    missed = []
    for trap in world.traps:
        expected = EXPECTED_REASON[trap.kind]
        if trap.kind.startswith("duplicate_") and trap.kind != "duplicate_cross_class":
            # Which copy comes first (newest first) decides which one is kept: judge by image.
            continue
        assert trap.post_id not in kept_posts, (trap, "trap post reached the manifest")
        if expected is None:
            assert trap.post_id not in reasons_by_post, (trap, "server should never show this post")
        elif expected not in reasons_by_post.get(trap.post_id, set()):
            missed.append((trap.kind, trap.post_id, reasons_by_post.get(trap.post_id)))
    assert not missed


def test_duplicates_keep_exactly_one_copy(exhaustive: dict, world: World) -> None:
    manifest, dropped = exhaustive["manifest"], exhaustive["dropped"]
    kept_photos = Counter(photo_of(world, m) for m in manifest["media_id"])
    for trap in world.traps:
        if trap.kind not in ("duplicate_exact", "duplicate_near"):
            continue
        assert kept_photos[trap.photo] <= 1
        copy_rows = dropped[(dropped["post_id"] == str(trap.post_id)) | dropped["media_id"].map(
            lambda m, p=trap.photo: m != "" and photo_of(world, m) == p)]
        assert trap.kind in set(copy_rows["reason"]) or kept_photos[trap.photo] == 1


def test_cross_class_images_are_dropped_in_every_class(exhaustive: dict, world: World) -> None:
    kept_photos = {photo_of(world, m) for m in exhaustive["manifest"]["media_id"]}
    for trap in world.traps:
        if trap.kind == "duplicate_cross_class":
            assert trap.photo not in kept_photos, trap


def test_summary_counts_match_the_files(exhaustive: dict) -> None:
    summary, manifest, dropped = exhaustive["summary"], exhaustive["manifest"], exhaustive["dropped"]
    assert summary.counts == manifest["label"].value_counts().to_dict()
    assert summary.dropped == dropped["reason"].value_counts().to_dict()
    assert list(manifest.columns[: len(dataset.MANIFEST_COLUMNS)]) == list(dataset.MANIFEST_COLUMNS)
    # Every class holds all of its clean reachable photos but the cross-class and near-duplicate losses.
    for label in CLASSES:
        assert 150 <= summary.counts[label] <= 171


def test_rescrape_downloads_nothing_and_gives_the_same_manifest(
        exhaustive: dict, demo: DemoInstance, tmp_path: Path) -> None:
    settings = load_settings(**demo_settings(demo.url, storage=str(tmp_path / "store")))
    out = exhaustive["store"].uri
    before = demo.stats()["requests"].get("media", 0)
    again = scrape(settings, CLASSES, per_class=400, out=out, progress=False)
    assert demo.stats()["requests"].get("media", 0) == before
    assert all(info["downloaded"] == 0 for info in again.by_class.values())
    pd.testing.assert_frame_equal(LocalStorage(out).read_parquet(dataset.MANIFEST), exhaustive["manifest"])


def test_exclusions_and_the_suggestion_ledger_are_honoured(demo: DemoInstance, world: World,
                                                           exhaustive: dict, tmp_path: Path) -> None:
    from pixtag.data import ledger
    manifest = exhaustive["manifest"]
    cats = manifest[manifest["label"] == "cat"]
    excluded_post = cats.iloc[0]
    suggested = cats[cats["post_id"] != excluded_post.post_id].iloc[0]
    out = LocalStorage(tmp_path / "ds")
    out.write_json(dataset.EXCLUSIONS, {"post_id": [excluded_post.post_id], "sha256": []})
    store = LocalStorage(tmp_path / "store")
    ledger.append(store, [suggested.phash], source="test")
    settings = load_settings(**demo_settings(demo.url, storage=str(store.root)))
    scrape(settings, ["cat"], per_class=20, out=str(out.root), progress=False)
    kept = out.read_parquet(dataset.MANIFEST)
    dropped = out.read_parquet(dataset.DROPPED).set_index("post_id")
    assert excluded_post.post_id not in set(kept["post_id"])
    assert suggested.sha256 not in set(kept["sha256"])
    assert dropped.loc[excluded_post.post_id, "reason"] == "excluded"
    assert dropped.loc[suggested.post_id, "reason"] == "suggested_by_pixtag"


def test_a_trending_run_spares_each_class_asking_for_the_trending_list(demo: DemoInstance, tmp_path: Path) -> None:
    from pixtag.tags.trending import trending

    settings = load_settings(**demo_settings(demo.url, storage=str(tmp_path / "store")))

    def asked() -> int:
        return demo.stats()["requests"].get("trending", 0)

    before = asked()
    scrape(settings, ["cat", "dog"], per_class=10, out=str(tmp_path / "alone"), progress=False)
    assert asked() - before == 2  # no trending run stored: each class asks the instance
    listed = trending(settings, posts=100).extra["instance_trending"]
    assert listed and asked() - before == 3
    summary = scrape(settings, ["cat", "dog"], per_class=10, out=str(tmp_path / "after"), progress=False)
    assert asked() - before == 3  # the run's copy served both classes
    assert all(info["kept"] == 10 for info in summary.by_class.values())


@pytest.fixture(scope="module")
def all_tags(exhaustive: dict, tmp_path_factory: pytest.TempPathFactory, demo: DemoInstance) -> dict[str, Any]:
    """The same scrape with ``two_class_posts: all_tags``, into a copy of the exhaustive dataset
    (its downloads are reused)."""
    import shutil

    root = tmp_path_factory.mktemp("all-tags")
    shutil.copytree(exhaustive["store"].root, root / "ds")
    settings = load_settings(**demo_settings(demo.url, storage=str(root / "store"), two_class_posts="all_tags"))
    summary = scrape(settings, CLASSES, per_class=400, out=str(root / "ds"), progress=False)
    store = LocalStorage(root / "ds")
    return {"summary": summary, "manifest": store.read_parquet(dataset.MANIFEST),
            "dropped": store.read_parquet(dataset.DROPPED), "root": root, "settings": settings}


def test_two_class_posts_are_kept_with_every_tag_of_their_post(all_tags: dict, exhaustive: dict, world: World) -> None:
    """``all_tags``: each photo of a post tagged with two classes is kept once, labelled with both
    (the post's tags, not what the photo shows: an album's dog photo is labelled cat and dog)."""
    manifest = all_tags["manifest"]
    assert "multiple_classes" not in set(all_tags["dropped"]["reason"])
    truth = {(str(t.post_id), str(t.media_id)): t for t in world.two_class_photos}
    several = manifest[manifest[dataset.LABELS].str.contains(",")]
    kept = {(p, m) for p, m in zip(several["post_id"], several["media_id"], strict=True)}
    assert kept and kept <= set(truth)
    for row in several.itertuples():
        photo = truth[(row.post_id, row.media_id)]
        assert getattr(row, dataset.LABELS) == ",".join(sorted(photo.tagged)) and row.label in photo.tagged
    assert {truth[k].how for k in kept} == {"album", "habit"}
    assert not manifest.duplicated(subset=["post_id", "media_id"]).any() and manifest["sha256"].is_unique
    # every other image is as the study's rule keeps it, with its one label
    single = manifest[~manifest[dataset.LABELS].str.contains(",")]
    assert (single[dataset.LABELS] == single["label"]).all()
    assert set(single["sha256"]) <= set(exhaustive["manifest"]["sha256"])
    first = several.iloc[0]
    assert dataset.label_sets(several.iloc[:1]) == [tuple(sorted(truth[(first["post_id"], first["media_id"])].tagged))]


def test_a_dataset_with_several_labels_per_image_passes_validation(all_tags: dict) -> None:
    from pixtag.data.validate import validate

    report = validate(str(all_tags["root"] / "ds"), all_tags["settings"], classes=CLASSES)
    assert report.success, report.summary()
