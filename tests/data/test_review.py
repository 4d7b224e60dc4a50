"""pixtag review: one contact sheet per class; exclusions by index or sha256, honoured by
read_manifest; bad input changes nothing."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import Settings
from pixtag.core.storage import open_storage
from pixtag.data.review import ReviewError, contact_refs, excluded_mask, review
from tests.data.build import CLASSES, tree_digest, upload_subset

FIGURE = re.compile(r'<figure(?: class="excluded")? id="([^"]+)">')


def figures(sheet: Path | str) -> list[str]:
    return FIGURE.findall(Path(sheet).read_text())


def excluded_figures(sheet: Path | str) -> list[str]:
    return re.findall(r'<figure class="excluded" id="([^"]+)">', Path(sheet).read_text())


def manifest(ds: Path) -> pd.DataFrame:
    return pd.read_parquet(ds / dataset.MANIFEST)


def test_one_sheet_per_class_with_every_thumbnail(ds: Path, settings: Settings) -> None:
    result = review(str(ds), settings)
    sheets = ds / "reports" / "review"
    assert sorted(p.name for p in sheets.glob("*.html")) == sorted(
        [f"{c}.html" for c in CLASSES] + ["index.html"])
    for label in CLASSES:
        sheet = sheets / f"{label}.html"
        assert result.sheets[label] == str(sheet)
        assert figures(sheet) == [f"{label}:{n}" for n in range(30)]
        assert len(re.findall(r'<img src="data:image/jpeg;base64,', sheet.read_text())) == 30
        assert excluded_figures(sheet) == []
    index = (sheets / "index.html").read_text()
    assert all(f'href="{c}.html"' in index for c in CLASSES)


def test_exclude_by_index_and_sha_is_honoured_by_read_manifest(ds: Path, cli) -> None:
    m = manifest(ds)
    cats, dogs = m[m["label"] == "cat"], m[m["label"] == "dog"]
    sha_cat12, sha_cat20 = cats["sha256"].iloc[12], cats["sha256"].iloc[20]
    sha_dog3 = dogs["sha256"].iloc[3]

    code, out, err = cli("review", ds, "--exclude", "cat:12,cat:20", "--exclude-sha", sha_dog3,
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sorted(result["added"]) == sorted([sha_cat12, sha_cat20, sha_dog3])
    stored = json.loads((ds / dataset.EXCLUSIONS).read_text())
    assert sorted(stored["sha256"]) == sorted([sha_cat12, sha_cat20, sha_dog3])

    kept = dataset.read_manifest(open_storage(str(ds)))
    assert len(kept) == 147
    assert not {sha_cat12, sha_cat20, sha_dog3} & set(kept["sha256"])
    sheets = ds / "reports" / "review"
    assert excluded_figures(sheets / "cat.html") == ["cat:12", "cat:20"]
    assert excluded_figures(sheets / "dog.html") == ["dog:3"]
    assert len(figures(sheets / "cat.html")) == 30  # excluded images stay on the sheet
    assert result["counts"]["cat"] == {"images": 30, "excluded": 2}


def test_exclusions_are_idempotent_and_restorable(ds: Path, settings: Settings) -> None:
    first = review(str(ds), settings, exclude=["cat:1"])
    again = review(str(ds), settings, exclude=["cat:1"])
    assert len(first.added) == 1 and again.added == []
    restored = review(str(ds), settings, restore=["cat:1"])
    assert restored.restored == first.added
    assert json.loads((ds / dataset.EXCLUSIONS).read_text())["sha256"] == []
    assert len(dataset.read_manifest(open_storage(str(ds)))) == 150


def test_existing_exclusions_are_kept(ds: Path, settings: Settings) -> None:
    (ds / dataset.EXCLUSIONS).write_text(json.dumps(
        {"sha256": ["f" * 64], "post_id": ["p1"], "note": "by hand"}))
    review(str(ds), settings, exclude=["bird:0"])
    stored = json.loads((ds / dataset.EXCLUSIONS).read_text())
    assert stored["post_id"] == ["p1"] and stored["note"] == "by hand"
    assert "f" * 64 in stored["sha256"] and len(stored["sha256"]) == 2


@pytest.mark.parametrize("args, message", [
    (("--exclude", "cat:5,cat:99"), "unknown contact-sheet index cat:99"),
    (("--exclude", "horse:1"), "unknown contact-sheet index horse:1"),
    (("--exclude-sha", "abc123"), "not a sha256"),
])
def test_bad_input_changes_nothing(ds: Path, cli, args: tuple[str, ...], message: str) -> None:
    (ds / dataset.EXCLUSIONS).write_text('{"sha256": [], "post_id": []}\n')
    before = tree_digest(ds)
    code, _, err = cli("review", ds, *args)
    assert code == 2 and message in err
    assert tree_digest(ds) == before


def test_broken_exclusions_file_is_not_overwritten(ds: Path, settings: Settings) -> None:
    (ds / dataset.EXCLUSIONS).write_text('{"sha256": [')
    with pytest.raises(ReviewError, match="not valid JSON"):
        review(str(ds), settings, exclude=["cat:0"])
    assert (ds / dataset.EXCLUSIONS).read_text() == '{"sha256": ['


def test_out_writes_sheets_elsewhere(ds: Path, settings: Settings, tmp_path: Path) -> None:
    before = tree_digest(ds)
    result = review(str(ds), settings, out=str(tmp_path / "sheets"))
    assert result.index == str(tmp_path / "sheets" / "index.html")
    assert len(figures(tmp_path / "sheets" / "car.html")) == 30
    assert tree_digest(ds) == before


def test_excluded_mask_agrees_with_read_manifest(ds: Path) -> None:
    m = manifest(ds)
    rng = random.Random(7)
    exclusions = {"sha256": set(rng.sample(list(m["sha256"]), 9)),
                  "post_id": set(rng.sample(list(m["post_id"]), 4))}
    (ds / dataset.EXCLUSIONS).write_text(json.dumps({k: sorted(v) for k, v in exclusions.items()}))
    kept = dataset.read_manifest(open_storage(str(ds)))
    mask = excluded_mask(m, exclusions)
    assert m[~mask]["sha256"].tolist() == kept["sha256"].tolist()


def test_contact_refs_count_per_label_in_manifest_order() -> None:
    frame = pd.DataFrame({"label": ["cat", "dog", "cat", None, "cat"]}, dtype="string")
    assert contact_refs(frame).tolist() == ["cat:0", "dog:0", "cat:1", "?:0", "cat:2"]


def test_s3_dataset_sheets_in_reports_and_out(base_dataset: Path, aws: str,
                                              settings: Settings, tmp_path: Path) -> None:
    uri = f"s3://{aws}/ds"
    upload_subset(base_dataset, uri, per_class=4)
    result = review(uri, settings, exclude=["flower:2"])
    store = open_storage(uri)
    assert result.sheets["flower"] == f"{uri}/reports/review/flower.html"
    assert store.exists("reports/review/index.html")
    assert len(dataset.read_manifest(store)) == 19
    local = review(uri, settings, out=str(tmp_path / "local"))
    assert figures(tmp_path / "local" / "flower.html") == [f"flower:{n}" for n in range(4)]
    assert excluded_figures(tmp_path / "local" / "flower.html") == ["flower:2"]
    assert local.index == str(tmp_path / "local" / "index.html")
