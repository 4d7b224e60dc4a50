"""pixtag validate: a good dataset passes; each kind of corruption fails, named in the report."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from pixtag.cli import main
from pixtag.core import dataset
from pixtag.core.config import Settings
from pixtag.core.storage import open_storage
from pixtag.data.validate import (
    SUITE_DIR,
    SUITES,
    SuiteError,
    class_counts,
    validate,
)
from tests.data.build import CLASSES, add_image, tree_digest, upload_subset
from tests.data.conftest import MIN_PER_CLASS

CLASS_ARGS = ("--classes", ",".join(CLASSES))
MIN_ARGS = ("--min-per-class", str(MIN_PER_CLASS))
N_EXPECTATIONS = sum(
    len(json.loads((SUITE_DIR / f"{name}.json").read_text())["expectations"]) for name in SUITES)


def manifest(ds: Path) -> pd.DataFrame:
    return pd.read_parquet(ds / dataset.MANIFEST)


def save(ds: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(ds / dataset.MANIFEST, index=False)


def failed_keys(report: dict) -> set[str]:
    """``expectation(column)`` of each failure, e.g. ``expect_column_values_to_be_unique(sha256)``."""
    return {f"{f['expectation']}({f['column'] or ''})" for f in report["failed"]}


# ------------------------------------------------------------------ the good dataset -------
@pytest.fixture(scope="module")
def good(base_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``pixtag validate DIR --json`` on a copy of the good dataset, run once for these tests."""
    ds = Path(shutil.copytree(base_dataset, tmp_path_factory.mktemp("good") / "dataset"))
    before = tree_digest(ds)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("PIXTAG_CLASSES", ",".join(CLASSES))
        mp.setenv("PIXTAG_MIN_PER_CLASS", str(MIN_PER_CLASS))
        try:
            main(["validate", str(ds), "--json"])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return {"code": code, "report": json.loads(out.getvalue()), "ds": ds, "before": before}


def test_good_dataset_passes_every_expectation(good: dict[str, Any]) -> None:
    report = good["report"]
    assert good["code"] == 0, report
    assert report["success"] is True and report["failed"] == []
    assert report["evaluated"] == report["passed"] == N_EXPECTATIONS
    assert report["rows"] == 150 and report["excluded"] == 0
    assert report["classes"] == {c: 30 for c in CLASSES}


def test_good_dataset_data_docs_in_reports_show_every_suite(good: dict[str, Any]) -> None:
    index = good["ds"] / "reports" / "data_docs" / "index.html"
    assert good["report"]["docs"] == str(index) and index.is_file()
    pages = [p.read_text() for p in index.parent.glob("validations/**/*.html")]
    assert len(pages) == 3
    text = "".join(pages)
    for description in ("No image appears twice", "Every stored image has colour content",
                        "Classes are balanced", "No background image is also a class image"):
        assert description in text


def test_validation_writes_only_reports(good: dict[str, Any]) -> None:
    after = tree_digest(good["ds"])
    assert {k: v for k, v in after.items() if not k.startswith("reports/")} == good["before"]
    assert not any(k.startswith("reports/") for k in good["before"])


# ------------------------------------------------------------------ corruptions ------------
def _duplicate_row(ds: Path) -> list[str]:
    m = manifest(ds)
    save(ds, pd.concat([m, m.iloc[[3]]], ignore_index=True))
    return [m.loc[3, "sha256"]]


def _grayscale_content(ds: Path) -> list[str]:
    m = manifest(ds)
    path = ds / m.loc[4, "path"]
    Image.open(path).convert("L").convert("RGB").save(path, quality=95)
    return [m.loc[4, "path"], "image_is_color=False"]


def _grayscale_mode(ds: Path) -> list[str]:
    m = manifest(ds)
    path = ds / m.loc[40, "path"]
    Image.open(path).convert("L").save(path, format="JPEG", quality=95)
    return [m.loc[40, "path"], "image_mode='L'"]


def _wrong_label(ds: Path) -> list[str]:
    m = manifest(ds)
    m.loc[7, "label"] = "cta"
    save(ds, m)
    return ["label='cta'", m.loc[7, "path"]]


def _wrong_size(ds: Path) -> list[str]:
    m = manifest(ds)
    path = ds / m.loc[50, "path"]
    Image.open(path).resize((100, 100)).save(path, quality=95)
    return [m.loc[50, "path"], "image_width=100", "image_height=100"]


def _near_duplicate(ds: Path, photos: Path) -> list[str]:
    """A re-encoded copy of a photo already in the dataset: new sha256, nearly the same phash."""
    m = manifest(ds)
    buf = io.BytesIO()
    Image.open(photos / "cat" / "cat_0001.jpg").save(buf, format="JPEG", quality=60)
    row = add_image(open_storage(str(ds)), buf.getvalue(), "dog", 999)
    assert row["sha256"] not in set(m["sha256"])
    save(ds, dataset.to_frame([*m.to_dict("records"), row], dataset.MANIFEST_COLUMNS))
    return [row["path"], "near_duplicate_of='cat:0 images/"]


def _labels_outside_the_set(ds: Path) -> list[str]:
    """Several labels per image (two_class_posts: all_tags): one names no class of the set."""
    m = manifest(ds)
    m[dataset.LABELS] = m["label"]
    m.loc[12, dataset.LABELS] = f"{m.loc[12, 'label']},horse"
    m.loc[13, dataset.LABELS] = "cat,dog" if m.loc[13, "label"] in ("cat", "dog") else f"{m.loc[13, 'label']},cat"
    save(ds, m)
    return ["horse not a class of the set", m.loc[12, "path"]]


def _sensitive(ds: Path) -> list[str]:
    m = manifest(ds)
    m.loc[9, "sensitive"] = True
    save(ds, m)
    return ["sensitive=True", m.loc[9, "path"]]


def _unlisted(ds: Path) -> list[str]:
    m = manifest(ds)
    m.loc[10, "visibility"] = "unlisted"
    save(ds, m)
    return ["visibility='unlisted'", m.loc[10, "path"]]


def _missing_column(ds: Path) -> list[str]:
    save(ds, manifest(ds).drop(columns=["visibility"]))
    return ["missing column(s): visibility"]


def _missing_image(ds: Path) -> list[str]:
    m = manifest(ds)
    (ds / m.loc[11, "path"]).unlink()
    return [m.loc[11, "path"], "does not exist"]


def _too_few(ds: Path) -> list[str]:
    m = manifest(ds)
    dogs = m.index[m["label"] == "dog"][:10]
    save(ds, m.drop(index=dogs))
    return ["dog: count=20"]


def _imbalanced(ds: Path) -> list[str]:
    m = manifest(ds)
    dogs = m.index[m["label"] == "dog"][:15]
    save(ds, m.drop(index=dogs))
    return ["cat: ratio_to_smallest=2.0"]


UNIQUE = "expect_column_values_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
CORRUPTIONS: dict[str, tuple[Callable, set[str], tuple[str, ...]]] = {
    "duplicate row": (_duplicate_row, {f"{UNIQUE}(sha256)",
                                       "expect_compound_columns_to_be_unique()"}, ()),
    "grayscale content": (_grayscale_content, {f"{IN_SET}(image_is_color)"}, ()),
    "grayscale mode": (_grayscale_mode, {f"{IN_SET}(image_is_color)", f"{IN_SET}(image_mode)"},
                       ()),
    "wrong label": (_wrong_label, {f"{IN_SET}(label)"}, ()),
    "not 224x224": (_wrong_size, {f"{BETWEEN}(image_width)", f"{BETWEEN}(image_height)"}, ()),
    "near duplicate": (_near_duplicate, {"expect_column_values_to_be_null(near_duplicate_of)"},
                       ()),
    "labels outside the set": (_labels_outside_the_set, {"expect_column_values_to_be_null(labels_problem)"}, ()),
    "sensitive": (_sensitive, {f"{IN_SET}(sensitive)"}, ()),
    "unlisted": (_unlisted, {f"{IN_SET}(visibility)"}, ()),
    "missing column": (_missing_column, {"expect_table_columns_to_match_set()",
                                         "expect_column_values_to_not_be_null(visibility)",
                                         f"{IN_SET}(visibility)"}, ()),
    "missing image": (_missing_image, {"expect_column_values_to_be_null(image_error)"}, ()),
    "too few in a class": (_too_few, {f"{BETWEEN}(count)"}, ()),
    "imbalanced": (_imbalanced, {f"{BETWEEN}(ratio_to_smallest)"}, ("--min-per-class", "10")),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_fails_with_a_report_naming_it(name: str, ds: Path, photos: Path, cli,
                                                  tmp_path: Path) -> None:
    corrupt, expected, extra = CORRUPTIONS[name]
    needles = corrupt(ds, photos) if name == "near duplicate" else corrupt(ds)
    before = tree_digest(ds)
    docs = tmp_path / "docs"
    code, out, err = cli("validate", ds, *CLASS_ARGS, *(extra or MIN_ARGS), "--docs", docs,
                         "--json")
    assert code == 1 and "decoding: 100%|" not in err
    report = json.loads(out)
    assert report["success"] is False
    assert failed_keys(report) == expected
    text = json.dumps(report["failed"])
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text}"
    assert (docs / "index.html").is_file()
    assert tree_digest(ds) == before  # validation never modifies the dataset


def test_text_report_names_expectation_and_offending_values(ds: Path, cli) -> None:
    sha = _duplicate_row(ds)[0]
    gray_path = _grayscale_content(ds)[0]
    _wrong_label(ds)
    code, out, err = cli("validate", ds, *CLASS_ARGS, *MIN_ARGS)
    assert code == 1
    assert out.startswith("FAILED")
    assert "decoding: 100%|" in err  # a progress bar while the images are decoded (not with --json)
    lines = out.splitlines()
    assert any("expect_column_values_to_be_unique(sha256)" in line for line in lines)
    assert any(sha in line for line in lines)
    # offending rows are named by contact-sheet index (as on `pixtag review` sheets) and path
    assert any(f"cat:4 {gray_path}: image_is_color=False" in line for line in lines)
    assert any("label='cta'" in line for line in lines)
    assert "Data Docs: " + str(ds / "reports" / "data_docs" / "index.html") in out
    docs = "".join(p.read_text() for p in (ds / "reports" / "data_docs").rglob("*.html"))
    assert gray_path in docs and "cta" in docs  # the Data Docs list the offending rows too


def test_excluded_rows_are_not_validated(ds: Path, settings: Settings, tmp_path: Path) -> None:
    gray_path = _grayscale_content(ds)[0]
    sha = manifest(ds).set_index("path").loc[gray_path, "sha256"]
    (ds / dataset.EXCLUSIONS).write_text(json.dumps({"sha256": [sha], "post_id": []}))
    report = validate(str(ds), settings, docs_dir=tmp_path / "docs")
    assert report.success, report.summary()
    assert report.rows == 149 and report.excluded == 1


def test_class_counts_balance_formulation() -> None:
    labels = pd.Series(["a"] * 30 + ["b"] * 20, dtype="string")
    frame = class_counts(labels, ["a", "b", "c"])  # "c" has no images at all
    assert frame["count"].tolist() == [30, 20, 0]
    assert frame["ratio_to_smallest"].isna().all()  # smallest is 0: the count check fails
    frame = class_counts(labels, ["a", "b"])
    assert frame["ratio_to_smallest"].tolist() == [1.5, 1.0]


# ------------------------------------------------------------------ errors -----------------
def test_no_class_set_is_an_error(ds: Path, cli) -> None:
    code, _, err = cli("validate", ds)
    assert code == 2 and "needs the class set" in err


def test_missing_manifest_is_an_error(tmp_path: Path, cli) -> None:
    code, _, err = cli("validate", tmp_path / "nothing", *CLASS_ARGS)
    assert code == 2 and "manifest.parquet is missing" in err


def test_malformed_exclusions_is_an_error_and_left_alone(ds: Path, cli) -> None:
    (ds / dataset.EXCLUSIONS).write_text('["not", "an", "object"]')
    before = tree_digest(ds)
    code, _, err = cli("validate", ds, *CLASS_ARGS)
    assert code == 2 and "exclusions.json is malformed" in err
    assert tree_digest(ds) == before


def test_broken_suite_is_an_error_not_a_silently_dropped_check(ds: Path, settings: Settings,
                                                               tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    for name in SUITES:
        doc = json.loads((SUITE_DIR / f"{name}.json").read_text())
        if name == "manifest":
            doc["expectations"].append({"type": "expect_colum_typo", "kwargs": {}})
        (suites / f"{name}.json").write_text(json.dumps(doc))
    with pytest.raises(SuiteError, match="expect_colum_typo"):
        validate(str(ds), settings, docs_dir=tmp_path / "docs", suite_dir=suites)


def test_suite_files_are_gx_suites_with_parameters() -> None:
    text = "".join((SUITE_DIR / f"{name}.json").read_text() for name in SUITES)
    for parameter in ("manifest_columns", "labels", "image_size", "min_per_class",
                      "balance_ratio", "min_background"):
        assert f'"$PARAMETER": "{parameter}"' in text


# ------------------------------------------------------------------ S3 ---------------------
def test_s3_dataset_docs_uploaded_under_reports(base_dataset: Path, aws: str) -> None:
    from pixtag.core.config import load_settings

    uri = f"s3://{aws}/datasets/v1"
    upload_subset(base_dataset, uri, per_class=4)
    before = sorted(open_storage(uri).list())
    report = validate(uri, load_settings(classes=list(CLASSES), min_per_class=4))
    assert report.success, report.summary()
    assert report.rows == 20
    assert report.docs == f"{uri}/reports/data_docs/index.html"
    after = sorted(open_storage(uri).list())
    new = set(after) - set(before)
    assert "reports/data_docs/index.html" in new
    assert all(key.startswith("reports/data_docs/") for key in new)
    assert set(before) <= set(after)


def test_reuse_returns_the_earlier_verdict_until_an_input_changes(ds: Path, settings: Settings,
                                                                   tmp_path: Path) -> None:
    from pixtag.data import validate as validate_mod
    first = validate(str(ds), settings, docs_dir=tmp_path / "docs", reuse=True)
    verdicts = list((ds / "reports" / "validations").glob("*.json"))
    assert first.success and not first.cached and len(verdicts) == 1

    def no_suites(*_: Any, **__: Any) -> None:
        raise AssertionError("the suites ran although the verdict could be reused")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validate_mod, "run_suites", no_suites)
        again = validate(str(ds), settings, docs_dir=tmp_path / "docs", reuse=True)
    assert again.cached and again.to_dict() | {"cached": False} == first.to_dict()

    save(ds, manifest(ds).iloc[:-1])  # one row fewer: a new verdict
    changed = validate(str(ds), settings, docs_dir=tmp_path / "docs", reuse=True)
    assert not changed.cached and changed.rows == first.rows - 1
    assert len(list((ds / "reports" / "validations").glob("*.json"))) == 2
    other = validate(str(ds), settings.model_copy(update={"min_per_class": 30}), docs_dir=tmp_path / "docs",
                     reuse=True)
    assert not other.cached and not other.success  # a changed parameter is a new verdict too


def test_validate_from_an_installed_wheel_uses_the_suites_it_ships(base_dataset: Path, tmp_path: Path) -> None:
    """``pip install`` of a built wheel (no checkout on the path, run elsewhere) gives a working
    ``pixtag validate``: the expectation suites travel as package data."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    for folder in ("pixtag", "pixtag_demo", "expectations"):
        shutil.copytree(repo / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "whl")],
                   check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "whl").glob("pixtag-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, cwd=tmp_path, capture_output=True)
    assert (site / "pixtag" / "expectations" / "manifest.json").is_file()
    ds = Path(shutil.copytree(base_dataset, tmp_path / "dataset"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PYTHONPATH": str(site), "PIXTAG_CLASSES": ",".join(CLASSES), "PIXTAG_MIN_PER_CLASS": str(MIN_PER_CLASS)}
    where = subprocess.run([sys.executable, "-c", "import pixtag.data.validate as v; print(v.SUITE_DIR)"],
                           env=env, cwd=elsewhere, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()) == site / "pixtag" / "expectations"
    proc = subprocess.run([str(site / "bin" / "pixtag"), "validate", str(ds), "--json"],
                          env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["evaluated"] == N_EXPECTATIONS and report["passed"] == N_EXPECTATIONS
