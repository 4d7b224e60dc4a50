"""Scrape throughput against the local instance, sequential vs concurrent downloads, side by side.

Starts ``pixtag-demo`` on ../shared/data/photos5 as a separate process (so the
server does not share this process's GIL), then scrapes the five classes twice into fresh
folders: once with one download at a time, once with the configured concurrency. Reports
images/s (images downloaded, checked, resized and stored per second of scraping), the API
request rate the server observed (max requests in any 1 s window, from its own timestamps)
against the configured limit. The last line is JSON.

    .venv/bin/python bench/scrape.py [--per-class 150] [--concurrency 8] [--rate 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pixtag.core.config import load_settings
from pixtag.data.scrape import assemble, scrape_class
from pixtag.sources.http import max_rate
from pixtag.tags.normalize import normalize

CLASSES = ["cat", "dog", "bird", "flower", "car"]
TOKEN = "bench-token-0123456789"


def start_instance(photos: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PIXTAG_DEMO_TOKEN": TOKEN}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pixtag-demo"), "--photos", str(photos),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/instance", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the demo instance did not start")


def server_max_rps(url: str) -> float:
    times = requests.get(f"{url}/_demo/stats", timeout=10).json()["api_times"]
    return max_rate(sorted(times))


def one_run(url: str, per_class: int, concurrency: int, rate: float, out: Path) -> dict:
    requests.delete(f"{url}/_demo/stats", timeout=10)
    settings = load_settings(instance_url=url, token=TOKEN, allow_private_hosts=["127.0.0.1"], request_rate=rate,
                             download_concurrency=concurrency, storage=str(out / "store"))
    started = time.monotonic()
    downloaded = 0
    for label in CLASSES:
        summary = scrape_class(settings, label, CLASSES, str(out / "dataset"), per_class=per_class, progress=False)
        downloaded += summary.downloaded
    kept = assemble(settings, CLASSES, str(out / "dataset"), per_class).images
    seconds = time.monotonic() - started
    return {"concurrency": concurrency, "seconds": round(seconds, 2), "downloaded": downloaded, "kept": kept,
            "images_per_s": round(downloaded / seconds, 1), "api_rps_max": server_max_rps(url),
            "api_rps_limit": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("PIXTAG_PHOTOS",
                                                                            REPO.parent / "shared/data/photos5")))
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=5.0, help="API requests per second allowed")
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()

    normalize("WarmUpWordNet")  # load WordNet once, outside the timed runs
    proc = start_instance(args.photos, args.port)
    url = f"http://127.0.0.1:{args.port}"
    tmp = Path(tempfile.mkdtemp(prefix="pixtag-bench-"))
    try:
        runs = [one_run(url, args.per_class, c, args.rate, tmp / f"c{c}") for c in (1, args.concurrency)]
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'concurrency':>11} {'seconds':>8} {'downloaded':>10} {'kept':>6} {'img/s':>7} {'API rps max':>11}")
    for r in runs:
        print(f"{r['concurrency']:>11} {r['seconds']:>8} {r['downloaded']:>10} {r['kept']:>6} "
              f"{r['images_per_s']:>7} {r['api_rps_max']:>11} (limit {r['api_rps_limit']})")
    best = runs[-1]
    print(json.dumps({"images_per_s": best["images_per_s"], "concurrency": best["concurrency"],
                      "api_rps_max": best["api_rps_max"], "api_rps_limit": best["api_rps_limit"],
                      "sequential_images_per_s": runs[0]["images_per_s"]}))


if __name__ == "__main__":
    main()
