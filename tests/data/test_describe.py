"""pixtag describe: the study's figures as PNG and a JSON summary with plausible numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import Settings
from pixtag.core.storage import open_storage
from pixtag.data.describe import describe, pixel_stats
from tests.data.build import CLASSES, tree_digest, upload_subset

FIGURES = ("pixel_counts", "aspect_ratio", "cropped_share", "intensity", "mean_images")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def described(base_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``describe`` of the base dataset into a temporary folder, run once for these tests."""
    from pixtag.core.config import load_settings

    out = tmp_path_factory.mktemp("describe")
    before = tree_digest(base_dataset)
    summary = describe(str(base_dataset), load_settings(), out=str(out))
    return {"summary": summary, "out": out, "unchanged": tree_digest(base_dataset) == before,
            "manifest": pd.read_parquet(base_dataset / dataset.MANIFEST)}


def test_writes_every_figure_as_png(described: dict[str, Any]) -> None:
    out = described["out"]
    for name in FIGURES:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        assert described["summary"]["figures"][name] == str(out / f"{name}.png")
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(described["summary"]))
    assert described["unchanged"]


def test_counts_aspect_ratios_and_crop_shares_match_the_manifest(
        described: dict[str, Any]) -> None:
    summary, m = described["summary"], described["manifest"]
    assert summary["images"] == 150
    assert sorted(summary["classes"]) == sorted(CLASSES)
    for label, stats in summary["classes"].items():
        rows = m[m["label"] == label]
        aspect = rows["orig_width"] / rows["orig_height"]
        assert stats["count"] == 30
        q = stats["aspect_ratio"]
        assert q["min"] <= q["q1"] <= q["median"] <= q["q3"] <= q["max"]
        assert q["mean"] == pytest.approx(aspect.mean(), abs=1e-3)
        assert q["median"] == pytest.approx(aspect.median(), abs=1e-3)
        assert stats["cropped_share"] == pytest.approx(rows["cropped"].mean(), abs=1e-3)
        pixels = rows["orig_width"] * rows["orig_height"]
        assert stats["pixel_count"]["max"] == pixels.max()
    # Real data: the Stanford cars are wide, so most were cropped; phone cats are near square.
    assert summary["classes"]["car"]["aspect_ratio"]["median"] > 1.3
    assert summary["classes"]["car"]["cropped_share"] > 0.8
    assert 0.8 < summary["classes"]["cat"]["aspect_ratio"]["median"] < 1.25


def test_intensity_and_mean_images_are_plausible(described: dict[str, Any]) -> None:
    summary = described["summary"]
    assert set(summary["intensity"]) == {"R", "G", "B"}
    for channel in summary["intensity"].values():
        assert 0 <= channel["min"] <= channel["p01"] <= channel["mean"] <= channel["p99"]
        assert channel["p99"] <= channel["max"] <= 255
        assert channel["max"] - channel["min"] > 200  # real photos use nearly the full range
        assert 20 < channel["std"] < 100
    for stats in summary["classes"].values():
        assert all(40 < v < 220 for v in stats["mean_image_rgb"])
    # Flowers are greener/yellower than they are blue on average.
    flower = summary["classes"]["flower"]["mean_image_rgb"]
    assert flower[1] > flower[2]
    assert summary["unreadable_images"] == 0


def test_cli_json_default_location_and_exclusions(ds: Path, cli) -> None:
    m = pd.read_parquet(ds / dataset.MANIFEST)
    (ds / dataset.EXCLUSIONS).write_text(json.dumps(
        {"sha256": m[m["label"] == "dog"]["sha256"].iloc[:2].tolist(), "post_id": []}))
    code, out, err = cli("describe", ds, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["classes"]["dog"]["count"] == 28 and summary["images"] == 148
    target = ds / "reports" / "describe"
    assert summary["summary"] == str(target / "summary.json")
    assert all((target / f"{name}.png").is_file() for name in FIGURES)


def test_unreadable_image_is_counted_not_fatal(ds: Path) -> None:
    m = pd.read_parquet(ds / dataset.MANIFEST)
    (ds / m.loc[0, "path"]).write_bytes(b"not a jpeg")
    (ds / m.loc[1, "path"]).unlink()
    stats = pixel_stats(open_storage(str(ds)), m, 224)
    assert stats.unreadable == 2
    assert sum(stats.counts.values()) == 148
    assert stats.histogram.sum() == 148 * 224 * 224 * 3


def test_s3_dataset_figures_in_reports(base_dataset: Path, aws: str, settings: Settings) -> None:
    uri = f"s3://{aws}/ds"
    upload_subset(base_dataset, uri, per_class=4)
    summary = describe(uri, settings)
    assert summary["summary"] == f"{uri}/reports/describe/summary.json"
    store = open_storage(uri)
    assert store.read_bytes("reports/describe/mean_images.png").startswith(PNG_MAGIC)
    assert store.read_json("reports/describe/summary.json")["images"] == 20


def test_each_figure_has_its_table_and_the_copies_and_dynamic_range_are_described(
        described: dict[str, Any]) -> None:
    summary, out, m = described["summary"], described["out"], described["manifest"]
    for name in (*FIGURES, "dynamic_range", "copies_pixel_counts", "copies_aspect_ratio"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
        assert summary["tables"][name] == str(out / f"{name}.json")
    ranges = json.loads((out / "dynamic_range.json").read_text())["per_image"]
    assert len(ranges) == len(m) and all(0 <= r <= 255 for r in ranges)
    assert summary["dynamic_range"]["max"] == max(ranges) and summary["dynamic_range"]["min"] == min(ranges)
    assert summary["copies"]["pixel_count"]["min"] == summary["copies"]["pixel_count"]["max"] == 224 * 224
    cropped = json.loads((out / "cropped_share.json").read_text())
    assert cropped["all"] == pytest.approx(m["cropped"].mean(), abs=1e-4)
    # these test datasets keep no originals: said, not guessed
    assert summary["originals"] == {"stored": 0, "missing": len(m)}
    assert not (out / "originals_intensity.png").exists()
