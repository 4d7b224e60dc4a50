"""ViT-B/16 feature extraction on a CUDA device: model-only vs end to end, per precision variant.

* model-only: ``Backbone.embed`` on one uint8 batch already on the device (normalise + forward);
* end to end: the production path, ``pixtag.model.features.embed_keys``: 224x224 JPEG bytes read from
  storage and decoded in DataLoader workers, pinned batches, ``non_blocking`` host-to-device
  copy of the uint8 batch, uint8 → float and normalisation on the device, forward.

The JPEGs are prepared first as the dataset stores them (the photos resized by the study's rule,
``images/ab/<sha256>.jpg`` in a temporary folder) and cycled to reach ``--n`` images. Weights are
random (pretrained=False): this measures speed only. Variants:

* ``fp32``; ``bf16`` (autocast); ``bf16_cl`` (+ channels-last: what production runs on CUDA);
* ``bf16_cl_compile`` (+ ``torch.compile``). On CPU the compile backend defaults to ``eager``
  (graph capture only): inductor's C++ code generation took 331 s for a tiny ViT on this 2-vCPU
  box. ``--compile-backend inductor`` measures it anyway. A compile that fails on CPU is reported
  in the JSON (``skipped``); on CUDA it fails the run.

The first ``--warmup`` batches of each measure (compilation, cuDNN/cuBLAS set-up) are not timed,
nor, end to end, the first batch of each loader worker (its start-up); ``torch.cuda.synchronize()``
brackets every timed region. When decoding is the bottleneck, the workers (started together)
have about one batch each decoded ahead when timing starts, which flatters end to end by about
``workers / (n / batch)`` (6 % at the CUDA defaults); ``end_to_end_cold_img_s`` times every
image, worker start-up included, a lower bound.

    python bench/gpu.py [--n 32768] [--batch-size 256] [--workers 8] [--variants fp32,bf16,...]

Defaults on CUDA: n 32768, batch 256, workers as production (:func:`loader_workers`), warm-up 3;
on CPU: n 8, batch 4, warm-up 1 (ViT-B/16 runs ~2 img/s on 2 cores). The last line is JSON:
{"device", "model", "n", "batch_size", "workers", "variants": {name: {"model_only_img_s",
"end_to_end_img_s", "ratio", "end_to_end_cold_img_s"} or {"skipped"}}, "best_variant",
"best_end_to_end_img_s", "load_1min"}; ratio = end to end / model-only.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: name -> (bf16 autocast, channels-last, torch.compile)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "fp32": (False, False, False),
    "bf16": (True, False, False),
    "bf16_cl": (True, True, False),
    "bf16_cl_compile": (True, True, True),
}
SIZE = 224


def prepare_jpegs(photos: Path, root: Path, count: int) -> list[str]:
    """Store ``count`` photos (spread over the classes) as the dataset holds them; return keys."""
    from PIL import Image

    from pixtag.core.dataset import image_key
    from pixtag.data.images import encode_jpeg, square_resize

    files = sorted(photos.glob("*/*.jpg"))
    files = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).astype(int)]

    def one(path: Path) -> str:
        with Image.open(path) as image:
            data = encode_jpeg(square_resize(image.convert("RGB"), SIZE)[0])
        key = image_key(hashlib.sha256(data).hexdigest())
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
        return key

    with ThreadPoolExecutor(min(8, len(os.sched_getaffinity(0)))) as pool:
        return list(pool.map(one, files))


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(args: argparse.Namespace, variant: str, device: str) -> Any:
    import timm

    from pixtag.model.backbones.pytorch import wrap
    from pixtag.model.backbones.weights import WeightsSource

    autocast, channels_last, compile_ = VARIANTS[variant]
    model = timm.create_model(args.model, pretrained=False, num_classes=0)
    return wrap(args.model, model, WeightsSource("random"), device, autocast=autocast,
                channels_last=channels_last, compile=args.compile_backend if compile_ else None)


def model_only(backbone: Any, batch: np.ndarray, batches: int, warmup: int) -> float:
    """images/s of ``embed`` on one uint8 batch resident on the device."""
    import torch

    x = torch.from_numpy(batch).to(backbone.device)
    for _ in range(warmup):
        backbone.embed(x)
    sync(backbone.device)
    start = time.perf_counter()
    for _ in range(batches):
        backbone.embed(x)
    sync(backbone.device)
    return batches * len(batch) / (time.perf_counter() - start)


def end_to_end(backbone: Any, store: Any, keys: list[str], batch_size: int, workers: int,
               warmup: int) -> tuple[float, float]:
    """(steady images/s after ``warmup`` batches, images/s over all ``keys``) of embed_keys."""
    from pixtag.model.features.decoding import embed_keys

    sync(backbone.device)
    cold = time.perf_counter()
    start, timed = cold, 0
    for i, vectors in enumerate(embed_keys(backbone, store, keys, batch_size, workers)):
        if i < warmup:
            if i == warmup - 1:
                sync(backbone.device)
                start = time.perf_counter()
            continue
        timed += len(vectors)
    sync(backbone.device)
    end = time.perf_counter()
    return timed / (end - start), len(keys) / (end - cold)


def e2e_warmup_batches(args: argparse.Namespace) -> int:
    """Untimed end-to-end batches: ``--warmup``, and at least one per loader worker (each one's
    start-up), so that timing starts once every worker delivers."""
    return max(args.warmup, args.workers)


def run_variant(args: argparse.Namespace, variant: str, store: Any, keys: list[str],
                device: str) -> dict[str, Any]:
    from pixtag.model.features.decoding import decode_image

    backbone = build(args, variant, device)
    batch = np.stack([decode_image(store.read_bytes(k), backbone.input_size)
                      for k in keys[:args.batch_size]])
    e2e_warmup = e2e_warmup_batches(args)
    timed = len(keys) // args.batch_size - e2e_warmup  # the same timed images as end to end
    mo = model_only(backbone, batch, timed, args.warmup)
    e2e, cold = end_to_end(backbone, store, keys, args.batch_size, args.workers, e2e_warmup)
    return {"model_only_img_s": round(mo, 2), "end_to_end_img_s": round(e2e, 2),
            "ratio": round(e2e / mo, 3), "end_to_end_cold_img_s": round(cold, 2)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=None, help="timed images per measure (CUDA 32768, CPU 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="CUDA 256, CPU 4")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader decode processes (default: production's loader_workers)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches (CUDA 3, CPU 1)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:1, cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: every core this process may use)")
    parser.add_argument("--model", default="vit_base_patch16_224", help="timm model name")
    parser.add_argument("--compile-backend", default=None, help="CUDA inductor, CPU eager")
    parser.add_argument("--photos", default=os.environ.get("PIXTAG_PHOTOS")
                        or str(REPO.parent / "shared" / "data" / "photos5"))
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    from pixtag.core.storage import open_storage
    from pixtag.model.backbones.pytorch import pick_device
    from pixtag.model.features.decoding import loader_workers

    device = pick_device(None if args.device == "auto" else args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    args.n = args.n or (32768 if cuda else 8)
    args.batch_size = args.batch_size or (256 if cuda else 4)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.workers = args.workers if args.workers is not None else loader_workers(device.type)
    args.compile_backend = args.compile_backend or ("inductor" if cuda else "eager")
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1 (decoding runs in DataLoader workers)")
    n = max(args.batch_size, args.n // args.batch_size * args.batch_size)  # whole batches only
    name = torch.cuda.get_device_name(device) if cuda else "cpu"

    with tempfile.TemporaryDirectory(prefix="pixtag-gpu-") as tmp:
        stored = prepare_jpegs(Path(args.photos), Path(tmp), n)
        keys = list(itertools.islice(itertools.cycle(stored),
                                     n + e2e_warmup_batches(args) * args.batch_size))
        store = open_storage(tmp)
        print(f"machine: {platform.machine()} {len(os.sched_getaffinity(0))} cpus, device {name}, "
              f"torch {torch.__version__}, threads {torch.get_num_threads()}, loader workers "
              f"{args.workers}, load {os.getloadavg()[0]:.2f}", flush=True)
        print(f"{args.model} (random weights): {n} timed images ({len(stored)} distinct "
              f"{SIZE}x{SIZE} JPEGs cycled), batch {args.batch_size}, warm-up {args.warmup} "
              f"batches, compile backend {args.compile_backend}", flush=True)
        results: dict[str, dict[str, Any]] = {}
        for variant in args.variants.split(","):
            try:
                results[variant] = run_variant(args, variant, store, keys, str(device))
            except Exception as exc:
                if cuda or not VARIANTS[variant][2]:
                    raise
                results[variant] = {"skipped": f"torch.compile failed on CPU: "
                                               f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"{variant:>16}: " + ", ".join(f"{k} {v}" for k, v in results[variant].items()),
                  flush=True)
    measured = {k: v for k, v in results.items() if "skipped" not in v}
    best = max(measured, key=lambda k: measured[k]["end_to_end_img_s"]) if measured else None
    print(json.dumps({
        "device": name, "model": args.model, "weights": "random (pretrained=False)",
        "torch": torch.__version__, "n": n, "batch_size": args.batch_size,
        "workers": args.workers, "warmup_batches": args.warmup,
        "e2e_warmup_batches": e2e_warmup_batches(args),
        "compile_backend": args.compile_backend, "variants": results, "best_variant": best,
        "best_end_to_end_img_s": measured[best]["end_to_end_img_s"] if best else None,
        "load_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
