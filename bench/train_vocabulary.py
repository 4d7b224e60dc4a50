"""Training at the instance's vocabulary: 20 classes x 1,000 images plus background, 1,280-d
features; pixtag's classifier against scikit-learn's ``LinearSVC`` + ``CalibratedClassifierCV``
one-vs-rest, side by side in one run, on the same grouped folds.

What is timed is what the train stage does besides loading and logging: 5-fold CV and the refit
(``pixtag.model.classifier.crossval.cv_and_refit``, the folds and the refit as jobs in threads, one
BLAS thread each), keeping the out-of-fold probabilities, then each tag's threshold from them
(``pixtag.model.classifier.thresholds.pick_thresholds``). scikit-learn's estimator goes through the same
function (its generic path: six independent fits; ``CalibratedClassifierCV`` calibrates each class's
sigmoid on ``--calibration-cv`` inner folds, as it does by default). Each side runs in a process of
its own (forked), which makes its data itself, so that its peak RSS (``ru_maxrss``) is its own.

Features are synthetic (``bench/train.py``'s generator: power-law variance like backbone
features, class means separated (``--separation``) so that the linear SVM's CV accuracy is about
what it is on the eighteen real classes, 0.98), 20 classes of ``--per-class`` rows plus pixtag's
default background for 20 classes (``per_class x 5``), 1,280-d like efficientnet_lite0's.

    python bench/train_vocabulary.py [--classes 20] [--per-class 1000] [--dim 1280] [--sides ours,sklearn]

The last line is JSON: per side the wall and CPU seconds, peak RSS (MiB), CV accuracy and the
thresholds' figures on the out-of-fold rows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):
    """scikit-learn's ``LinearSVC`` (one-vs-rest) with ``CalibratedClassifierCV`` sigmoids, with the
    two methods pixtag's protocol reads (``predict_tag_proba``, ``log_odds``)."""

    def __init__(self, C: float = 1.0, cv: int = 5):
        self.C, self.cv = C, cv

    def fit(self, X: Any, y: Any) -> CalibratedLinearSVC:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        self.model_ = CalibratedClassifierCV(LinearSVC(C=self.C), method="sigmoid", cv=self.cv).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_tag_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(X)

    def log_odds(self, X: Any) -> np.ndarray:
        p = np.clip(self.predict_tag_proba(X), 1e-9, 1 - 1e-9)
        return np.log(p / (1 - p))

    def predict(self, X: Any) -> np.ndarray:
        return self.model_.predict(X)


def data(classes: int, per_class: int, background: int, dim: int, seed: int,
         separation: float) -> tuple[np.ndarray, np.ndarray]:
    """``bench/train.py``'s generator at this size: class means and noise with a power-law
    spectrum in a random rotation; the background is one more mean, with 1.5x the noise (it is
    everything else)."""
    from pixtag.core.dataset import BACKGROUND

    rng = np.random.default_rng(seed)
    n = classes * per_class + background
    spectrum = np.arange(1, dim + 1) ** -0.75
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    means = (rng.normal(size=(classes + 1, dim)) * spectrum * separation) @ rotation
    codes = np.r_[np.zeros(background, dtype=int), 1 + np.arange(n - background) % classes]
    spread = np.where(codes == 0, 1.5, 1.0)[:, None]
    X = means[codes] + spread * ((rng.normal(size=(n, dim)) * spectrum) @ rotation)
    names = np.array([BACKGROUND] + [f"class{k:02d}" for k in range(classes)])
    return X.astype(np.float32), names[codes]


def side(name: str, args: argparse.Namespace, out: Any) -> None:
    from pixtag.core.config import load_settings
    from pixtag.model.classifier.crossval import cv_and_refit
    from pixtag.model.classifier.estimator import LinearSVMClassifier
    from pixtag.model.classifier.openset import class_columns, ranked_tags, suggestion_metrics, tag_probabilities
    from pixtag.model.classifier.thresholds import pick_thresholds

    X, y = data(args.classes, args.per_class, args.background, args.dim, args.seed, args.separation)
    groups = np.arange(len(y)).astype(str)  # one origin per image
    estimator = LinearSVMClassifier() if name == "ours" else CalibratedLinearSVC(cv=args.calibration_cv)
    start, cpu = time.perf_counter(), time.process_time()
    oof: list[np.ndarray] = []
    scores, model = cv_and_refit(estimator, X, y, 5, args.seed, oof, groups=groups)
    fitted = [str(c) for c in model.classes_]
    cv_s = time.perf_counter() - start
    chosen = pick_thresholds(load_settings(), oof[0], list(y), fitted)
    wall, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    tags = [fitted[i] for i in class_columns(fitted)]
    opened = tag_probabilities(oof[0], fitted)
    suggested = [[tags[k] for k in row] for row in ranked_tags(opened, chosen.vector(tags), 3)]
    closed = oof[0][:, class_columns(fitted)]
    ranking = [[tags[k] for k in np.argsort(-row)[:3]] for row in closed]
    figures = suggestion_metrics(list(y), [r[0] for r in ranking], suggested, ranking, 0.15, 3)
    out.put({"side": name, "wall_s": round(wall, 2), "cv_refit_s": round(cv_s, 2),
             "thresholds_s": round(wall - cv_s, 2), "cpu_s": round(cpu_s, 2),
             "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
             "cv_accuracy": round(float(np.mean(scores)), 4), "rows": len(y), "dim": X.shape[1],
             "out_of_fold": {k: round(float(figures[k]), 4) for k in
                             ("accuracy", "coverage", "suggestion_precision", "false_suggestion_rate")}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--background", type=int, default=None, help="default: pixtag's, per_class x max(2, classes/4)")
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--separation", type=float, default=0.17)
    ap.add_argument("--calibration-cv", type=int, default=5)
    ap.add_argument("--sides", default="ours,sklearn")
    args = ap.parse_args()
    if args.background is None:
        from pixtag.core.config import load_settings

        args.background = load_settings(per_class=args.per_class).background_for(args.classes)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {len(os.sched_getaffinity(0))} cpus, "
          f"load {os.getloadavg()[0]:.1f}; {args.classes} classes x {args.per_class} + {args.background} background, "
          f"{args.dim}-d synthetic features", flush=True)
    results = []
    context = multiprocessing.get_context("fork")
    for name in args.sides.split(","):
        queue = context.Queue()
        process = context.Process(target=side, args=(name, args, queue))
        process.start()
        result = queue.get()
        process.join()
        result["load_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(json.dumps({"bench": "train_vocabulary", "classes": args.classes, "per_class": args.per_class,
                      "background": args.background, "dim": args.dim, "cpus": len(os.sched_getaffinity(0)),
                      "results": results}))


if __name__ == "__main__":
    main()
