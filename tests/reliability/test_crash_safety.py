"""Crash safety: SIGKILL a scrape, a feature extraction and the training and gate tasks at
seeded random points, re-run them, and compare with an uninterrupted run: the same manifest,
the same feature vectors, the same registry; no partial file is ever read as complete, and a
killed training run is never registered."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.model.backbones.weights import LITE0
from pixtag_demo.app import DemoInstance
from tests.conftest import DEMO_TOKEN, REPO
from tests.reliability.cases import FEATURE_KILLS, KILL_SEED, SCRAPE_KILLS, TRAIN_KILLS
from tests.reliability.crashpoint import counting

pytestmark = pytest.mark.slow
PIXTAG = str(Path(sys.executable).parent / "pixtag")
SHARD = 8  # vectors per feature shard in the killed runs (pixtag's default is 2048)


def env(**pixtag: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    return base | {"PYTHONPATH": str(REPO)} | {f"PIXTAG_{k.upper()}": v for k, v in pixtag.items()}


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            kill_group(proc)
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- scrape ------------------------------------------------------------------------------------
def forked(work: Callable[[], None]) -> int:
    """Run ``work`` in a child process (as Airflow's executors fork a task from a parent that has
    imported everything, here WordNet: a fresh ``pixtag scrape`` spends ~20 s loading it)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_killed_scrapes_resume_to_the_uninterrupted_dataset(world: Any, wordnet: Any, tmp_path: Path) -> None:
    from pixtag.data.scrape import scrape

    rng = random.Random(f"{KILL_SEED}:scrape")
    classes, per_class = ["cat", "dog"], 30
    with DemoInstance(world=world, token=DEMO_TOKEN) as inst:
        settings = load_settings(instance_url=inst.url, token=DEMO_TOKEN, allow_private_hosts=["127.0.0.1"],
                                 request_rate=50, storage=str(tmp_path / "store"))

        def served(kind: str) -> int:
            return inst.stats()["requests"].get(kind, 0)

        def run(out: Path) -> Callable[[], None]:
            return lambda: scrape(settings, classes, per_class=per_class, out=str(out), progress=False) and None

        run(tmp_path / "uninterrupted")()
        media_total = served("media")
        # the first kill while paging the API, the others at media downloads (seeded)
        cuts = sorted(rng.sample(range(3, media_total - 3), SCRAPE_KILLS - 1))
        points = [("tag_timeline", rng.randint(1, 3)), *(("media", b - a) for a, b in itertools.pairwise([0, *cuts]))]
        out = tmp_path / "interrupted"
        for kind, point in points:
            start = served(kind)
            pid = forked(run(out))
            deadline = time.monotonic() + 120
            while served(kind) - start < point:
                assert os.waitpid(pid, os.WNOHANG) == (0, 0), f"the scrape ended before {point} {kind} requests"
                assert time.monotonic() < deadline
                time.sleep(0.002)
            os.kill(pid, signal.SIGKILL)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
            assert not (out / dataset.MANIFEST).exists()
        before_resume = served("media")
        run(out)()
        resumed_downloads = served("media") - before_resume
        downloads = served("media") - media_total
    fresh, resumed = LocalStorage(tmp_path / "uninterrupted"), LocalStorage(out)
    pd.testing.assert_frame_equal(resumed.read_parquet(dataset.MANIFEST), fresh.read_parquet(dataset.MANIFEST))
    pd.testing.assert_frame_equal(resumed.read_parquet(dataset.DROPPED), fresh.read_parquet(dataset.DROPPED))
    # Downloads are repeated only for those in flight at a kill (8 at a time) and the few a run
    # starts after its classes fill up; the resumed run fetched only what was missing.
    assert downloads <= media_total + SCRAPE_KILLS * 8 + 16, (downloads, media_total)
    assert 0 < resumed_downloads < media_total - cuts[-1] + 8 + 16
    # Every stored file the manifest names is complete: its name is the hash of its bytes.
    for key in resumed.read_parquet(dataset.MANIFEST)["original_path"]:
        assert hashlib.sha256(resumed.read_bytes(key)).hexdigest() == Path(key).stem
    assert not [k for k in resumed.list() if k.endswith(".part")]


# --- features ----------------------------------------------------------------------------------
def test_killed_feature_extraction_resumes_to_the_same_cache(small_dataset: Path, small_features: Path,
                                                             tmp_path: Path) -> None:
    import shutil

    from pixtag.model.features.cache import read_cache
    from pixtag.model.features.compute import features

    reference = read_cache(LocalStorage(small_features), LITE0)
    root = tmp_path / "ds"
    shutil.copytree(small_dataset, root)
    store = LocalStorage(root)
    rng = random.Random(f"{KILL_SEED}:features")
    code = ("import sys, pixtag.model.features.compute as f; f.SHARD_SIZE = int(sys.argv[1]); "
            "from pixtag.cli.app import main; main(sys.argv[2:])")
    args = [sys.executable, "-c", code, str(SHARD), "features", str(root), "--backbone", LITE0,
            "--batch-size", str(SHARD)]

    def shards() -> int:
        return len(list((root / "features").rglob("*.npz"))) if (root / "features").is_dir() else 0

    interval = 0.05  # seconds per shard, until one is measured
    for _ in range(FEATURE_KILLS):
        before, after = shards(), rng.randint(1, 2)
        proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        seen = []  # when each new shard appeared
        for n in range(1, after + 1):
            wait_until(proc, lambda b=before, k=n: shards() - b >= k, f"{n} new shards")
            seen.append(time.monotonic())
        if len(seen) > 1:
            interval = seen[-1] - seen[-2]
        # Kill within one shard's time (mid-batch, mid-write, or between), so that a fast runtime
        # cannot finish the dataset before the kill.
        time.sleep(rng.uniform(0.0, 0.5) * 2 * interval)
        kill_group(proc)
        assert proc.returncode == -signal.SIGKILL
        cached = read_cache(store, LITE0)  # every shard on disk reads back whole
        assert len(cached) == SHARD * shards()
        for sha, vector in cached.items():
            np.testing.assert_allclose(vector, reference[sha], rtol=1e-4, atol=1e-4)
    kept = len(read_cache(store, LITE0))
    assert kept < len(reference), "the kills came too late to interrupt anything"
    summary = features(load_settings(storage=str(root), backbone=LITE0, batch_size=16))
    assert summary["computed"] == len(reference) - kept  # what the kills wrote is reused, not redone
    final = read_cache(store, LITE0)
    assert set(final) == set(reference)
    for sha, vector in final.items():
        np.testing.assert_allclose(vector, reference[sha], rtol=1e-4, atol=1e-4)


# --- training and the gate ---------------------------------------------------------------------
def registry_state(settings: Any) -> dict[str, Any]:
    """Versions (their gate tags, run status and figures) and aliases, without ids or times."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    versions = {}
    for mv in client.search_model_versions(f"name='{settings.model_name}'"):
        run = client.get_run(mv.run_id)
        versions[str(mv.version)] = {
            "gate": {k: v for k, v in mv.tags.items() if k.startswith("pixtag.gate.")},
            "run_status": run.info.status, "test_accuracy": run.data.metrics["test_accuracy"],
            "dataset_hash": run.data.tags["pixtag.dataset_hash"], "status": mv.status,
        }
    aliases = dict(client.get_registered_model(settings.model_name).aliases) if versions else {}
    return {"versions": versions, "aliases": {k: str(v) for k, v in aliases.items()}}


def test_killed_training_and_gate_resume_to_the_uninterrupted_registry(
        small_features: Path, new_mlflow: Callable[[Path], str], tmp_path: Path) -> None:
    """The train task (``pixtag train --no-register``) and the register task (``pixtag register
    RUN``) are killed before one of their MLflow writes (drawn with a seeded RNG from the writes an
    uninterrupted run makes), then retried as Airflow would: train again, or apply the gate to the
    same run again. The registry ends exactly as after an uninterrupted run."""
    import shutil

    from mlflow import MlflowClient

    from pixtag.model.promotion.register import register
    from pixtag.model.promotion.versions import RegistryError
    from pixtag.model.training.train import train

    values = {"storage": str(small_features), "backbone": LITE0, "accuracy_floor": 0.5}
    reference = load_settings(**values, mlflow_uri=new_mlflow(tmp_path / "reference"))
    with counting() as writes:
        trained_id = train(reference)["run_id"]
    train_writes = writes.count
    run_created = writes.names.index("SqlAlchemyStore.create_run") + 1
    trained_db = shutil.copy(tmp_path / "reference" / "mlflow.db", tmp_path / "trained.db")
    with counting() as writes:
        assert register(reference, trained_id)["decision"] == "promoted"
    register_writes = writes.count
    expected = registry_state(reference)
    assert list(expected["versions"]) == ["1"] and expected["aliases"] == {"champion": "1"}

    rng = random.Random(f"{KILL_SEED}:train")
    half = train_writes // 2
    points = [("train", rng.randint(1, half)), ("train", rng.randint(half + 1, train_writes)),
              *[("register", rng.randint(1, register_writes)) for _ in range(TRAIN_KILLS - 2)]]
    for n, (task, point) in enumerate(points):
        folder = tmp_path / f"kill{n}"
        if task == "train":
            settings = load_settings(**values, mlflow_uri=new_mlflow(folder))
            args, run_id = ["train", "--no-register", "--json"], None
        else:  # the train task finished (the reference's run); the register task is killed
            folder.mkdir()
            shutil.copy(trained_db, folder / "mlflow.db")
            settings = load_settings(**values, mlflow_uri=f"sqlite:///{folder / 'mlflow.db'}")
            args, run_id = ["register", trained_id], trained_id
        child_env = env(**{k: str(v) for k, v in values.items()}, mlflow_uri=settings.mlflow_uri)
        proc = subprocess.run([sys.executable, "-m", "tests.reliability.crashpoint", str(point), *args],
                              env=child_env, cwd=folder, capture_output=True, text=True, timeout=600)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
        assert f"SIGKILL before write {point} " in proc.stderr
        # retried as Airflow would: the train task trains again (a new run); the register task
        # applies the gate to the same run again
        run_id = run_id or train(settings)["run_id"]
        result = register(settings, run_id)
        assert result["decision"] == "promoted", (task, point, result)
        assert registry_state(settings) == expected, (task, point)
        # a run the kill left RUNNING is never registered
        client = MlflowClient(settings.mlflow_uri)
        runs = client.search_runs([client.get_experiment_by_name(settings.model_name).experiment_id])
        orphans = [r for r in runs if r.info.status != "FINISHED"]
        assert len(orphans) == (1 if task == "train" and point > run_created else 0), [r.info.status for r in runs]
        for orphan in orphans:
            with pytest.raises(RegistryError, match="not FINISHED"):
                register(settings, orphan.info.run_id)
        assert registry_state(settings) == expected
