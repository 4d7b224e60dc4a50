"""The bot on the local instance: mention -> reply latency, one mention at a time and in a burst.

Trains a champion as ``bench/serve.py`` does (``--per-class`` photos per class of ``--photos``,
``--background`` everyday photos of ``--others``) in a temporary MLflow store, starts the local
instance (``pixtag_demo``, in this process) with its bot account, and runs ``pixtag bot`` as its
own process, in the foreground as a deployment runs it, at ``--poll-interval`` (default: the
setting's default, 10 s) and ``--request-rate`` (default 20/s, what ``make run`` sets for the
local instance; pixtag's default for a real instance is 2/s). Then, side by side in one run:

* **single**: ``--singles`` mentions, one at a time, each a photo posted by an account of its
  own mentioning ``@pixtag``, a random (seeded) pause of up to one poll interval between them;
* **burst**: ``--burst`` mentions from ``--accounts`` accounts posted at once (20 threads);
* **single, fast poll** (``--fast-interval``, 1 s; ``0``: skipped): the single phase again with a
  second bot process polling every second, which shows what the poll interval costs.

Latency is the instance's own clock: the reply's ``created_at`` minus the mention's (ms). Every
mention must get exactly one reply (duplicates and drops are counted). The bot's memory (RSS,
``/proc``) is read once it has answered its first mention (warm), after each phase and at the
end, and sampled every 0.5 s for the peak.

    python bench/bot.py [--singles 20] [--burst 100] [--accounts 20] [--poll-interval 10]

The last line is JSON. Targets: single p95 <= poll interval + 2 s; the burst answered in full with
no duplicate and no drop; memory flat (``rss_growth_pct``, end vs warm, < 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
BOT_TOKEN = "bench-bot-token-4xQz"
DEMO_TOKEN = "bench-demo-token"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def when(status: dict[str, Any]) -> float:
    return datetime.fromisoformat(status["created_at"].replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 3)


class Person:
    def __init__(self, url: str, name: str):
        body = requests.post(f"{url}/_demo/tokens", json={"username": name}, timeout=30).json()
        self.url, self.name = url, name
        self.headers = {"Authorization": f"Bearer {body['token']}", "Accept": "application/json"}

    def post(self, image: bytes, text: str) -> dict[str, Any]:
        media = requests.post(f"{self.url}/api/v2/media", headers=self.headers, timeout=60,
                              files={"file": ("p.jpg", image, "image/jpeg")}).json()["id"]
        resp = requests.post(f"{self.url}/api/v1/statuses", headers=self.headers, timeout=60,
                             data={"status": text, "media_ids[]": [media]})
        resp.raise_for_status()
        return resp.json()

    def replies(self, status_id: str) -> list[dict[str, Any]]:
        context = requests.get(f"{self.url}/api/v1/statuses/{status_id}/context", headers=self.headers,
                               timeout=30).json()
        return [s for s in context["descendants"] if s["account"]["username"] == "pixtag"]


class BotProcess:
    """``pixtag bot`` in the foreground, as its own process; its RSS sampled for the peak."""

    def __init__(self, url: str, uri: str, store: Path, interval: float, rate: float, log: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")} | {
            "PYTHONPATH": str(REPO), "PIXTAG_INSTANCE_URL": url, "PIXTAG_BOT_TOKEN": BOT_TOKEN,
            "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_MLFLOW_URI": uri, "PIXTAG_STORAGE": str(store),
            "PIXTAG_BOT_POLL_INTERVAL": str(interval), "PIXTAG_REQUEST_RATE": str(rate)}
        self.log = log
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "pixtag"), "bot"], env=env,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.peak = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            value = rss_mb(self.proc.pid)
            if value == value:  # not NaN
                self.peak = max(self.peak, value)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while "serving pixtag version" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_answered(pairs: list[tuple[Person, dict[str, Any]]], timeout: float) -> dict[str, list[dict[str, Any]]]:
    """Each mention's bot replies, once every mention has one (or at the timeout)."""
    deadline = time.monotonic() + timeout
    found: dict[str, list[dict[str, Any]]] = {}
    while True:
        for person, post in pairs:
            if not found.get(post["id"]):
                found[post["id"]] = person.replies(post["id"])
        if all(found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.5 if len(pairs) == 1 else 2.0)  # latency is the instance's clock, not this loop's


def singles(url: str, images: list[bytes], n: int, interval: float, prefix: str, rng: random.Random,
            bot: BotProcess) -> dict[str, Any]:
    latencies, duplicates, missing = [], 0, 0
    for i in range(n):
        time.sleep(rng.uniform(0, interval))  # no lock-step with the bot's polls
        person = Person(url, f"{prefix}{i}")
        post = person.post(images[i % len(images)], f"what would you tag this? @pixtag ({prefix}{i})")
        replies = wait_answered([(person, post)], interval * 3 + 60)[post["id"]]
        time.sleep(0.2)
        replies = person.replies(post["id"])
        duplicates += max(0, len(replies) - 1)
        missing += not replies
        if replies:
            latencies.append(when(replies[0]) - when(post))
    return {"mentions": n, "answered": len(latencies), "duplicates": duplicates, "missing": missing,
            "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
            "max_s": round(max(latencies), 3), "rss_mb": bot.rss()}


def burst(url: str, images: list[bytes], n: int, accounts: int, interval: float, bot: BotProcess) -> dict[str, Any]:
    people = [Person(url, f"burst{i}") for i in range(accounts)]
    jobs = [(people[i % accounts], images[i % len(images)], i) for i in range(n)]
    start = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        posts = list(pool.map(lambda job: (job[0], job[0].post(job[1], f"@pixtag burst {job[2]}")), jobs))
    posted_s = time.monotonic() - start
    found = wait_answered(posts, interval * 3 + n * 5)
    time.sleep(interval + 1)  # one more poll: nothing more may come
    replies = {post["id"]: person.replies(post["id"]) for person, post in posts}
    latencies = [when(r[0]) - when(post) for (_, post), r in ((p, replies[p[1]["id"]]) for p in posts) if r]
    last = max((when(r[0]) for r in replies.values() if r), default=float("nan"))
    first = min(when(post) for _, post in posts)
    return {"mentions": n, "accounts": accounts, "posted_in_s": round(posted_s, 2),
            "answered": sum(1 for r in replies.values() if r), "duplicates": sum(max(0, len(r) - 1) for r in
                                                                                replies.values()),
            "missing": sum(1 for r in replies.values() if not r), "seen_while_waiting": sum(map(bool, found.values())),
            "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
            "all_answered_after_s": round(last - first, 2), "answers_per_s": round(len(latencies) / (last - first), 2),
            "rss_mb": bot.rss()}


def main() -> None:
    from pixtag.core.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default=str(SHARED / "photos5"))
    parser.add_argument("--others", default=str(SHARED / "others"))
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--background", type=int, default=80)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=Settings.model_fields["bot_poll_interval"].default)
    parser.add_argument("--fast-interval", type=float, default=1.0)
    parser.add_argument("--fast-singles", type=int, default=10)
    parser.add_argument("--request-rate", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bench.serve import champion
    from pixtag_demo.app import DemoInstance
    from pixtag_demo.world.builder import build_world

    rng = random.Random(args.seed)
    out: dict[str, Any] = {"bench": "bot", "poll_interval_s": args.poll_interval, "request_rate": args.request_rate}
    print(f"machine: {platform.machine()} {len(os.sched_getaffinity(0))} cpus, load {os.getloadavg()[0]:.1f}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="pixtag-bench-bot-") as tmp_name:
        tmp = Path(tmp_name)
        uri, unseen = champion(tmp, argparse.Namespace(photos=args.photos, others=args.others,
                                                       per_class=args.per_class, background=args.background))
        images = [p.read_bytes() for p in unseen]
        print(f"champion trained ({args.per_class}/class + {args.background} background); {len(images)} unseen "
              "photos to post", flush=True)
        with DemoInstance(world=build_world(Path(args.photos)), token=DEMO_TOKEN, bot_token=BOT_TOKEN) as inst:
            bot = BotProcess(inst.url, uri, tmp / "store", args.poll_interval, args.request_rate, tmp / "bot.log")
            try:
                bot.wait_ready()
                out["rss_mb"] = {"started": bot.rss()}
                warm = singles(inst.url, images, 1, 0.0, "warm", rng, bot)  # the first answer loads the rest
                out["rss_mb"]["warm"] = warm["rss_mb"]
                out["single"] = singles(inst.url, images, args.singles, args.poll_interval, "single", rng, bot)
                print(f"single: {json.dumps(out['single'])}", flush=True)
                out["burst"] = burst(inst.url, images, args.burst, args.accounts, args.poll_interval, bot)
                print(f"burst: {json.dumps(out['burst'])}", flush=True)
                out["rss_mb"].update(end=bot.rss(), peak=bot.peak)
            finally:
                bot.stop()
            if args.fast_interval:
                fast = BotProcess(inst.url, uri, tmp / "store", args.fast_interval, args.request_rate, tmp / "fast.log")
                try:
                    fast.wait_ready()
                    out["single_fast_poll"] = singles(inst.url, images, args.fast_singles, args.fast_interval,
                                                      "fast", rng, fast) | {"poll_interval_s": args.fast_interval}
                    print(f"single, fast poll: {json.dumps(out['single_fast_poll'])}", flush=True)
                finally:
                    fast.stop()
    rss = out["rss_mb"]
    rss["growth_pct"] = round(100 * (rss["end"] - rss["warm"]) / rss["warm"], 1)
    b = out["burst"]
    out["targets"] = {
        "single_p95_le_poll_plus_2s": out["single"]["p95_s"] <= args.poll_interval + 2,
        "burst_complete_no_duplicate": b["answered"] == b["mentions"] and b["duplicates"] == 0 and b["missing"] == 0,
        "memory_flat_lt_10pct": rss["growth_pct"] < 10,
    }
    print(f"load after: {os.getloadavg()[0]:.1f}", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
