"""Feature extraction throughput, PyTorch vs ONNX Runtime, model-only vs end-to-end, in one run.

* model-only: ``embed`` on batches of images already decoded (uint8, 224 px);
* end-to-end: the production path (``pixtag.model.features.embed_keys``): the dataset's stored JPEGs
  read and decoded in DataLoader workers while the model runs on the last batch.

The stored JPEGs are made from the photos in ``--photos`` (CLASS/*.jpg) by the scraper's own
``pixtag.data.images.prepare`` (the study's resize to 224 px) into a temporary dataset folder. Both
runtimes run the same weights (ONNX: the graph ``pixtag.model.backbones.onnx_runtime`` exports and checks). Rounds
alternate (torch model-only, torch end-to-end, onnx model-only, onnx end-to-end, ...) so all
four see the same machine load; each figure is the best round.

    python bench/features.py [--backbone efficientnet_lite0] [--images 256] [--rounds 3]

The last line is JSON: {"backbone", "images", "<runtime>_model_only_img_s",
"<runtime>_end_to_end_img_s", "onnx_vs_torch" (end-to-end ONNX / end-to-end PyTorch),
"onnx_end_to_end_vs_model_only", "max_abs_diff"}. Targets: onnx_vs_torch >= 2.0 and
onnx_end_to_end_vs_model_only >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", default=os.environ.get("PIXTAG_PHOTOS")
                        or str(REPO.parent / "shared" / "data" / "photos5"))
    args = parser.parse_args()

    import onnxruntime
    import torch

    from pixtag.core.storage import open_storage
    from pixtag.data.images import prepare
    from pixtag.model.backbones.onnx_runtime import to_onnx
    from pixtag.model.backbones.pytorch import create_backbone
    from pixtag.model.features.decoding import decode_image, embed_keys, loader_workers

    photos = Path(args.photos)
    files = sorted(photos.glob("*/*.jpg"))
    files = [files[i] for i in np.linspace(0, len(files) - 1, args.images).astype(int)]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_storage(tmp)
        keys = []
        for i, f in enumerate(files):
            keys.append(f"images/{i:05d}.jpg")
            store.write_bytes(keys[-1], prepare(f.read_bytes(), reject_grayscale=False).data)
        torch_backbone = create_backbone(args.backbone, device="cpu")
        _, onnx_backbone = to_onnx(torch_backbone, 1e-4)
        backbones = {"torch": torch_backbone, "onnx": onnx_backbone}
        size = torch_backbone.input_size
        decoded = np.stack([decode_image(store.read_bytes(k), size) for k in keys])
        batches = [decoded[i:i + args.batch_size] for i in range(0, len(decoded), args.batch_size)]
        diff = float(np.abs(torch_backbone.embed(batches[0]) - onnx_backbone.embed(batches[0])).max())
        print(f"machine: {platform.machine()} {len(os.sched_getaffinity(0))} cpus, torch "
              f"{torch.__version__} threads {torch.get_num_threads()}, onnxruntime "
              f"{onnxruntime.__version__}, loader workers {loader_workers('cpu')}, "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"{args.backbone}: {len(keys)} stored 224 px JPEGs from {photos}, batch "
              f"{args.batch_size}, max |onnx - torch| {diff:.2g}")

        best: dict[str, float] = {}
        for r in range(args.rounds):
            line = []
            for name, backbone in backbones.items():
                start = time.perf_counter()
                for batch in batches:
                    backbone.embed(batch)
                rates = {"model_only": len(keys) / (time.perf_counter() - start)}
                start = time.perf_counter()
                n = sum(len(v) for v in embed_keys(backbone, store, keys, args.batch_size))
                rates["end_to_end"] = n / (time.perf_counter() - start)
                for what, rate in rates.items():
                    best[f"{name}_{what}"] = max(best.get(f"{name}_{what}", 0.0), rate)
                    line.append(f"{name} {what.replace('_', '-')} {rate:.1f}")
            print(f"round {r + 1}: " + ", ".join(line) + " img/s")
    print(f"load after: {os.getloadavg()[0]:.1f}")
    result = {"backbone": args.backbone, "images": len(keys),
              **{f"{k}_img_s": round(v, 2) for k, v in best.items()},
              "onnx_vs_torch": round(best["onnx_end_to_end"] / best["torch_end_to_end"], 3),
              "onnx_end_to_end_vs_model_only": round(best["onnx_end_to_end"] / best["onnx_model_only"], 3),
              "max_abs_diff": diff}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
