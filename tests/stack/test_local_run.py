"""What a new user does first: ``pixtag local run --no-keep`` (``make run``), then ``pixtag suggest``
on a photo, from a plain shell in the checkout and with no setting at all. Both find the same
registry (the local stack's, ``var/mlflow/``), with the stack stopped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Small and fast: three automatic classes of the local instance, 30 images each, no background.
RUN_SETTINGS = {
    "PIXTAG_PER_CLASS": "30",
    "PIXTAG_MIN_PER_CLASS": "25",
    "PIXTAG_MAX_CLASSES": "3",
    "PIXTAG_BACKBONE": "efficientnet_lite0",
    "PIXTAG_ACCURACY_FLOOR": "0.5",
    "PIXTAG_RECALL_FLOOR": "0.5",
    "PIXTAG_REQUEST_RATE": "100",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checkout(tmp: Path) -> Path:
    """A fresh project folder (what the stack reads from the checkout: the DAG, Airflow's set-up,
    the plugin), with no ``var/`` yet."""
    project = tmp / "checkout"
    for folder in ("dags", "airflow", "plugins"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def plain_shell(tmp: Path, photos: Path) -> dict[str, str]:
    """A shell with nothing of pixtag's, MLflow's or Airflow's set: the venv is not activated."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXTAG_", "MLFLOW_", "AIRFLOW", "_AIRFLOW", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), PIXTAG_PHOTOS=str(photos), PIXTAG_OTHERS="", PIXTAG_BACKGROUND="0",
               PIXTAG_CREDENTIALS_FILE=str(tmp / "home" / "credentials.yaml"))
    return env


@pytest.mark.slow
def test_suggest_finds_the_champion_that_local_run_promoted(photos: Path, tmp_path: Path) -> None:
    project = checkout(tmp_path)
    env = plain_shell(tmp_path, photos)
    ports = [str(free_port()) for _ in range(3)]
    run = subprocess.run(
        [str(BIN / "pixtag"), "local", "run", "--no-keep", "--json", "--timeout", "900",
         "--airflow-port", ports[0], "--mlflow-port", ports[1], "--demo-port", ports[2]],
        cwd=project, env=env | RUN_SETTINGS, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    summary = json.loads(run.stdout[run.stdout.index("\n{") + 1:])
    decision = summary["report"]["decision"]
    assert decision["promoted"], decision
    assert (project / "var" / "mlflow" / "mlflow.db").is_file()
    classes = summary["report"]["classes"]

    # The stack is stopped; a plain shell in the checkout, no setting: the same champion.
    image = sorted((photos / classes[0]).glob("*.jpg"))[-1]
    suggested = subprocess.run([str(BIN / "pixtag"), "suggest", "--json", str(image)], cwd=project, env=env,
                               capture_output=True, text=True, timeout=300)
    assert suggested.returncode == 0, suggested.stderr[-3000:]
    (result,) = json.loads(suggested.stdout)
    assert result["tags"] and result["tags"][0]["tag"] == classes[0], result
    assert not (project / "mlruns").exists()  # no stray store in the folder the command ran in
