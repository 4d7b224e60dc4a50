"""``pixtag local``: the embedded default stack on one machine, for ``make run``.

It starts, each in its own process group so that stopping leaves nothing behind:

* an MLflow tracking server (SQLite backend, local artifacts served through the server);
* the local Pixelfed-compatible instance on the photos folder, unless a real instance is
  configured (``PIXTAG_INSTANCE_URL`` + a token);
* Airflow 3 (``airflow standalone``: SQLite, LocalExecutor, small parallelism), with pools and
  the Pixelfed connection created from ``airflow/*.json``;

then triggers ``pixtag_retrain`` through Airflow's REST API, follows it to the end and prints
what a user wants to see. Nothing here imports Airflow: it drives the ``airflow`` CLI and API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError

log = logs.get_logger(__name__)

DAG_ID = "pixtag_retrain"
SUMMARY_TASK = "report"
DEMO_TOKEN_FILE = "demo-token"


class StackError(PixtagError):
    """A service of the local stack did not start or the run did not finish."""


def echo(message: object = "") -> None:
    """The default progress printer of :func:`stack` and :func:`run_stack`: a line on stdout."""
    print(message, flush=True)


@dataclass
class Layout:
    """Where the local stack keeps its state (by default all under ``<project>/var``)."""

    project: Path
    var: Path | None = None

    def __post_init__(self) -> None:
        self.var = Path(self.var) if self.var else self.project / "var"

    @property
    def airflow_home(self) -> Path:
        return self.var / "airflow"

    @property
    def mlflow_dir(self) -> Path:
        return self.var / "mlflow"

    @property
    def data(self) -> Path:
        return self.var / "data"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"


def find_project(start: Path | None = None) -> Path:
    """The project folder: the nearest one (from cwd) holding ``dags/`` and ``airflow/``."""
    here = (start or Path.cwd()).resolve()
    for path in (here, *here.parents, Path(__file__).resolve().parents[2]):  # pixtag/stack/local.py
        if (path / "dags").is_dir() and (path / "airflow" / "pools.json").is_file():
            return path
    raise StackError("cannot find the pixtag project (a folder with dags/ and airflow/): "
                     "run from the repository")


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else a free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


# ------------------------------------------------------------------------- processes -------
def start_process(layout: Layout, name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in a new session (its own process group), logging to var/run/NAME.log."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    logfile = layout.logfile(name).open("ab")
    proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=layout.project, start_new_session=True)
    layout.pidfile(name).write_text(str(proc.pid))
    log.info("started %s (pid %d), log %s", name, proc.pid, layout.logfile(name))
    return proc.pid


def stop_process(layout: Layout, name: str, grace: float = 20.0) -> bool:
    """SIGTERM the process group of NAME, then SIGKILL what is left after ``grace`` seconds."""
    pidfile = layout.pidfile(name)
    if not pidfile.is_file():
        return False
    pid = int(pidfile.read_text().strip() or 0)
    pidfile.unlink(missing_ok=True)
    if pid <= 0:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)  # our own child: a zombie leader would keep its group "alive"
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    log.info("stopped %s", name)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(layout: Layout) -> list[str]:
    stopped = []
    for name in ("airflow", "mlflow", "demo-instance"):
        if stop_process(layout, name):
            stopped.append(name)
    return stopped


def wait_http(url: str, timeout: float, name: str, layout: Layout) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=3).status_code < 500:
                return
        except requests.RequestException:
            pass
        pid = layout.pidfile(name)
        if pid.is_file() and not _alive(int(pid.read_text())):
            raise StackError(f"{name} exited during start-up; see {layout.logfile(name)}")
        time.sleep(1)
    raise StackError(f"{name} did not answer at {url} within {timeout:.0f} s; see {layout.logfile(name)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------- services --------
def bin_path(name: str) -> str:
    """An executable of this virtual environment (falls back to PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def mlflow_argv(layout: Layout, port: int) -> list[str]:
    layout.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return [
        bin_path("mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{layout.mlflow_dir / 'mlflow.db'}",
        "--artifacts-destination", str(layout.mlflow_dir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]


def demo_token(layout: Layout) -> str:
    """A random token for the local instance, kept in var/run (mode 0600), never printed."""
    path = layout.run_dir / DEMO_TOKEN_FILE
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        token = "demo-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
    token = path.read_text().strip()
    logs.register_secret(token)
    return token


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


# ------------------------------------------------------------------------- the run ---------
@dataclass
class Ports:
    airflow: int = 8080
    mlflow: int = 5000
    demo: int = 8765


def pixtag_environment(settings: Settings, layout: Layout, ports: Ports, instance_url: str,
                       demo: bool) -> dict[str, str]:
    """PIXTAG_* settings every task sees (the token travels as the Airflow connection only)."""
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
        })
    if settings.backbone == "auto" and demo:
        env["PIXTAG_BACKBONE"] = "efficientnet_lite0"
    for key, value in os.environ.items():
        if key.startswith("PIXTAG_") and key not in env and key != "PIXTAG_TOKEN":
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

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.airflow}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.mlflow}"

    def admin_password(self) -> str:
        return admin_password(self.layout)


@dataclass
class Instance:
    """The Pixelfed instance a local stack reads: a configured one, or the local demo instance."""

    url: str
    token: str | None = field(repr=False)  # never in a log line or traceback
    demo: bool
    photos: Path | None = None


def choose_instance(settings: Settings, layout: Layout, photos: Path | None, demo_port: int) -> Instance:
    """The configured instance (URL + token), else the local instance on ``photos``."""
    if settings.instance_url and settings.token_value():
        return Instance(str(settings.instance_url), settings.token_value(), demo=False)
    photos = photos or Path(os.environ.get("PIXTAG_PHOTOS") or layout.project.parent / "shared/data/photos5")
    if not photos.is_dir():
        raise StackError(f"no Pixelfed instance configured and no photos at {photos}: set "
                         "PIXTAG_INSTANCE_URL + PIXTAG_TOKEN, or pass --photos DIR")
    return Instance(f"http://127.0.0.1:{demo_port}", demo_token(layout), demo=True, photos=photos)


def start_demo(layout: Layout, instance: Instance, port: int) -> None:
    """Start the local instance (nothing for a configured one); its token goes by environment."""
    if instance.demo:
        start_process(layout, "demo-instance",
                      [bin_path("pixtag-demo"), "--photos", str(instance.photos), "--port", str(port)],
                      {**os.environ, "PIXTAG_DEMO_TOKEN": instance.token or ""})


@contextlib.contextmanager
def stack(settings: Settings, *, photos: Path | None = None, ports: Ports | None = None,
          layout: Layout | None = None, echo: Any = echo) -> Iterator[Stack]:
    """Start MLflow, the local instance (unless a real one is configured) and Airflow; stop
    every process group on exit, whatever happens."""
    layout = layout or Layout(find_project())
    stop_all(layout)  # leftovers of an interrupted earlier run
    wanted = ports or Ports()
    ports = Ports(free_port(wanted.airflow), free_port(wanted.mlflow), free_port(wanted.demo))
    instance = choose_instance(settings, layout, photos, ports.demo)
    demo, instance_url, token = instance.demo, instance.url, instance.token
    env = airflow_env(layout, ports.airflow, pixtag_environment(settings, layout, ports, instance_url, demo))
    try:
        echo(f"pixtag: starting MLflow on :{ports.mlflow}" + (f", the local instance on :{ports.demo}" if demo else "")
             + f" and Airflow on :{ports.airflow} (logs in {layout.run_dir})")
        start_process(layout, "mlflow", mlflow_argv(layout, ports.mlflow),
                      {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        start_demo(layout, instance, ports.demo)
        setup_airflow(layout, env, instance_url, token)
        start_process(layout, "airflow", [bin_path("airflow"), "standalone"], env)
        wait_http(f"http://127.0.0.1:{ports.mlflow}/health", 120, "mlflow", layout)
        if demo:
            wait_http(f"{instance_url}/api/v1/instance", 60, "demo-instance", layout)
        wait_http(f"http://127.0.0.1:{ports.airflow}/api/v2/monitor/health", 240, "airflow", layout)
        api = AirflowAPI(f"http://127.0.0.1:{ports.airflow}", "admin", admin_password(layout))
        api.wait_for_dag(DAG_ID, 180)
        yield Stack(layout, ports, instance_url, demo, api)
    finally:
        stopped = stop_all(layout)
        if stopped:
            echo(f"pixtag: stopped {', '.join(stopped)}")


def run_stack(settings: Settings, *, photos: Path | None, ports: Ports, conf: dict[str, Any],
              keep: bool | None, timeout: float, echo: Any = echo,
              distributed: bool = False) -> dict[str, Any]:
    """Start everything, run the DAG once, print the outcome; stop unless ``keep``.

    ``distributed``: the engines of docker-compose.yaml instead (:mod:`pixtag.stack.cluster`).
    """
    if distributed:
        from pixtag.stack.cluster import ClusterPorts, cluster

        starter: Any = cluster(settings, photos=photos, echo=echo,
                               ports=ClusterPorts(ports.airflow, ports.mlflow, ports.demo))
    else:
        starter = stack(settings, photos=photos, ports=ports, echo=echo)
    with starter as running:
        api = running.api
        run_id = api.trigger(DAG_ID, conf)
        echo(f"pixtag: triggered {DAG_ID} run {run_id}; following it (Airflow UI: {running.airflow_url})")
        state = api.follow(DAG_ID, run_id, timeout, echo)
        summary = {"state": state, "run_id": run_id, "airflow_url": running.airflow_url,
                   "mlflow_url": running.mlflow_url, "instance": running.instance_url, "demo": running.demo}
        try:
            summary["report"] = api.xcom(DAG_ID, run_id, SUMMARY_TASK)
        except StackError as exc:
            summary["report"] = None
            summary["report_error"] = str(exc)
        print_summary(summary, echo)
        if state != "success":
            failed = [t["task_id"] for t in api.task_instances(DAG_ID, run_id) if t.get("state") == "failed"]
            echo(api.failure_logs(DAG_ID, run_id))
            raise StackError(f"{DAG_ID} run {run_id} ended {state} (failed: {', '.join(failed) or '?'}); "
                             f"task logs in the Airflow UI or {running.layout.airflow_home / 'logs'}")
        if keep is None:
            keep = sys.stdin.isatty() and sys.stdout.isatty()
        if keep:
            echo("pixtag: the UIs stay up; press Ctrl-C to stop everything.")
            _wait_for_interrupt()
        return summary


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def print_summary(summary: dict[str, Any], echo: Any) -> None:
    report = summary.get("report") or {}
    echo("")
    echo(f"pixtag_retrain: {summary['state']}")
    if report:
        echo(f"  classes:        {', '.join(report.get('classes', []))}")
        counts = report.get("counts", {})
        if counts:
            echo("  images:         " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if report.get("dropped"):
            echo("  dropped:        " + ", ".join(f"{k} {v}" for k, v in report["dropped"].items()))
        if report.get("backbone"):
            echo(f"  backbone:       {report['backbone']}")
        if report.get("cv_mean") is not None:
            echo(f"  CV accuracy:    {report['cv_mean']:.3f} ± {report.get('cv_std', 0):.3f} "
                 f"({report.get('cv_folds', '?')} folds)")
        if report.get("test_accuracy") is not None:
            echo(f"  test accuracy:  {report['test_accuracy']:.3f}")
        if report.get("false_suggestion_rate") is not None:
            echo(f"  false suggestions: {report['false_suggestion_rate']:.3f} of held-out background "
                 f"images got a tag (abstained on {report.get('abstention_rate') or 0:.3f} of class images)")
        elif report.get("test_accuracy") is not None:
            echo("  false suggestions: unmeasured (no background images: set background > 0)")
        decision = report.get("decision") or {}
        if decision and report.get("reused") and decision.get("already_champion"):
            echo(f"  model:          {decision.get('model_uri', '')} version {decision.get('version', '?')}: "
                 "unchanged champion (same images, backbone and settings: nothing new to train)")
        elif decision:
            echo(f"  model:          {decision.get('model_uri', '')} version {decision.get('version', '?')}: "
                 f"{'PROMOTED to champion' if decision.get('promoted') else 'not promoted'}"
                 f" ({decision.get('reason', '')})")
    echo(f"  Airflow UI:     {summary['airflow_url']}  (user admin, password in var/airflow/"
         "simple_auth_manager_passwords.json.generated)")
    echo(f"  MLflow UI:      {summary['mlflow_url']}")
    echo(f"  instance:       {summary['instance']}{'  (local demo instance)' if summary['demo'] else ''}")
