"""Airflow for the local stacks, driven from outside (its CLI and REST API; Airflow is never
imported): the environment of every Airflow process, the connection and pools from
``airflow/*.json``, the REST client (:class:`AirflowAPI`), and the PIXTAG_* settings every
task sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.stack.process import Layout, Ports, StackError, bin_path, free_port

log = logs.get_logger(__name__)

DAG_ID = "pixtag_retrain"
SUMMARY_TASK = "report"


def airflow_env(layout: Layout, api_port: int, pixtag_env: dict[str, str]) -> dict[str, str]:
    """Environment for every Airflow process: embedded SQLite, LocalExecutor, the repo's DAGs."""
    home = layout.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    # Not the caller's Airflow configuration, task context or MLflow run/experiment: the stack's
    # tasks log to the stack's own MLflow.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW__", "AIRFLOW_CTX_", "MLFLOW_EXPERIMENT", "MLFLOW_RUN_ID"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(layout.project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(layout.project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(home),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port(8974)),
        # The log servers default to fixed ports on all interfaces; a second stack would clash.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(8793)),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port(8794)),
        "NO_PROXY": "*",
        # `airflow standalone` starts its components as `airflow ...` from PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    env.update(pixtag_env)
    return env


def _fernet_key(home: Path) -> str:
    path = home / "fernet.key"
    if not path.is_file():
        from cryptography.fernet import Fernet

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    return path.read_text().strip()


def airflow_cli(env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run([bin_path("airflow"), *args], env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise StackError(f"airflow {' '.join(args[:2])} failed: {logs.redact(proc.stderr.strip()[-600:])}")
    return proc.stdout


def setup_airflow(layout: Layout, env: dict[str, str], instance_url: str, token: str | None) -> None:
    """Migrate the DB, import pools and the Pixelfed connection (declared in airflow/*.json)."""
    airflow_cli(env, "db", "migrate")
    airflow_cli(env, "pools", "import", str(layout.project / "airflow" / "pools.json"))
    import_connections(layout, env, instance_url, token)


def import_connections(layout: Layout, env: dict[str, str], instance_url: str, token: str | None) -> None:
    """Fill airflow/connections.json from the settings and import it from a 0600 temp file."""
    text = (layout.project / "airflow" / "connections.json").read_text()
    text = text.replace("${PIXTAG_INSTANCE_URL}", instance_url).replace("${PIXTAG_TOKEN}", token or "")
    path = layout.airflow_home / ".connections.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        airflow_cli(env, "connections", "import", "--overwrite", str(path))
    finally:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------- the API ---------
class AirflowAPI:
    """The few REST calls the runner needs (Airflow 3, /api/v2, JWT from /auth/token)."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.trust_env = False
        resp = self._session.post(f"{self.base_url}/auth/token",
                                  json={"username": username, "password": password}, timeout=30)
        if resp.status_code >= 300:
            raise StackError(f"cannot log in to Airflow's API (HTTP {resp.status_code})")
        token = resp.json()["access_token"]
        logs.register_secret(token)
        self._session.headers["Authorization"] = f"Bearer {token}"

    def auth_headers(self) -> dict[str, str]:
        """The API's Authorization header (to fetch other authenticated pages of the server)."""
        return {"Authorization": self._session.headers["Authorization"]}

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kw)
        if resp.status_code >= 300:
            raise StackError(f"{method} /api/v2{path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.call("GET", f"/dags/{dag_id}")
                return
            except StackError:
                time.sleep(2)
        errors = self.call("GET", "/importErrors")
        raise StackError(f"DAG {dag_id} did not appear within {timeout:.0f} s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def follow(self, dag_id: str, run_id: str, timeout: float, echo: Any = None) -> str:
        deadline = time.monotonic() + timeout
        reported: dict[str, str] = {}
        while time.monotonic() < deadline:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            for ti in self.task_instances(dag_id, run_id):
                key = ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else "")
                state = ti.get("state") or "none"
                if reported.get(key) != state and state in ("running", "success", "failed",
                                                            "up_for_retry", "skipped", "upstream_failed"):
                    reported[key] = state
                    if echo:
                        echo(f"  {key:<28} {state}")
            if run["state"] in ("success", "failed"):
                return str(run["state"])
            time.sleep(3)
        raise StackError(f"run {run_id} did not finish within {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return list(data.get("task_instances", []))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1,
                 tail: int = 40) -> str:
        """The last ``tail`` lines of a task instance's log (to say why a task failed)."""
        data = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                         params={"map_index": map_index, "full_content": True},
                         headers={"Accept": "application/json"})
        content = data.get("content", []) if isinstance(data, dict) else []
        lines = [f"{e.get('level', '')} {e.get('event', '')}" if isinstance(e, dict) else str(e) for e in content]
        return "\n".join(lines[-tail:])

    def failure_logs(self, dag_id: str, run_id: str) -> str:
        """The log tails of the run's failed task instances (empty when none failed)."""
        parts = []
        for ti in self.task_instances(dag_id, run_id):
            if ti.get("state") == "failed":
                try:
                    text = self.task_log(dag_id, run_id, ti["task_id"], max(int(ti.get("try_number") or 1), 1),
                                         ti.get("map_index", -1))
                except StackError as exc:
                    text = f"(no log: {exc})"
                parts.append(f"--- {ti['task_id']}[{ti.get('map_index', -1)}] ---\n{text}")
        return "\n".join(parts)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        data = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                         params={"deserialize": True, "stringify": False})
        return data.get("value")


def admin_password(layout: Layout) -> str:
    path = layout.airflow_home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 60
    while not path.is_file() and time.monotonic() < deadline:
        time.sleep(1)
    if not path.is_file():
        raise StackError(f"Airflow wrote no admin password to {path}")
    return str(json.loads(path.read_text())["admin"])


DEMO_CONFIRMED = ("ramen",)  # the local instance's class words that WordNet 3.0 lacks (pixtag_demo's world)


def pixtag_environment(settings: Settings, layout: Layout, ports: Ports, instance_url: str,
                       demo: bool) -> dict[str, str]:
    """PIXTAG_* settings every task sees (the token travels as the Airflow connection only; the bot's
    token goes to the bot alone)."""
    storage = settings.storage
    if not storage.startswith("s3://"):
        default = Settings.model_fields["storage"].default
        storage = str(layout.data) if storage == default else str(Path(storage).resolve())
    env = {
        "PIXTAG_STORAGE": storage,
        "PIXTAG_MLFLOW_URI": f"http://127.0.0.1:{ports.mlflow}",
        "PIXTAG_INSTANCE_URL": instance_url,
    }
    if demo:
        env.update({
            "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
            "PIXTAG_REQUEST_RATE": str(max(settings.request_rate, 20.0)),
            "PIXTAG_PER_CLASS": str(min(settings.per_class, 150)),
            "PIXTAG_MIN_PER_CLASS": str(min(settings.min_per_class, 100)),
            # The local instance's classes WordNet 3.0 lacks, confirmed as its admin would in the
            # trigger form (Tags to confirm); the run's report names the confirmation.
            "PIXTAG_CONFIRM_TAGS": ",".join(dict.fromkeys([*settings.confirm_tags, *DEMO_CONFIRMED])),
        })
    if settings.backbone == "auto" and demo:
        env["PIXTAG_BACKBONE"] = "efficientnet_lite0"
    for key, value in os.environ.items():
        if key.startswith("PIXTAG_") and key not in env and key not in ("PIXTAG_TOKEN", "PIXTAG_BOT_TOKEN"):
            env[key] = value
    return env


@dataclass
class Stack:
    """A running local stack (see :func:`stack`)."""

    layout: Layout
    ports: Ports
    instance_url: str
    demo: bool
    api: AirflowAPI
    bot: bool = False  # `pixtag bot` runs beside the stack (var/run/bot.log)

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.airflow}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    def admin_password(self) -> str:
        return admin_password(self.layout)
