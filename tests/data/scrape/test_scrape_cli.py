"""`pixtag scrape` as a user runs it: then `pixtag validate`, a kill and a resume, and S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage, open_storage
from pixtag.data.scrape import scrape
from pixtag.model.classifier.openset import BACKGROUND
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.model import World
from tests.conftest import DEMO_TOKEN, demo_settings

pytestmark = pytest.mark.slow
PIXTAG = str(Path(sys.executable).parent / "pixtag")
CLASSES = "cat,dog,bird,flower,car"


def cli_env(url: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    env.update({"PIXTAG_INSTANCE_URL": url, "PIXTAG_TOKEN": DEMO_TOKEN, "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
                "PIXTAG_REQUEST_RATE": "50", "PIXTAG_STORAGE": str(tmp / "store"), **extra})
    return env


def test_scrape_150_per_class_then_validate_passes(demo: DemoInstance, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    env = cli_env(demo.url, tmp_path)
    scraped = subprocess.run([PIXTAG, "scrape", "--classes", CLASSES, "--per-class", "150", "--out", str(out),
                              "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert scraped.returncode == 0, scraped.stderr[-2000:]
    assert "cat: 150 images" in scraped.stdout and "car: 150 images" in scraped.stdout
    assert DEMO_TOKEN not in scraped.stdout + scraped.stderr
    validated = subprocess.run([PIXTAG, "validate", str(out), "--classes", CLASSES], env=env,
                               capture_output=True, text=True, timeout=300)
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-2000:]
    manifest = LocalStorage(out).read_parquet(dataset.MANIFEST)
    counts = manifest["label"].value_counts().to_dict()
    # by default the scrape also keeps background images (posts with none of the classes' tags)
    background = counts.pop(BACKGROUND)
    assert background > 0 and f"{BACKGROUND}: {background} images" in scraped.stdout
    assert counts == dict.fromkeys(CLASSES.split(","), 150)


def test_a_killed_scrape_resumes_to_the_same_manifest_without_downloading_twice(
        world: World, tmp_path: Path) -> None:
    args = ["scrape", "--classes", "cat,dog", "--per-class", "60", "--no-progress"]
    with DemoInstance(world=world, token=DEMO_TOKEN) as inst:
        env = cli_env(inst.url, tmp_path)
        interrupted = tmp_path / "interrupted"
        proc = subprocess.Popen([PIXTAG, *args, "--out", str(interrupted)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while inst.stats()["requests"].get("media", 0) < 50 and time.monotonic() < deadline:
            assert proc.poll() is None, "the scrape ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before_kill = inst.stats()["requests"].get("media", 0)
        assert 50 <= before_kill < 120
        assert not (interrupted / dataset.MANIFEST).exists()
        resumed = subprocess.run([PIXTAG, *args, "--out", str(interrupted)], env=env, capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        second_run = inst.stats()["requests"].get("media", 0) - before_kill

        fresh = tmp_path / "uninterrupted"
        start = inst.stats()["requests"].get("media", 0)
        done = subprocess.run([PIXTAG, *args, "--out", str(fresh)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        uninterrupted = inst.stats()["requests"].get("media", 0) - start
    pd.testing.assert_frame_equal(LocalStorage(interrupted).read_parquet(dataset.MANIFEST),
                                  LocalStorage(fresh).read_parquet(dataset.MANIFEST))
    pd.testing.assert_frame_equal(LocalStorage(interrupted).read_parquet(dataset.DROPPED),
                                  LocalStorage(fresh).read_parquet(dataset.DROPPED))
    # Only downloads in flight at the kill may be fetched again (at most the concurrency, 8); and
    # a run's last downloads, in flight when its class fills up, vary by as much again.
    assert before_kill + second_run <= uninterrupted + 2 * 8
    assert second_run < uninterrupted - 40
    # A write cut by the kill leaves at most a hidden *.part file, never a truncated file
    # under its real name: every stored file the manifest names opens completely.
    store = LocalStorage(interrupted)
    assert not [k for k in store.list() if k.endswith(".part")]
    from PIL import Image

    for key in LocalStorage(interrupted).read_parquet(dataset.MANIFEST)["path"]:
        with Image.open(store.local_path(key)) as img:
            img.load()


def test_scrape_to_s3_then_validate(demo: DemoInstance, s3_endpoint: str, tmp_path: Path) -> None:
    from pixtag.data.validate import validate

    uri = "s3://pixtag-test/datasets/run1"
    settings = load_settings(**demo_settings(demo.url, storage="s3://pixtag-test/pixtag", s3_endpoint_url=s3_endpoint,
                                             min_per_class=20))
    summary = scrape(settings, ["cat", "dog"], per_class=20, out=uri, progress=False)
    assert summary.counts == {"cat": 20, "dog": 20}
    store = open_storage(uri, s3_endpoint)
    manifest = store.read_parquet(dataset.MANIFEST)
    assert len(manifest) == 40
    assert all(store.exists(p) for p in manifest["path"])
    assert all(store.exists(p) for p in manifest["original_path"])
    assert not list(LocalStorage(tmp_path).list("datasets"))
    report = validate(uri, settings, classes=["cat", "dog"])
    assert report.success, report.summary()
    assert store.exists("reports/data_docs/index.html") or str(report.docs).startswith("s3://")
