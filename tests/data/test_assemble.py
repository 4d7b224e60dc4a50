"""Merging the scraped parts: a class with too few images is left out of the dataset, with its
count and the minimum, and the other classes are kept whole; validation then passes on them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import open_storage
from pixtag.data.scrape import LEFT_OUT, PARTS, assemble, balanced_caps, left_out_line, too_few_images
from tests.data.build import CLASSES
from tests.data.conftest import BALANCE_RATIO, MIN_PER_CLASS, PER_CLASS


def test_too_few_images_names_the_count_and_the_minimum() -> None:
    settings = load_settings(min_per_class=10, balance_ratio=1.5)
    assert too_few_images({"cat": 30, "horse": 0, "dog": 19, "bird": 20, "sea": 9}, settings) == {
        "horse": "0 images, minimum 10",
        "sea": "9 images, minimum 10",
    }
    assert too_few_images({"cat": 30, "dog": 20}, settings) == {}
    # a class with its minimum is never left out for balance: the larger ones keep fewer images
    assert balanced_caps({"cat": 150, "fox": 85, "dog": 127}, settings) == {"cat": 127}
    assert balanced_caps({"cat": 30, "dog": 20}, settings) == {}
    assert left_out_line({"horse": "0 images, minimum 50", "sea": "25 images, minimum 50"}) == (
        "left out this run: horse (0 images, minimum 50), sea (25 images, minimum 50)")


@pytest.fixture
def scraped(base_dataset: Path, tmp_path: Path) -> Path:
    """The base dataset's images as scrape parts of its five classes, plus ``horse`` (nothing
    found) and ``sea`` (ten images, each also posted under flower)."""
    root = Path(shutil.copytree(base_dataset, tmp_path / "dataset"))
    store = open_storage(str(root))
    manifest = pd.read_parquet(root / dataset.MANIFEST)
    empty = dataset.empty_frame(dataset.DROPPED_COLUMNS)
    for label in CLASSES:
        store.write_parquet(f"{PARTS}/{label}.parquet", manifest[manifest["label"] == label].reset_index(drop=True))
        store.write_parquet(f"{PARTS}/{label}.dropped.parquet", empty)
    sea = manifest[manifest["label"] == "flower"].head(10).assign(label="sea", post_id=lambda f: "sea-" + f["post_id"])
    store.write_parquet(f"{PARTS}/sea.parquet", sea.reset_index(drop=True))
    store.write_parquet(f"{PARTS}/horse.parquet", dataset.empty_frame(dataset.MANIFEST_COLUMNS))
    for label in ("sea", "horse"):
        store.write_parquet(f"{PARTS}/{label}.dropped.parquet", empty)
    return root


def test_a_class_with_too_few_images_is_left_out_and_the_others_train(scraped: Path) -> None:
    from pixtag.data.validate import validate

    settings = load_settings(min_per_class=MIN_PER_CLASS, balance_ratio=BALANCE_RATIO, per_class=PER_CLASS,
                             background=0)
    summary = assemble(settings, [*CLASSES, "horse", "sea"], str(scraped))
    assert summary.left_out == {"horse": "0 images, minimum 25", "sea": "10 images, minimum 25"}
    assert summary.classes == list(CLASSES)
    # sea's images were flower's too: leaving sea out costs flower none of them
    assert summary.counts == dict.fromkeys(CLASSES, PER_CLASS)
    assert summary.dropped.get("duplicate_cross_class", 0) == 0 and summary.dropped[LEFT_OUT] == 10
    store = open_storage(str(scraped))
    assert dataset.read_info(store)["classes"] == list(CLASSES)
    dropped = pd.read_parquet(scraped / dataset.DROPPED)
    assert set(dropped.loc[dropped["reason"] == LEFT_OUT, "detail"]) == {"10 images, minimum 25"}
    report = validate(str(scraped), settings)  # the classes dataset.json records
    assert report.success, report.summary()
    assert report.classes == dict.fromkeys(CLASSES, PER_CLASS)


def test_a_small_class_with_its_minimum_is_kept_and_the_others_balanced_to_it(scraped: Path) -> None:
    """Fox-like: a class with fewer photos than the others but more than the minimum trains; the
    larger classes keep their first images so that validation's balance check holds."""
    from pixtag.data.validate import validate

    store = open_storage(str(scraped))
    bird = store.read_parquet(f"{PARTS}/bird.parquet")
    store.write_parquet(f"{PARTS}/bird.parquet", bird.head(12))
    settings = load_settings(min_per_class=10, balance_ratio=BALANCE_RATIO, per_class=PER_CLASS, background=0)
    summary = assemble(settings, list(CLASSES), str(scraped))
    assert summary.left_out == {} and summary.classes == list(CLASSES)
    assert summary.counts == {c: 12 if c == "bird" else 18 for c in CLASSES}  # 18 = 1.5 x 12
    manifest = pd.read_parquet(scraped / dataset.MANIFEST)
    for label in CLASSES:  # each keeps its first images (the scrape's order), as per_class does
        part = store.read_parquet(f"{PARTS}/{label}.parquet")
        kept = list(manifest.loc[manifest["label"] == label, "sha256"])
        assert kept == list(part["sha256"].head(summary.counts[label]))
    report = validate(str(scraped), settings)
    assert report.success, report.summary()
