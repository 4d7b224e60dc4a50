"""``pixtag local run --distributed``: the engines of ``docker-compose.yaml`` on one machine.

Where ``pixtag local`` runs Airflow standalone on SQLite, this starts what the distributed
deployment runs, each in its own process group, all on 127.0.0.1:

* PostgreSQL (Airflow's metadata DB and MLflow's backend store) and Redis (the Celery broker),
  from the Debian packages ``postgresql`` and ``redis-server``;
* an S3-compatible store (moto's server, unless ``PIXTAG_S3_ENDPOINT_URL`` names one) that holds
  the dataset, the feature cache and MLflow's artifacts;
* MLflow (PostgreSQL backend, artifacts on S3, served through the tracking server);
* Airflow 3 with CeleryExecutor: api-server, scheduler, dag-processor and two Celery workers,
  one for the ``default`` queue and one for the ``gpu`` queue (feature extraction);
* the local Pixelfed-compatible instance, unless a real instance is configured;
* ``pixtag bot`` (the compose file's ``bot`` service), with its state and ledger on S3.

The set-up (migrations, pools, buckets, the Pixelfed connection) is ``docker/init.py``, the
same code as the compose file's ``airflow-init`` service. Each worker reports its own host name
(``PIXTAG_WORKER_NAME``, see :func:`worker_hostname`), so a task instance shows which worker ran it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.stack.airflow import DAG_ID, AirflowAPI, Stack, airflow_env, pixtag_environment
from pixtag.stack.process import (
    Layout,
    StackError,
    bin_path,
    choose_instance,
    echo,
    find_project,
    free_port,
    start_bot,
    start_demo,
    start_process,
    stop_process,
    wait_http,
)

log = logs.get_logger(__name__)

BUCKET = "pixtag"
QUEUES = {"default": 2, "gpu": 1}  # Celery queue -> worker concurrency
# Stopped in this order: workers and Airflow first, the stores they write to last.
SERVICES = ("bot", "worker-gpu", "worker-default", "scheduler", "dag-processor", "api-server", "mlflow",
            "demo-instance", "s3", "redis", "postgres")


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for the workers: the name this worker was started with."""
    import socket

    return os.environ.get("PIXTAG_WORKER_NAME") or socket.getfqdn()


def worker_name(queue: str) -> str:
    return f"pixtag-worker-{queue}"


@dataclass
class ClusterPorts:
    airflow: int = 8080
    mlflow: int = 5000
    demo: int = 8765
    postgres: int = 5433
    redis: int = 6380
    s3: int = 9100

    def resolved(self) -> ClusterPorts:
        return ClusterPorts(*(free_port(p) for p in (self.airflow, self.mlflow, self.demo, self.postgres,
                                                     self.redis, self.s3)))


# ------------------------------------------------------------------------- PostgreSQL ------
def pg_binary(name: str) -> str:
    """A PostgreSQL server program (Debian keeps them in /usr/lib/postgresql/<version>/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise StackError(f"PostgreSQL's {name} is not installed: apt-get install postgresql "
                         "(scripts/setup_system.sh does it)")
    return path


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
    return ["runuser", "-u", "postgres", "--"]


def postgres_dir(layout: Layout) -> Path:
    """The cluster's data folder: var/postgres, or a folder in /tmp when the ``postgres`` user
    cannot reach var (a root-only parent such as pytest's tmp folder)."""
    wanted = layout.var / "postgres"
    if os.geteuid() != 0:
        return wanted
    layout.var.mkdir(parents=True, exist_ok=True)
    reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(layout.var)],
                               capture_output=True).returncode == 0
    if reachable:
        return wanted
    digest = hashlib.sha256(str(layout.var.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pixtag-postgres-{digest}"


def init_postgres(data: Path, password: str) -> None:
    """``initdb`` once (user ``pixtag``, password auth on TCP); owned by ``postgres`` under root."""
    if (data / "PG_VERSION").is_file():
        return
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    with tempfile.NamedTemporaryFile("w", delete=False, prefix="pixtag-pgpw-") as fh:
        fh.write(password)
    pwfile = Path(fh.name)
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(data, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        proc = subprocess.run([*_as_postgres(), pg_binary("initdb"), "-D", str(data), "-U", "pixtag",
                               "--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=peer",
                               "-E", "UTF8", "--locale=C.UTF-8"], capture_output=True, text=True)
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise StackError(f"initdb failed: {proc.stderr.strip()[-500:]}")


def wait_postgres(url: str, timeout: float, layout: Layout) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL did not accept connections: {str(exc).strip()[:200]}; "
                                 f"see {layout.logfile('postgres')}") from None
            time.sleep(0.5)


def create_databases(url: str, names: list[str]) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def secret(layout: Layout, name: str) -> str:
    """A random secret kept in var/run/NAME (0600), created once."""
    path = layout.run_dir / name
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    value = path.read_text().strip()
    logs.register_secret(value)
    return value


# ------------------------------------------------------------------------- the stack -------
@dataclass
class Cluster(Stack):
    """A running distributed stack: :class:`pixtag.stack.airflow.Stack` plus where its stores are."""

    s3_endpoint: str = ""
    storage: str = ""
    postgres_url: str = ""


def cluster_env(layout: Layout, ports: ClusterPorts, pixtag_env: dict[str, str], pg_password: str,
                s3_endpoint: str) -> dict[str, str]:
    """Environment of every Airflow process: CeleryExecutor, PostgreSQL, Redis, data on S3."""
    pg = f"pixtag:{pg_password}@127.0.0.1:{ports.postgres}"
    env = airflow_env(layout, ports.airflow, pixtag_env)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}/airflow",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{ports.redis}/0",
        # The driver is named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3, not installed.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}/airflow",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "8",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret(layout, "jwt-secret"),
        "AIRFLOW__API__SECRET_KEY": secret(layout, "api-secret"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "pixtag"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "pixtag-local"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "PIXTAG_S3_ENDPOINT_URL": s3_endpoint,
    })
    return env


def worker_env(env: dict[str, str], queue: str) -> dict[str, str]:
    """One Celery worker's environment: its own name (reported as the task's host) and log port."""
    return {**env, "PIXTAG_WORKER_NAME": worker_name(queue),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pixtag.stack.cluster.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(8793 + len(queue)))}


def stop_cluster(layout: Layout) -> list[str]:
    return [name for name in SERVICES if stop_process(layout, name)]


def init_cluster(layout: Layout, env: dict[str, str], instance_url: str, token: str | None,
                 admin: str) -> None:
    """``docker/init.py``: migrate, pools, buckets, connection; then the admin password file."""
    init = [sys.executable, str(layout.project / "docker" / "init.py")]
    for step in ("setup", "admin-password"):
        proc = subprocess.run([*init, step], env={**env, "PIXTAG_TOKEN": token or "",
                                                  "AIRFLOW_ADMIN_PASSWORD": admin},
                              capture_output=True, text=True, cwd=layout.project)
        if proc.returncode != 0:
            raise StackError(f"docker/init.py {step} failed: {logs.redact(proc.stderr.strip()[-600:])}")


@contextlib.contextmanager
def cluster(settings: Settings, *, photos: Path | None = None, ports: ClusterPorts | None = None,
            layout: Layout | None = None, echo: Any = echo) -> Iterator[Cluster]:
    """Start the distributed stack (see the module docstring); stop it all on exit."""
    layout = layout or Layout(find_project())
    stop_cluster(layout)  # leftovers of an interrupted earlier run
    ports = (ports or ClusterPorts()).resolved()
    instance = choose_instance(settings, layout, photos, ports.demo)
    demo, instance_url, token = instance.demo, instance.url, instance.token
    s3_endpoint = settings.s3_endpoint_url or f"http://127.0.0.1:{ports.s3}"
    storage = settings.storage if settings.storage.startswith("s3://") else f"s3://{BUCKET}/data"
    pg_password = secret(layout, "postgres-password")
    pg_url = f"postgresql://pixtag:{pg_password}@127.0.0.1:{ports.postgres}"
    pixtag_env = pixtag_environment(settings, layout, _mlflow_ports(ports), instance_url, demo)
    pixtag_env["PIXTAG_STORAGE"] = storage
    env = cluster_env(layout, ports, pixtag_env, pg_password, s3_endpoint)
    admin = secret(layout, "admin-password")
    try:
        echo(f"pixtag: starting PostgreSQL :{ports.postgres}, Redis :{ports.redis}, "
             + ("" if settings.s3_endpoint_url else f"S3 (moto) :{ports.s3}, ")
             + f"MLflow :{ports.mlflow}, Airflow (Celery) :{ports.airflow} (logs in {layout.run_dir})")
        _start_engines(layout, ports, env, pg_password, s3=not settings.s3_endpoint_url)
        start_demo(layout, instance, ports.demo)
        wait_postgres(f"{pg_url}/postgres", 60, layout)
        create_databases(f"{pg_url}/postgres", ["airflow", "mlflow"])
        env["MLFLOW_ARTIFACTS_DESTINATION"] = f"s3://{BUCKET}/mlflow"
        init_cluster(layout, env, instance_url, token, admin)
        _start_mlflow(layout, ports, env, s3_endpoint, pg_url)
        _start_airflow(layout, ports, env, settings.gpu_queue)
        wait_http(f"http://127.0.0.1:{ports.mlflow}/health", 180, "mlflow", layout)
        if demo:
            wait_http(f"{instance_url}/api/v1/instance", 60, "demo-instance", layout)
        bot = start_bot(layout, instance, {**pixtag_env, "PIXTAG_S3_ENDPOINT_URL": s3_endpoint,
                                           **{k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                  "AWS_DEFAULT_REGION")}})
        wait_http(f"http://127.0.0.1:{ports.airflow}/api/v2/monitor/health", 240, "api-server", layout)
        api = AirflowAPI(f"http://127.0.0.1:{ports.airflow}", "admin", admin)
        api.wait_for_dag(DAG_ID, 240)
        yield Cluster(layout, _mlflow_ports(ports), instance_url, demo, api, bot=bot,
                      s3_endpoint=s3_endpoint, storage=storage, postgres_url=pg_url)
    finally:
        stopped = stop_cluster(layout)
        if stopped:
            echo(f"pixtag: stopped {', '.join(stopped)}")


def _start_engines(layout: Layout, ports: ClusterPorts, env: dict[str, str], pg_password: str, *, s3: bool) -> None:
    """PostgreSQL, Redis and (unless an S3 endpoint is configured) moto's S3, on 127.0.0.1."""
    data = postgres_dir(layout)
    init_postgres(data, pg_password)
    start_process(layout, "postgres", [*_as_postgres(), pg_binary("postgres"), "-D", str(data),
                                       "-h", "127.0.0.1", "-p", str(ports.postgres), "-k", str(data)], env)
    (layout.var / "redis").mkdir(parents=True, exist_ok=True)
    start_process(layout, "redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(ports.redis),
                                    "--save", "", "--appendonly", "no", "--dir", str(layout.var / "redis")], env)
    if s3:
        start_process(layout, "s3", [bin_path("moto_server"), "-H", "127.0.0.1", "-p", str(ports.s3)], env)


def _start_mlflow(layout: Layout, ports: ClusterPorts, env: dict[str, str], s3_endpoint: str, pg_url: str) -> None:
    """MLflow on PostgreSQL, its artifacts proxied to S3. The backend URI (with its password) goes
    by environment, not on the command line."""
    start_process(layout, "mlflow", [
        bin_path("mlflow"), "server",
        "--artifacts-destination", env["MLFLOW_ARTIFACTS_DESTINATION"], "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(ports.mlflow), "--workers", "1",
    ], {**env, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_BACKEND_STORE_URI": f"{pg_url.replace('postgresql://', 'postgresql+psycopg2://')}/mlflow"})


def _start_airflow(layout: Layout, ports: ClusterPorts, env: dict[str, str], gpu_queue: str) -> None:
    """Airflow's API server, scheduler, DAG processor and one Celery worker per queue."""
    airflow = bin_path("airflow")
    start_process(layout, "api-server", [airflow, "api-server", "--port", str(ports.airflow)], env)
    start_process(layout, "scheduler", [airflow, "scheduler"], env)
    start_process(layout, "dag-processor", [airflow, "dag-processor"], env)
    for queue, concurrency in QUEUES.items():
        name = gpu_queue if queue == "gpu" else queue
        start_process(layout, f"worker-{queue}", [
            airflow, "celery", "worker", "--queues", name, "--concurrency", str(concurrency),
            "--celery-hostname", f"{worker_name(queue)}@%h", "--without-mingle", "--without-gossip",
        ], worker_env(env, queue))


def _mlflow_ports(ports: ClusterPorts) -> Any:
    from pixtag.stack.process import Ports

    return Ports(ports.airflow, ports.mlflow, ports.demo)
