"""Time pixtag's classifier against a plain ``SVC(kernel="linear")``, side by side in one run.

Both go through the same protocol code (``pixtag.model.classifier.crossval.cv_and_refit``: stratified 5-fold CV
and a refit on all rows, six jobs in threads, one BLAS thread each). Features are either
synthetic (default: 4,500 x 768, five classes, power-law variance like backbone features,
class separation tuned so a linear SVM scores ~0.97, close to the study's ViT) or the cached
features of a dataset (``--store DIR --backbone NAME``).

    python bench/train.py [--n 4500] [--dim 768] [--store DIR --backbone efficientnet_lite0]

Both are warmed up first on a 40-per-class slice (untimed), so first-call imports and library
set-up are not counted. The last line is JSON: {"ours_s": ..., "svc_linear_s": ..., "ratio": ...}
(ratio = ours/svc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def synthetic(n: int, dim: int, classes: int, seed: int,
              separation: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    spectrum = np.arange(1, dim + 1) ** -0.75
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    means = (rng.normal(size=(classes, dim)) * spectrum * separation) @ rotation
    X = means[y] + (rng.normal(size=(n, dim)) * spectrum) @ rotation
    names = np.array(["cat", "dog", "bird", "flower", "car", "boat", "tree", "sky"])
    return X.astype(np.float32), names[y % len(names)] if classes <= len(names) else y.astype(str)


def cached(store_uri: str, backbone: str) -> tuple[np.ndarray, np.ndarray]:
    from pixtag.core.dataset import read_manifest
    from pixtag.core.storage import open_storage
    from pixtag.model.backbones.weights import cache_key
    from pixtag.model.features.cache import read_cache, stack
    from pixtag.model.features.compute import select

    store = open_storage(store_uri)
    rows = select(read_manifest(store))
    X = stack(read_cache(store, cache_key(backbone)), list(rows["sha256"]))
    return X, np.asarray(rows["label"], dtype=str)


def timed(estimator: object, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (all threads: what the work costs whatever else runs) and CV accuracy."""
    from pixtag.model.classifier.crossval import cv_and_refit

    start, cpu = time.perf_counter(), time.process_time()
    scores, _ = cv_and_refit(estimator, X, y, 5, seed)
    return time.perf_counter() - start, time.process_time() - cpu, float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4500)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=None, help="dataset with cached features")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()

    from sklearn.svm import SVC

    from pixtag.model.classifier.estimator import LinearSVMClassifier

    if args.store:
        X, y = cached(args.store, args.backbone)
        source = f"cached {args.backbone} features of {args.store}"
    else:
        X, y = synthetic(args.n, args.dim, args.classes, args.seed)
        source = "synthetic features"
    print(f"machine: {platform.machine()} {platform.processor() or ''} "
          f"{len(os.sched_getaffinity(0))} cpus, load {os.getloadavg()[0]:.1f}")
    print(f"data: {source}, {X.shape[0]} x {X.shape[1]}, {len(set(y))} classes")
    # Untimed warm-up of both on a small stratified slice: first-call imports and library set-up
    # (scikit-learn's splitters, LAPACK bindings, the thread pool) are not the CV being timed.
    warm = np.concatenate([np.flatnonzero(y == label)[:40] for label in np.unique(y)])
    for estimator in (LinearSVMClassifier(), SVC(kernel="linear")):
        timed(estimator, X[warm], y[warm], args.seed)
    ours_s, ours_cpu, ours_acc = timed(LinearSVMClassifier(), X, y, args.seed)
    print(f"ours (L2-SVM Newton + LOO-Platt) : {ours_s:.2f}s ({ours_cpu:.2f} CPU-s), CV accuracy {ours_acc:.4f}")
    svc_s, svc_cpu, svc_acc = timed(SVC(kernel="linear"), X, y, args.seed)
    print(f"SVC(kernel='linear'):              {svc_s:.2f}s ({svc_cpu:.2f} CPU-s), CV accuracy {svc_acc:.4f}")
    print(json.dumps({"ours_s": round(ours_s, 3), "svc_linear_s": round(svc_s, 3),
                      "ratio": round(ours_s / svc_s, 3), "ours_cpu_s": round(ours_cpu, 3),
                      "svc_linear_cpu_s": round(svc_cpu, 3)}))


if __name__ == "__main__":
    main()
