"""Feature extraction throughput: model-only forward vs end-to-end, side by side in one run.

* model-only: ``Backbone.embed`` on batches of images already decoded and resized (uint8);
* end-to-end: the production path (``pixtag.features.embed_keys``): JPEG files read and decoded
  and resized (the study's rule) in DataLoader workers while the model runs on the last batch.

The same photos (original files from ``--photos``, CLASS/*.jpg) feed both. Rounds alternate
(model-only, end-to-end, ...) so both see the same machine load; each figure is the best round.

    python bench/features.py [--backbone efficientnet_lite0] [--images 128] [--rounds 3]

The last line is JSON: {"backbone", "model_only_img_s", "end_to_end_img_s", "ratio"}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", default=os.environ.get("PIXTAG_PHOTOS")
                        or str(REPO.parent / "shared" / "data" / "photos5"))
    args = parser.parse_args()

    from pixtag.backbones import create_backbone
    from pixtag.features import decode_image, embed_keys, loader_workers
    from pixtag.storage import open_storage

    photos = Path(args.photos)
    keys = sorted(p.relative_to(photos).as_posix() for p in photos.glob("*/*.jpg"))
    keys = [keys[i] for i in np.linspace(0, len(keys) - 1, args.images).astype(int)]
    store = open_storage(photos)
    backbone = create_backbone(args.backbone)
    decoded = np.stack([decode_image(store.read_bytes(k), backbone.input_size) for k in keys])
    batches = [decoded[i:i + args.batch_size] for i in range(0, len(decoded), args.batch_size)]
    backbone.embed(batches[0][:4])  # warm-up
    print(f"machine: {platform.machine()} {len(os.sched_getaffinity(0))} cpus, device "
          f"{backbone.device}, torch threads {__import__('torch').get_num_threads()}, "
          f"loader workers {loader_workers(backbone.device.type)}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{args.backbone}: {len(keys)} photos from {photos}, batch {args.batch_size}")

    model_only, end_to_end = [], []
    for r in range(args.rounds):
        start = time.perf_counter()
        for batch in batches:
            backbone.embed(batch)
        model_only.append(len(keys) / (time.perf_counter() - start))
        start = time.perf_counter()
        n = sum(len(v) for v in embed_keys(backbone, store, keys, args.batch_size))
        end_to_end.append(n / (time.perf_counter() - start))
        print(f"round {r + 1}: model-only {model_only[-1]:.1f} img/s, "
              f"end-to-end {end_to_end[-1]:.1f} img/s")
    best_model, best_e2e = max(model_only), max(end_to_end)
    print(json.dumps({"backbone": args.backbone, "model_only_img_s": round(best_model, 2),
                      "end_to_end_img_s": round(best_e2e, 2),
                      "ratio": round(best_e2e / best_model, 3)}))


if __name__ == "__main__":
    main()
