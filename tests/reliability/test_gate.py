"""The gate when MLflow goes away: a real ``mlflow server`` is stopped between training and the
gate. The gate fails with one clear, retryable error and promotes nothing; once MLflow is back,
the retried gate rejects the worse candidate and the champion stays. (The gate's rules, and a
failure in the middle of the gate, are tested in tests/model/promotion/test_registry.py.)"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pixtag.cli import main
from pixtag.core.config import load_settings
from pixtag.model.backbones.weights import LITE0
from pixtag.model.promotion.register import register
from pixtag.model.promotion.versions import RegistryUnavailable
from pixtag.model.training.train import train
from tests.helpers import random_weights
from tests.model.serving.test_suggest import free_port, start, stop, wait_for

pytestmark = pytest.mark.slow
TINY = "mobilenetv3_small_050"


class Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite store; can be stopped and started again."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None

    def start(self) -> None:
        bin_dir = Path(sys.executable).parent
        env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        log = self.root / "server.log"
        self.proc = start([str(bin_dir / "mlflow"), "server", "--backend-store-uri",
                           f"sqlite:///{self.root / 'mlflow.db'}", "--default-artifact-root",
                           str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
                           "--workers", "1"], env, log)
        wait_for(f"{self.url}/health", self.proc, 120, log)

    def stop(self) -> None:
        stop(self.proc)


def test_mlflow_down_at_the_gate_promotes_nothing_and_the_retry_rejects_the_worse_candidate(
        small_features: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # MLflow's client would retry a refused connection for minutes; a test needs seconds.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    storage = tmp_path / "ds"
    shutil.copytree(small_features, storage)
    weights = random_weights(TINY, tmp_path / "tiny.pth")
    server = Server(tmp_path)
    server.start()
    try:
        good = load_settings(storage=str(storage), backbone=LITE0, mlflow_uri=server.url)
        worse = good.model_copy(update={"backbone": TINY, "weights": {TINY: str(weights)}})
        first = register(good, train(good)["run_id"])
        assert (first["version"], first["decision"]) == ("1", "promoted")
        candidate = train(worse)
        assert candidate["test_accuracy"] < good.accuracy_floor
        server.stop()

        started = time.monotonic()
        with pytest.raises(RegistryUnavailable) as err:
            register(worse, candidate["run_id"])
        assert time.monotonic() - started < 60
        message = str(err.value)
        assert f"MLflow at {server.url} failed during the gate" in message and "retry" in message
        # the CLI says the same in one line, without a traceback
        monkeypatch.setenv("PIXTAG_MLFLOW_URI", server.url)
        with pytest.raises(SystemExit) as exit_code:
            main(["register", candidate["run_id"]])
        assert exit_code.value.code == 2
        stderr = capsys.readouterr().err
        assert stderr.splitlines()[-1].startswith(f"pixtag: error: MLflow at {server.url}")
        assert "Traceback" not in stderr

        server.start()  # MLflow is back: Airflow's retry of the task
        retried = register(worse, candidate["run_id"])
        assert (retried["decision"], retried["promoted"]) == ("rejected", False)
        assert "below the floor" in retried["reason"]
        again = register(worse, candidate["run_id"])  # another retry changes nothing
        assert (again["version"], again["decision"]) == (retried["version"], "rejected")
        from mlflow import MlflowClient

        client = MlflowClient(server.url, registry_uri=server.url)
        assert {k: str(v) for k, v in client.get_registered_model("pixtag").aliases.items()} == {"champion": "1"}
        versions = {str(v.version): v.tags.get("pixtag.gate.decision")
                    for v in client.search_model_versions("name='pixtag'")}
        assert versions == {"1": "promoted", retried["version"]: "rejected"}
    finally:
        server.stop()
