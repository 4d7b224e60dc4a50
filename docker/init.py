"""One-shot set-up of the distributed stack (the ``airflow-init`` service of docker-compose.yaml).

``python docker/init.py`` (idempotent; every ``docker-compose up`` runs it again):

1. ``airflow db migrate`` (Postgres);
2. the pools declared in ``airflow/pools.json`` (the ``gpu`` pool gets ``PIXTAG_GPU_POOL_SLOTS``
   slots when set: one per GPU worker);
3. the S3 buckets of ``PIXTAG_STORAGE`` and ``MLFLOW_ARTIFACTS_DESTINATION`` on
   ``PIXTAG_S3_ENDPOINT_URL`` (MinIO), with boto3 and the ``AWS_*`` credentials;
4. the Pixelfed connection from ``airflow/connections.json``, filled from ``PIXTAG_INSTANCE_URL``
   and ``PIXTAG_TOKEN`` and imported from a 0600 temp file (the same code as ``pixtag local``).
   Tasks read the token from this connection; no other service gets ``PIXTAG_TOKEN``.

``python docker/init.py admin-password`` writes the simple auth manager's password file from
``AIRFLOW_ADMIN_PASSWORD`` (mode 0600), so that every api-server replica accepts the same
password; the api-server service runs it before ``airflow api-server``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = Path(os.environ.get("PIXTAG_HOME") or Path(__file__).resolve().parents[1])
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


class InitError(RuntimeError):
    """A set-up step cannot be done; the message says what to set or fix."""


def say(message: str) -> None:
    print(f"pixtag init: {message}", flush=True)


def require(env: Mapping[str, str], name: str, why: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InitError(f"{name} is not set: {why} (see docker/.env.example)")
    return value


# ------------------------------------------------------------------------- pools -----------
def pools_document(path: Path, gpu_slots: str | None) -> dict[str, Any]:
    """``airflow/pools.json`` with the ``gpu`` pool's slots replaced by ``gpu_slots`` if given."""
    pools = json.loads(path.read_text())
    if gpu_slots:
        try:
            slots = int(gpu_slots)
        except ValueError:
            raise InitError(f"PIXTAG_GPU_POOL_SLOTS must be a whole number, not {gpu_slots!r}") from None
        if slots < 1:
            raise InitError("PIXTAG_GPU_POOL_SLOTS must be at least 1")
        if "gpu" not in pools:
            raise InitError(f"{path} declares no 'gpu' pool")
        pools["gpu"]["slots"] = slots
    return pools


def import_pools(env: dict[str, str], project: Path) -> dict[str, Any]:
    from pixtag.stack.airflow import airflow_cli

    pools = pools_document(project / "airflow" / "pools.json", env.get("PIXTAG_GPU_POOL_SLOTS"))
    with tempfile.TemporaryDirectory(prefix="pixtag-pools-") as tmp:
        path = Path(tmp) / "pools.json"
        path.write_text(json.dumps(pools, indent=2))
        airflow_cli(env, "pools", "import", str(path))
    return pools


# ------------------------------------------------------------------------- buckets ---------
def buckets_of(uris: Iterable[str | None]) -> list[str]:
    """The bucket names of the ``s3://`` URIs among ``uris`` (others are ignored), in order."""
    names: list[str] = []
    for uri in uris:
        if uri and uri.startswith("s3://"):
            bucket = urlsplit(uri).netloc
            if not bucket:
                raise InitError(f"{uri!r} names no bucket (expected s3://bucket/prefix)")
            if bucket not in names:
                names.append(bucket)
    return names


def ensure_buckets(names: list[str], endpoint_url: str | None, attempts: int = 30,
                   delay: float = 2.0) -> list[str]:
    """Create the buckets that do not exist yet; returns those created. Waits for the store."""
    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError

    client = boto3.client("s3", endpoint_url=endpoint_url or None)
    created = []
    for name in names:
        for attempt in range(1, attempts + 1):
            try:
                client.head_bucket(Bucket=name)
                break
            except EndpointConnectionError:
                if attempt == attempts:
                    raise InitError(f"the S3 store at {endpoint_url} does not answer") from None
                time.sleep(delay)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchBucket", "NotFound"):
                    client.create_bucket(Bucket=name)
                    created.append(name)
                    break
                raise InitError(f"cannot use bucket {name!r} at {endpoint_url}: {code or exc}") from None
    return created


# ------------------------------------------------------------------------- connection ------
def import_connection(env: dict[str, str], project: Path, instance_url: str, token: str) -> None:
    """Fill and import airflow/connections.json (pixtag.stack.local's 0600 temp-file import)."""
    from pixtag.core.config import SettingsError, load_settings
    from pixtag.stack.airflow import import_connections
    from pixtag.stack.process import Layout

    try:
        settings = load_settings(instance_url=instance_url, token=token)
    except SettingsError as exc:
        raise InitError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="pixtag-init-") as tmp:
        layout = Layout(project, var=Path(tmp))
        layout.airflow_home.mkdir(parents=True)
        import_connections(layout, env, str(settings.instance_url), token)


# ------------------------------------------------------------------------- admin password --
def passwords_file(env: Mapping[str, str]) -> Path:
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if configured:
        return Path(configured)
    return Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow") / PASSWORDS_FILE


def write_admin_password(env: Mapping[str, str]) -> Path:
    """Write {user: password} for the admin user, readable by this user only."""
    password = require(env, "AIRFLOW_ADMIN_PASSWORD", "the password of the Airflow UI/API admin")
    user = env.get("AIRFLOW_ADMIN_USER", "").strip() or "admin"
    path = passwords_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps({user: password}) + "\n")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------- main ------------
def setup(env: dict[str, str], project: Path = PROJECT) -> None:
    from pixtag.core import logs
    from pixtag.stack.airflow import airflow_cli

    instance_url = require(env, "PIXTAG_INSTANCE_URL", "the Pixelfed instance pixtag reads")
    token = require(env, "PIXTAG_TOKEN", "a user token (read scope) of that instance")
    logs.register_secret(token)

    say("migrating the Airflow database")
    airflow_cli(env, "db", "migrate")
    pools = import_pools(env, project)
    say("pools: " + ", ".join(f"{name} ({spec['slots']} slots)" for name, spec in pools.items()))
    endpoint = env.get("PIXTAG_S3_ENDPOINT_URL") or None
    buckets = buckets_of([env.get("PIXTAG_STORAGE"), env.get("MLFLOW_ARTIFACTS_DESTINATION")])
    created = ensure_buckets(buckets, endpoint)
    say(f"buckets at {endpoint or 'AWS S3'}: {', '.join(buckets) or 'none'}"
        + (f" (created {', '.join(created)})" if created else ""))
    import_connection(env, project, instance_url, token)
    ids = ", ".join(json.loads((project / "airflow" / "connections.json").read_text()))
    say(f"connection {ids} -> {instance_url}")
    say("done")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up pixtag's distributed stack (idempotent).")
    parser.add_argument("step", nargs="?", default="setup", choices=["setup", "admin-password"])
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        if args.step == "admin-password":
            say(f"admin password file {write_admin_password(env)}")
        else:
            setup(env)
    except Exception as exc:  # one clear line, never a secret (pixtag.core.logs redacts the token)
        from pixtag.core import logs
        print(f"pixtag init: FAILED: {logs.redact(str(exc))}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
