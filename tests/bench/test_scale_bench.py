"""bench/scale.py at tiny sizes: an augmented dataset, extraction and training per size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTS = ["extract_s", "extract_img_s", "extract_peak_mb", "extract_workers_peak_mb", "train_s",
         "train_load_s", "train_fit_s", "train_img_s", "train_peak_mb", "cv_mean", "load_1min"]


def test_scale_bench_smoke(photos: Path, tmp_path: Path) -> None:
    env = os.environ | {"PIXTAG_PHOTOS": str(photos)}
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scale.py"), "--sizes", "30,20",
         "--backbone", "test_efficientnet", "--batch-size", "8", "--folds", "2",
         "--test-size", "0.34", "--workdir", str(work)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backbone"] == "test_efficientnet" and report["sizes"] == [20, 30]
    assert report["weights"] == "random (pretrained=False, timing only)"
    assert set(LISTS) <= set(report)
    for key in LISTS:
        assert len(report[key]) == 2 and all(v >= 0 for v in report[key]), (key, report[key])
        if key not in ("cv_mean", "load_1min"):
            assert all(v > 0 for v in report[key]), (key, report[key])
    # one augmented dataset, made once for the largest size; prefixes for the smaller ones
    images = list((work / "dataset" / "images").rglob("*.jpg"))
    assert len(images) == 30
    assert len(list((work / "dataset" / "features").rglob("*.npz"))) >= 1
