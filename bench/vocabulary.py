"""The instance's vocabulary on photos training never saw: one threshold vs a threshold per tag,
and posts with two class tags dropped vs trained for every tag, side by side in one run.

Every class folder of ``--photos`` (default ../shared/data/photos5 and photos_more: eighteen
classes) and every subject folder of ``--others`` (everyday photos) is split by file,
deterministically (each of ``--seeds``): ``--held-out`` of each folder (default 20 %) is never served;
the rest is served by the local instance (``pixtag_demo``, from a temporary folder of symbolic
links: no photo is copied) with its usual traps, two-class albums and habit tags included.
pixtag then runs its own path on the served instance, as ``make run`` does (150 images per
class, background images as many as pixtag's default asks, the offline backbone): ``scrape`` (with ``two_class_posts``
``drop``, then ``all_tags``: the second scrape reuses the first one's downloads and features),
``validate``, ``train`` (per-tag thresholds; the tag probability rule of ``--probabilities``:
``auto``, softmax with ``drop``, against ``one_vs_rest``), and ``evaluate`` of the logged model on the
held-out class photos and held-out everyday photos (files, sliding windows: the served code
path), once with each tag's own threshold and once with the one threshold of the old rule
(logged beside them, given as the ``threshold`` setting).

    python bench/vocabulary.py [--photos DIR ...] [--others DIR] [--held-out 0.2] [--seeds 0,1,2]
                               [--per-class 150] [--background N] [--policies drop,all_tags]
                               [--probabilities auto,one_vs_rest] [--target-precision P] [--workdir DIR]

The last line is JSON: for each seed, policy, probability rule and threshold rule the issue's
five figures (top-1 accuracy, coverage, precision of suggestions, everyday photos wrongly
tagged, precision at 15 % in-class posts), precision and recall at k and the fox confusions;
and the five figures' mean over the seeds (one split holds 582 class photos and 113 everyday
photos: one everyday photo is 0.009 of the false-suggestion rate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
FIVE = ("accuracy", "coverage", "suggestion_precision", "false_suggestion_rate", "precision_at_share")


def split_folders(photos: list[Path], others: Path, held_out: float, seed: int, root: Path) -> dict[str, Any]:
    """Symbolic links: ``root/served/{photos,others}/FOLDER/`` and ``root/held/{photos,others}/FOLDER/``.
    Each folder's files (sorted) are shuffled by ``seed`` and its first ``held_out`` share held out."""
    counts: dict[str, dict[str, int]] = {"served": {}, "held": {}}
    folders = [(p, "photos") for base in photos for p in sorted(base.iterdir()) if p.is_dir()]
    folders += [(p, "others") for p in sorted(others.iterdir()) if p.is_dir()]
    for folder, kind in folders:
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        random.Random(f"{seed}:{kind}:{folder.name}").shuffle(files)
        cut = round(held_out * len(files))
        for part, chosen in (("held", files[:cut]), ("served", files[cut:])):
            target = root / part / kind / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (target / f.name).symlink_to(f.resolve())
            key = folder.name if kind == "photos" else f"others/{folder.name}"
            counts[part][key] = counts[part].get(key, 0) + len(chosen)
    return counts


def fox_confusions(report: dict[str, Any]) -> dict[str, Any]:
    """How the held-out photos of fox, cat and dog were told apart (top-1 tags)."""
    confusion = report["confusion"]
    rows, columns = confusion["rows"], confusion["columns"]
    out = {}
    for a in ("fox", "cat", "dog"):
        if a not in rows:
            continue
        row = confusion["matrix"][rows.index(a)]
        out[a] = {b: row[columns.index(b)] for b in ("fox", "cat", "dog") if b in columns}
    return out


def figures(report: dict[str, Any]) -> dict[str, Any]:
    keep = (*FIVE, "precision_at_k", "recall_at_k", "abstention_rate", "several_tags_rate")
    out = {k: None if report.get(k) is None else round(float(report[k]), 4) for k in keep}
    out["abstention_by_class"] = {c: round(m["abstention_rate"], 3) for c, m in report["per_class"].items()
                                  if m["abstention_rate"] > 0.05}
    return out


def run_policy(settings: Any, classes: list[str], held: Path, policy: str, probability: str) -> dict[str, Any]:
    from pixtag.data.scrape import scrape
    from pixtag.data.validate import validate
    from pixtag.model.serving.evaluate import evaluate
    from pixtag.model.training.train import train

    settings = settings.model_copy(update={"two_class_posts": policy, "tag_probability": probability,
                                           "model_name": f"vocabulary-{policy}-{probability}"})
    start = time.perf_counter()
    scraped = scrape(settings, classes, out=settings.storage, progress=False)
    scrape_s = time.perf_counter() - start
    check = validate(settings.storage, settings, classes=classes)
    start = time.perf_counter()
    trained = train(settings, reuse=False)
    train_s = time.perf_counter() - start
    out: dict[str, Any] = {
        "images": scraped.images, "counts": scraped.counts,
        "multiple_classes_dropped": scraped.dropped.get("multiple_classes", 0),
        "validation": {"success": check.success, "failed": [f"{f.suite}: {f.description}" for f in check.failed]},
        "scrape_s": round(scrape_s, 1), "train_s": round(train_s, 1),
        "test_split": {k: trained.get(k) for k in ("test_accuracy", *FIVE[1:], "threshold")},
        "thresholds": {k: round(v, 4) for k, v in trained["thresholds"].items()},
    }
    for rule, threshold in (("per_tag", None), ("one", trained["threshold"])):
        chosen = settings if threshold is None else settings.model_copy(update={"threshold": threshold})
        report = evaluate(chosen, held / "photos", trained["model_uri"], held / "others")
        out[rule] = figures(report) | {"fox": fox_confusions(report)}
        out[rule]["images"], out[rule]["others_images"] = report["images"], report["others_images"]
    return out


def run_seed(args: argparse.Namespace, photos: list[Path], root: Path, seed: int) -> tuple[dict[str, Any], dict]:
    """One held-out split (``seed``): the local instance serves the rest; every policy and
    probability rule is trained on it and evaluated on the held-out photos."""
    from pixtag.core.config import load_settings
    from pixtag.model.backbones.weights import LITE0
    from pixtag_demo.app import DemoInstance
    from pixtag_demo.world.builder import build_world

    for part in ("served", "held"):
        shutil.rmtree(root / part, ignore_errors=True)
    counts = split_folders(photos, args.others, args.held_out, seed, root)
    world = build_world(root / "served" / "photos", others=root / "served" / "others")
    results: dict[str, Any] = {"classes": list(world.classes)}
    with DemoInstance(world=world, token="bench-token") as instance:
        settings = load_settings(
            instance_url=instance.url, token="bench-token", request_rate=20, allow_private_hosts=["127.0.0.1"],
            storage=str(root / "store"), backbone=LITE0, mlflow_uri=f"sqlite:///{root / 'mlflow.db'}",
            per_class=args.per_class, background=args.background, min_per_class=50, balance_ratio=3.0,
            target_precision=args.target_precision, seed=seed)
        for policy in args.policies.split(","):
            rules = args.probabilities.split(",")
            if policy == "all_tags" and "auto" in rules:  # auto is one_vs_rest there: two-tag images
                rules = [r for r in rules if r != "one_vs_rest"]
            for probability in rules:
                name = f"{policy} {probability}"
                results[name] = run_policy(settings, results["classes"], root / "held", policy, probability)
                print(f"seed {seed} {name}: {json.dumps(results[name])}", flush=True)
    return results, counts


def mean_figures(by_seed: dict[int, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per policy and probability rule, per threshold rule: the five figures' mean over the seeds."""
    names = [k for k in next(iter(by_seed.values())) if k != "classes"]
    return {name: {rule: {k: round(float(np.mean([r[name][rule][k] for r in by_seed.values()])), 4) for k in FIVE}
                   for rule in ("per_tag", "one")} for name in names}


def main() -> None:
    shared = REPO.parent / "shared" / "data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, action="append", default=None)
    ap.add_argument("--others", type=Path, default=shared / "others")
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--seeds", default="0",
                    help="held-out splits, comma-separated: figures per split and their mean")
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--background", type=int, default=None, help="default: pixtag's (per_class x max(2, classes / 4))")
    ap.add_argument("--policies", default="drop,all_tags")
    ap.add_argument("--probabilities", default="auto,one_vs_rest",
                    help="tag_probability settings compared (auto: softmax with drop, one_vs_rest with all_tags)")
    ap.add_argument("--target-precision", type=float, default=None)
    ap.add_argument("--workdir", type=Path, default=None, help="kept (and reused) instead of a temporary folder")
    args = ap.parse_args()
    photos = args.photos or [shared / "photos5", shared / "photos_more"]

    start = time.perf_counter()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="pixtag-vocabulary-"))
    by_seed: dict[int, dict[str, Any]] = {}
    counts: dict[str, Any] = {}
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            by_seed[seed], counts = run_seed(args, photos, base / f"seed{seed}", seed)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    means = mean_figures(by_seed)
    width = 30
    print(f"mean over seeds {sorted(by_seed)}")
    print(f"{'policy probability / thresholds':<{width}} accuracy coverage precision false-sugg prec@15%")
    for name, rules in means.items():
        for rule in ("one", "per_tag"):
            f = rules[rule]
            print(f"{name + ' / ' + rule:<{width}} {f['accuracy']:.4f}   {f['coverage']:.4f}   "
                  f"{f['suggestion_precision']:.4f}    {f['false_suggestion_rate']:.4f}     "
                  f"{f['precision_at_share']:.4f}")
    print(json.dumps({"bench": "vocabulary", "machine": f"{platform.machine()} {platform.processor()}".strip(),
                      "cpus": len(os.sched_getaffinity(0)), "load": round(os.getloadavg()[0], 2),
                      "classes": next(iter(by_seed.values()))["classes"], "held_out": args.held_out,
                      "seeds": sorted(by_seed),
                      "served": sum(v for k, v in counts["served"].items() if not k.startswith("others/")),
                      "held_photos": sum(v for k, v in counts["held"].items() if not k.startswith("others/")),
                      "held_others": sum(v for k, v in counts["held"].items() if k.startswith("others/")),
                      "mean": means, "by_seed": by_seed, "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
