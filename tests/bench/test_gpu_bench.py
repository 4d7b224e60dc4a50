"""bench/gpu.py runs on CPU with tiny sizes and ends with the JSON the issue asks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ["fp32", "bf16", "bf16_cl", "bf16_cl_compile"]


def test_gpu_bench_on_cpu_reports_every_variant(photos: Path) -> None:
    env = os.environ | {"PIXTAG_PHOTOS": str(photos)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "cpu", "--model", "test_vit",
         "--n", "4", "--batch-size", "2", "--threads", "1", "--variants", ",".join(VARIANTS)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["model"] == "test_vit"
    assert (report["n"], report["batch_size"], report["compile_backend"]) == (4, 2, "eager")
    assert list(report["variants"]) == VARIANTS
    for name, figures in report["variants"].items():
        assert set(figures) == {"model_only_img_s", "end_to_end_img_s", "ratio",
                                "end_to_end_cold_img_s"}, (name, figures)
        assert all(v > 0 for v in figures.values()), (name, figures)
        expected = figures["end_to_end_img_s"] / figures["model_only_img_s"]
        assert abs(figures["ratio"] - expected) <= 0.01 * expected + 0.001, (name, figures)
    best = max(VARIANTS, key=lambda k: report["variants"][k]["end_to_end_img_s"])
    assert report["best_variant"] == best
    assert report["best_end_to_end_img_s"] == report["variants"][best]["end_to_end_img_s"]


def test_gpu_bench_rejects_an_unknown_variant() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--variants", "fp32,fp8"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "fp8" in done.stderr
