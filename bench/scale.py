"""Growth with data: time and peak memory of feature extraction and training at several sizes.

An augmented dataset of ``max(--sizes)`` images is made once from the labelled photos (CLASS/*.jpg):
image ``i`` is photo ``i mod 1000`` (classes interleaved, so every prefix is balanced) through a
random resized crop to 224x224, a horizontal flip and a colour jitter seeded by ``i``, stored as
the dataset holds images (``images/ab/<sha256>.jpg``, a manifest in pixtag.core.dataset's format; the
sha256 is that of the stored bytes, as no original is kept). For each size, the manifest is the
first N rows and the feature cache is emptied; then, each in a fresh subprocess:

* extraction: ``pixtag.model.features.features(settings, store=...)``, exactly the production stage;
* training: ``pixtag.model.training.protocol.load_data`` (the cached vectors of the manifest's images) and
  ``cv_and_refit(LinearSVMClassifier(), ...)`` on the training split, ``--folds`` folds.

Each child reports its wall seconds (torch/timm imports excluded) and its peak RSS (VmHWM; for extraction
also the peak of its DataLoader workers). Flat extraction memory and roughly linear times are the
target. ``--backbone`` other than ``efficientnet_lite0`` gets random weights (pretrained=False,
timing only: said in the output) when none are configured.

    python bench/scale.py [--sizes 1000,5000,20000] [--backbone efficientnet_lite0]

The last line is JSON: {"backbone", "weights", "sizes", "extract_s", "extract_img_s",
"extract_peak_mb", "extract_workers_peak_mb", "train_s", "train_load_s", "train_fit_s",
"train_img_s", "train_peak_mb", "cv_mean", "load_1min"}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = 224


# --- the augmented dataset -------------------------------------------------------------------
def photo_order(photos: Path) -> list[tuple[str, Path]]:
    """(label, path) of every photo, classes interleaved: cat0, dog0, ..., cat1, dog1, ..."""
    classes = sorted(p.name for p in photos.iterdir() if p.is_dir())
    files = {c: sorted((photos / c).glob("*.jpg")) for c in classes}
    longest = max(len(f) for f in files.values())
    return [(c, files[c][i]) for i in range(longest) for c in classes if i < len(files[c])]


def augment(path: Path, index: int, seed: int) -> Any:
    """Photo → 224x224 RGB: random resized crop (35-100 % of the area, aspect 3/4-4/3), flip,
    brightness/contrast/saturation x0.7-1.3; deterministic in (seed, index)."""
    from PIL import Image, ImageEnhance, ImageOps

    rng = np.random.default_rng([seed, index])
    image = Image.open(path).convert("RGB")
    width, height = image.size
    area = width * height * rng.uniform(0.35, 1.0)
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    w = int(min(width, round(np.sqrt(area * aspect))))
    h = int(min(height, round(np.sqrt(area / aspect))))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    image = image.resize((SIZE, SIZE), Image.Resampling.BICUBIC, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhance(image).enhance(float(rng.uniform(0.7, 1.3)))
    return image


def _make_one(job: tuple[int, str, str, str, int]) -> dict[str, Any]:
    from pixtag.core.dataset import image_key
    from pixtag.data.images import encode_jpeg, phash

    index, label, path, root, seed = job
    image = augment(Path(path), index, seed)
    data = encode_jpeg(image)
    sha = hashlib.sha256(data).hexdigest()
    key = image_key(sha)
    target = Path(root) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {
        "post_id": f"aug-{index}", "media_id": str(index), "account": f"bench-{index}", "label": label,
        "sha256": sha, "phash": phash(image), "mode": "RGB", "width": SIZE, "height": SIZE,
        "orig_width": SIZE, "orig_height": SIZE, "cropped": False, "sensitive": False,
        "visibility": "public", "created_at": "2026-11-01T00:00:00Z",
        "media_url": Path(path).resolve().as_uri(), "license": "bench (augmented)", "path": key,
        "original_path": "",
    }


def make_augmented(photos: Path, root: Path, n: int, seed: int, workers: int) -> Any:
    """Write ``n`` augmented images below ``root``; return their manifest (in index order).
    Reused when ``root`` already holds one for the same photos, seed and at least ``n`` rows."""
    import pandas as pd

    from pixtag.core.dataset import MANIFEST_COLUMNS, to_frame

    full, meta = root / "all-rows.parquet", root / "all-rows.json"
    wanted = {"photos": str(photos), "seed": seed}
    if full.is_file() and meta.is_file():
        done = json.loads(meta.read_text())
        if {k: done.get(k) for k in wanted} == wanted and done.get("n", 0) >= n:
            return pd.read_parquet(full).head(n)
    order = photo_order(photos)
    jobs = [(i, *map(str, order[i % len(order)]), str(root), seed) for i in range(n)]
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_make_one, jobs, chunksize=64))
    frame = to_frame(rows, MANIFEST_COLUMNS)
    if frame["sha256"].duplicated().any():
        raise SystemExit("two augmented images came out identical: change --seed")
    frame.to_parquet(full, index=False)
    meta.write_text(json.dumps(wanted | {"n": n}))
    return frame


def random_weights(name: str, path: Path) -> Path:
    """A random state dict (pretrained=False) for ``name``: for timing, not accuracy."""
    import timm
    import torch

    from pixtag.model.backbones.weights import timm_arch

    torch.manual_seed(0)
    torch.save(timm.create_model(timm_arch(name), pretrained=False).state_dict(), path)
    return path


# --- the children ----------------------------------------------------------------------------
def peak_mb() -> float:
    """This process's peak RSS (VmHWM), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_settings(args: argparse.Namespace, weights: dict[str, str]) -> Any:
    from pixtag.core.config import load_settings

    return load_settings(storage=args.root, backbone=args.backbone, batch_size=args.batch_size,
                         weights=weights, cv_folds=args.folds, test_size=args.test_size,
                         seed=args.seed)


def backbone_weights(name: str, path: Path) -> tuple[dict[str, str], str]:
    """Settings.weights for ``name`` and what they are: the offline package's or the hub's
    pretrained weights when available, else random ones written to ``path`` (once)."""
    from pixtag.model.backbones.weights import LITE0, BackboneError, weights_source

    if name == LITE0:
        return {}, "pretrained (offline package)"
    try:
        weights_source(name)
        return {}, "pretrained (hub cache)"
    except BackboneError:
        if not path.is_file():
            random_weights(name, path)
        return {name: str(path)}, "random (pretrained=False, timing only)"


def child_extract(args: argparse.Namespace) -> dict[str, Any]:
    import timm  # noqa: F401  (imports are not what is measured)
    import torch  # noqa: F401

    from pixtag.core.storage import open_storage
    from pixtag.model.features.compute import features

    weights, note = backbone_weights(args.backbone, Path(args.random_weights))
    settings = child_settings(args, weights)
    start = time.perf_counter()
    summary = features(settings, store=open_storage(args.root))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": summary["images"], "computed": summary["computed"],
            "device": summary["device"], "weights": weights, "weights_note": note,
            "peak_mb": peak_mb(),
            "workers_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def child_train(args: argparse.Namespace) -> dict[str, Any]:
    from pixtag.core.storage import open_storage
    from pixtag.model.classifier.crossval import cv_and_refit
    from pixtag.model.classifier.estimator import LinearSVMClassifier
    from pixtag.model.training.protocol import load_data

    settings = child_settings(args, json.loads(args.weights))
    start = time.perf_counter()
    data = load_data(settings, open_storage(args.root))
    if data.features["computed"]:
        raise SystemExit("training found images without cached features")
    loaded = time.perf_counter()
    folds, _ = cv_and_refit(LinearSVMClassifier(), data.X[data.train], data.y[data.train],
                            settings.cv_folds, settings.seed)
    end = time.perf_counter()
    return {"seconds": end - start, "load_s": loaded - start, "fit_s": end - loaded,
            "images": len(data.rows), "train_images": len(data.train),
            "cv_mean": float(np.mean(folds)), "peak_mb": peak_mb()}


def run_child(mode: str, args: argparse.Namespace, workdir: Path,
              weights: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
           "--root", str(workdir / "dataset"), "--random-weights", str(workdir / "weights.pth"),
           "--backbone", args.backbone, "--batch-size", str(args.batch_size),
           "--folds", str(args.folds), "--test-size", str(args.test_size),
           "--seed", str(args.seed), "--weights", json.dumps(weights or {})]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000", help="comma-separated image counts")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--test-size", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gen-workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--photos", default=os.environ.get("PIXTAG_PHOTOS")
                        or str(REPO.parent / "shared" / "data" / "photos5"))
    parser.add_argument("--workdir", default=None,
                        help="keep the augmented dataset here (reused by later runs); default: a "
                             "temporary folder, removed at the end")
    parser.add_argument("--child", choices=("extract", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--random-weights", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        result = (child_extract if args.child == "extract" else child_train)(args)
        print(json.dumps(result))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pixtag-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = measure(args, sizes, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report))


def measure(args: argparse.Namespace, sizes: list[int], workdir: Path) -> dict[str, Any]:
    from pixtag.core.dataset import MANIFEST
    from pixtag.model.backbones.weights import CACHE_DIR

    root = workdir / "dataset"
    root.mkdir(exist_ok=True)
    start = time.perf_counter()
    frame = make_augmented(Path(args.photos), root, sizes[-1], args.seed, args.gen_workers)
    print(f"augmented dataset: {sizes[-1]} images in {time.perf_counter() - start:.1f}s at {root}",
          flush=True)
    print(f"machine: {len(os.sched_getaffinity(0))} cpus, load {os.getloadavg()[0]:.2f}; "
          f"backbone {args.backbone}, batch {args.batch_size}, {args.folds} folds",
          flush=True)
    out: dict[str, list[float]] = {k: [] for k in (
        "extract_s", "extract_img_s", "extract_peak_mb", "extract_workers_peak_mb", "train_s",
        "train_load_s", "train_fit_s", "train_img_s", "train_peak_mb", "cv_mean", "load_1min")}
    for n in sizes:
        frame.head(n).to_parquet(root / MANIFEST, index=False)
        shutil.rmtree(root / CACHE_DIR, ignore_errors=True)
        ext = run_child("extract", args, workdir)
        if ext["computed"] != n:
            raise SystemExit(f"extraction computed {ext['computed']} of {n} images")
        note = ext["weights_note"]
        tr = run_child("train", args, workdir, ext["weights"])
        load = os.getloadavg()[0]
        for key, value in (("extract_s", ext["seconds"]), ("extract_img_s", n / ext["seconds"]),
                           ("extract_peak_mb", ext["peak_mb"]),
                           ("extract_workers_peak_mb", ext["workers_peak_mb"]),
                           ("train_s", tr["seconds"]), ("train_load_s", tr["load_s"]),
                           ("train_fit_s", tr["fit_s"]), ("train_img_s", n / tr["seconds"]),
                           ("train_peak_mb", tr["peak_mb"]), ("cv_mean", tr["cv_mean"]),
                           ("load_1min", load)):
            out[key].append(round(value, 3 if key in ("train_load_s", "train_fit_s", "cv_mean") else 2))
        print(f"{n:>6} images: extract {ext['seconds']:.1f}s ({n / ext['seconds']:.1f} img/s, "
              f"{ext['device']}), peak {ext['peak_mb']:.0f} MiB (+ loader worker "
              f"{ext['workers_peak_mb']:.0f} MiB; weights {note}); train {tr['seconds']:.2f}s (load "
              f"{tr['load_s']:.2f}s + {args.folds}-fold CV/refit on {tr['train_images']} "
              f"{tr['fit_s']:.2f}s, CV {tr['cv_mean']:.3f}), peak {tr['peak_mb']:.0f} MiB; "
              f"load {load:.2f}", flush=True)
    return {"backbone": args.backbone, "weights": note, "batch_size": args.batch_size,
            "folds": args.folds, "sizes": sizes, **out}


if __name__ == "__main__":
    main()
