"""Open-set suggestions on photos training never saw: pixtag's model and the options it beat.

Training set: the first ``--per-class`` usable photos of each class of ``--photos`` and
``--background`` everyday photos of ``--others`` (drawn from one half of every subject folder,
``--seed``). Unseen: the remaining class photos and the other half of ``--others``.

1. pixtag's own path: the datasets are stored as pixtag datasets, ``pixtag.model.training.train.train`` fits the
   classifier with the background and chooses the threshold on out-of-fold images
   (``--target``), and ``pixtag.model.serving.evaluate.evaluate`` scores the logged model on the unseen
   *files* (decode, sliding windows, served code), as ``pixtag evaluate --photos --others`` does.
2. Side by side on the same cached features (every threshold chosen on training data only):
   A the closed-set champion (5 classes, probability >= 0.5: the old behaviour); A2 the same with
   a threshold chosen on the training background; B the background class (what pixtag ships);
   C k-NN cosine similarity to the class training images; D max-logit and energy of the 5-class
   SVM; E the backbone's own ImageNet prediction mapped through WordNet (ImageNet classes are
   WordNet synsets: the probability mass under each class's synset).

    python bench/openset.py [--photos ../shared/data/photos5] [--others ../shared/data/others]
                            [--per-class 100] [--background 200] [--seed 0] [--target 0.03]

The last line is JSON: pixtag's figures on the unseen photos and every option's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def usable(path: Path) -> dict | None:
    from pixtag.data.images import ImageRejected, prepare

    try:
        return {"path": path, "prepared": prepare(path.read_bytes())}
    except ImageRejected:
        return None


def split_files(photos: Path, others: Path, per_class: int, background: int, seed: int):
    """(train class rows, train background rows, unseen class rows, unseen background rows)."""
    from concurrent.futures import ThreadPoolExecutor

    classes = sorted(d.name for d in photos.iterdir() if d.is_dir())
    with ThreadPoolExecutor(4) as pool:
        by_class = {c: [r for r in pool.map(usable, sorted((photos / c).glob("*.jpg"))) if r] for c in classes}
        subjects = {d.name: [r for r in pool.map(usable, sorted(d.glob("*.jpg"))) if r]
                    for d in sorted(others.iterdir()) if d.is_dir()}
    rng = random.Random(seed)
    pool_train, unseen_bg = [], []
    for subject, rows in subjects.items():
        rows = rows[:]
        rng.shuffle(rows)
        half = (len(rows) + 1) // 2
        pool_train += [(subject, r) for r in rows[:half]]
        unseen_bg += [(subject, r) for r in rows[half:]]
    rng.shuffle(pool_train)
    train_bg = [r for _, r in pool_train[:background]]
    train_cls = [(c, r) for c in classes for r in by_class[c][:per_class]]
    unseen_cls = [(c, r) for c in classes for r in by_class[c][per_class:]]
    return classes, train_cls, train_bg, unseen_cls, unseen_bg


def store_dataset(root: Path, rows: list[tuple[str, dict]]) -> None:
    from pixtag.core.dataset import MANIFEST, MANIFEST_COLUMNS, image_key, to_frame
    from pixtag.core.storage import open_storage

    store = open_storage(str(root))
    out = []
    for n, (label, r) in enumerate(rows):
        p = r["prepared"]
        store.write_bytes(image_key(p.sha256), p.data)
        out.append({"post_id": f"b{n}", "media_id": str(n), "account": f"acct{n}", "label": label,
                    "sha256": p.sha256, "phash": p.phash, "mode": "RGB", "width": p.image.width,
                    "height": p.image.height, "orig_width": p.orig_width, "orig_height": p.orig_height,
                    "cropped": p.cropped, "sensitive": False, "visibility": "public", "created_at": "",
                    "media_url": r["path"].as_uri(), "license": "", "path": image_key(p.sha256),
                    "original_path": ""})
    store.write_parquet(MANIFEST, to_frame(out, MANIFEST_COLUMNS))


def link_folder(root: Path, rows: list[tuple[str, dict]]) -> Path:
    for label, r in rows:
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / r["path"].name).symlink_to(r["path"].resolve())
    return root


def features(settings, root: Path) -> tuple[np.ndarray, np.ndarray]:
    from pixtag.core.dataset import read_manifest
    from pixtag.core.storage import open_storage
    from pixtag.model.features.compute import compute, select

    store = open_storage(str(root))
    rows = select(read_manifest(store))
    run = compute(settings, rows, store)
    return run.vectors(list(rows["sha256"])), np.asarray(rows["label"], dtype=str)


def imagenet_head() -> tuple[np.ndarray, np.ndarray]:
    """The offline backbone's ImageNet classifier (its pooled features are pixtag's features)."""
    import torch

    from pixtag.model.backbones.weights import lite0_weights_path

    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    weight, bias = list(state.values())[-2:]
    return weight.numpy(), bias.numpy()


def wordnet_mass_matrix(classes: list[str]) -> np.ndarray:
    """(1000, classes): 1 where ImageNet class i is the class's first noun sense or below it."""
    import timm

    from pixtag.tags import nlp
    wn = nlp.wordnet()
    wnids = (Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    targets = [wn.synsets(c, "n")[0] for c in classes]
    out = np.zeros((len(wnids), len(classes)))
    for i, wnid in enumerate(wnids):
        synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
        above = set(synset.closure(lambda s: s.hypernyms())) | {synset}
        out[i] = [t in above for t in targets]
    return out


def figures(truth: np.ndarray, top: np.ndarray, suggested: np.ndarray, share: float) -> dict:
    from pixtag.model.classifier.openset import open_set_metrics

    m = open_set_metrics(truth, top, suggested, share)
    keep = ("accuracy", "abstention_rate", "false_suggestion_rate", "precision_at_share", "suggested_accuracy")
    return {k: (None if m.get(k) is None else round(float(m[k]), 4)) for k in keep}


def side_by_side(Xtr, ytr, Xun, yun, classes, target: float, share: float, seed: int) -> dict[str, dict]:
    from scipy.special import softmax

    from pixtag.model.classifier.crossval import cv_and_refit
    from pixtag.model.classifier.openset import BACKGROUND, closed_predict, confidence, wrong_confidence
    from pixtag.model.classifier.thresholds import choose_threshold
    from pixtag.model.training.runs import new_classifier

    bg_tr, cls_tr = ytr == BACKGROUND, ytr != BACKGROUND
    out: dict[str, dict] = {}
    five = new_classifier().fit(Xtr[cls_tr], ytr[cls_tr])
    P5 = five.predict_tag_proba(Xun)
    top5 = closed_predict(five, Xun)
    out["A closed-set, p >= 0.5 (old)"] = figures(yun, top5, P5.max(1) >= 0.5, share)
    t = choose_threshold(five.predict_tag_proba(Xtr[bg_tr]).max(1), target)
    out["A2 closed-set, max p, threshold on train background"] = figures(yun, top5, P5.max(1) >= t, share)

    oof: list[np.ndarray] = []
    _, six = cv_and_refit(new_classifier(), Xtr, ytr, 5, seed, oof)
    labels = [str(c) for c in six.classes_]
    t6 = max(choose_threshold(confidence(oof[0][bg_tr], labels), target),
             choose_threshold(wrong_confidence(oof[0][cls_tr], labels, ytr[cls_tr]), target))
    out["B background class, threshold out-of-fold (pixtag)"] = figures(
        yun, closed_predict(six, Xun), confidence(six.predict_tag_proba(Xun), labels) >= t6, share)

    def unit(Z: np.ndarray) -> np.ndarray:
        return Z / np.linalg.norm(Z, axis=1, keepdims=True)

    ref = unit(Xtr[cls_tr])

    def knn(Z: np.ndarray, k: int = 5) -> np.ndarray:
        return np.sort(unit(Z) @ ref.T, axis=1)[:, -k:].mean(1)

    tk = choose_threshold(knn(Xtr[bg_tr]), target)
    out["C k-NN cosine to class images, threshold on train background"] = figures(yun, top5, knn(Xun) >= tk, share)
    logit_tr, logit_un = five.log_odds(Xtr[bg_tr]), five.log_odds(Xun)
    tm = choose_threshold(logit_tr.max(1), target)
    out["D max-logit, threshold on train background"] = figures(yun, top5, logit_un.max(1) >= tm, share)
    energy = lambda z: np.log(np.exp(z).sum(1))  # noqa: E731
    te = choose_threshold(energy(logit_tr), target)
    out["D2 energy, threshold on train background"] = figures(yun, top5, energy(logit_un) >= te, share)

    weight, bias = imagenet_head()
    mass = wordnet_mass_matrix(classes)
    def imagenet(Z: np.ndarray) -> np.ndarray:
        return softmax(Z @ weight.T + bias, axis=1) @ mass
    ti = choose_threshold(imagenet(Xtr[bg_tr]).max(1), target)
    m_un = imagenet(Xun)
    out["E ImageNet->WordNet mass, threshold on train background"] = figures(
        yun, top5, m_un.max(1) >= ti, share)
    out["E2 ImageNet->WordNet: top class mass >= 0.5"] = figures(yun, top5, m_un.max(1) >= 0.5, share)
    return out


def main() -> None:
    shared = REPO.parent / "shared" / "data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=shared / "photos5")
    ap.add_argument("--others", type=Path, default=shared / "others")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--background", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=float, default=0.03)
    ap.add_argument("--share", type=float, default=0.15)
    args = ap.parse_args()

    from pixtag.core.config import load_settings
    from pixtag.model.backbones.weights import LITE0
    from pixtag.model.classifier.openset import BACKGROUND
    from pixtag.model.serving.evaluate import evaluate
    from pixtag.model.training.train import train

    start = time.perf_counter()
    classes, train_cls, train_bg, unseen_cls, unseen_bg = split_files(
        args.photos, args.others, args.per_class, args.background, args.seed)
    with tempfile.TemporaryDirectory(prefix="pixtag-openset-") as tmp:
        root = Path(tmp)
        store_dataset(root / "train", train_cls + [(BACKGROUND, r) for r in train_bg])
        store_dataset(root / "unseen", unseen_cls + [(BACKGROUND, r) for _, r in unseen_bg])
        settings = load_settings(storage=str(root / "train"), backbone=LITE0, mlflow_uri=f"sqlite:///{root}/m.db",
                                 false_suggestion_target=args.target, in_class_share=args.share, seed=args.seed)
        trained = train(settings, reuse=False)
        served = evaluate(settings, link_folder(root / "photos", unseen_cls), trained["model_uri"],
                          link_folder(root / "others", unseen_bg))
        Xtr, ytr = features(settings, root / "train")
        Xun, yun = features(settings.model_copy(update={"storage": str(root / "unseen")}), root / "unseen")
        options = side_by_side(Xtr, ytr, Xun, yun, classes, args.target, args.share, args.seed)
    pixtag = {"accuracy": served["accuracy"], "abstention_rate": served["abstention_rate"],
              "false_suggestion_rate": served["false_suggestion_rate"],
              "precision_at_share": served["precision_at_share"], "threshold": trained["threshold"],
              "class_images": served["images"], "other_images": served["others_images"],
              "train_test_split": {k: trained[k] for k in ("test_accuracy", "abstention_rate",
                                                           "false_suggestion_rate")}}
    width = max(map(len, options))
    print(f"{'option':<{width}}  accuracy  abstention  false-sugg  precision@{args.share}")
    for name, f in options.items():
        print(f"{name:<{width}}  {f['accuracy']:.4f}    {f['abstention_rate']:.4f}      "
              f"{f['false_suggestion_rate']:.4f}      {f['precision_at_share']}")
    print(f"pixtag served path (files, sliding windows): accuracy {pixtag['accuracy']:.4f}, abstention "
          f"{pixtag['abstention_rate']:.4f}, false suggestions {pixtag['false_suggestion_rate']:.4f} on "
          f"{pixtag['other_images']} unseen others, precision {pixtag['precision_at_share']:.4f}")
    targets = {"false_suggestion_rate<=0.05": pixtag["false_suggestion_rate"] <= 0.05,
               "accuracy>=0.97": pixtag["accuracy"] >= 0.97, "abstention<=0.05": pixtag["abstention_rate"] <= 0.05}
    print(json.dumps({"bench": "openset", "machine": platform.processor() or platform.machine(),
                      "cpus": len(os.sched_getaffinity(0)), "load": round(os.getloadavg()[0], 2),
                      "per_class": args.per_class, "background": len(train_bg), "seed": args.seed,
                      "target": args.target, "pixtag": pixtag, "targets_met": targets, "options": options,
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
