"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pixtag.sources.pixelfed import Client
    from pixtag_demo.app import DemoInstance
    from pixtag_demo.world.model import World

REPO = Path(__file__).resolve().parents[1]
DEMO_TOKEN = "test-demo-token"


def photos_dir() -> Path:
    """The labelled photos (CLASS/*.jpg): $PIXTAG_PHOTOS (its first folder, where it names several
    as the local instance allows) or ../shared/data/photos5."""
    env = os.environ.get("PIXTAG_PHOTOS", "").split(os.pathsep)[0]
    return Path(env or REPO.parent / "shared" / "data" / "photos5")


@pytest.fixture(scope="session")
def photos() -> Path:
    path = photos_dir()
    if not (path / "cat").is_dir():
        raise FileNotFoundError(
            f"photos not found at {path}; set PIXTAG_PHOTOS to a folder laid out CLASS/*.jpg"
        )
    return path


LEAKY = ("AIRFLOW_CTX_", "MLFLOW_", "_AIRFLOW")  # dag.test() and mlflow.start_run() set these for good


@pytest.fixture(autouse=True)
def _no_leaked_environment() -> Iterator[None]:
    """What a test's ``dag.test()`` or MLflow run leaves in os.environ (MLFLOW_EXPERIMENT_ID,
    AIRFLOW_CTX_*...) goes with it: later tests, and the stacks they start as
    subprocesses, must not inherit it."""
    before = {k: v for k, v in os.environ.items() if k.startswith(LEAKY)}
    yield
    for key in [k for k in os.environ if k.startswith(LEAKY) and k not in before]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(autouse=True)
def _isolated_settings(_no_leaked_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own settings, credentials or PIXTAG_* environment."""
    for key in list(os.environ):
        if key.startswith("PIXTAG_") and key != "PIXTAG_PHOTOS":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # pixtag falls back to it
    # dag.test() runs tasks in this process and leaves Airflow's task context in os.environ;
    # pixtag reads it (no progress bars inside a task), so it must not outlive that test.
    for key in list(os.environ):
        if key.startswith("AIRFLOW_CTX_"):
            monkeypatch.delenv(key, raising=False)
    from pixtag.core import logs
    logs.quiet_progress(False)
    monkeypatch.setenv("PIXTAG_CREDENTIALS_FILE", str(tmp_path / "credentials.yaml"))
    # The session's instance serves the labelled photos only (no everyday photos), so its
    # timeline has nothing to learn "none of the classes" from: tests that scrape it collect
    # class images only unless they ask for background (tests/model/classifier/test_openset.py does).
    monkeypatch.setenv("PIXTAG_BACKGROUND", "0")
    monkeypatch.setenv("PIXTAG_OTHERS", "")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def wordnet() -> object:
    """NLTK's WordNet, loaded once per session (`make setup` installs it)."""
    from pixtag.tags import nlp
    return nlp.wordnet()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (a real HTTP server; boto3 talks to it) with a
    bucket ``pixtag-test``; dummy credentials are set for the session. It runs in a process of
    its own: in-process moto state is global, and a test's ``mock_aws()`` resets it on exit."""
    import socket
    import subprocess
    import sys
    import time

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"moto's server did not start on 127.0.0.1:{port}")
        time.sleep(0.2)
    keys = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="pixtag-test")
    yield url
    server.terminate()
    server.wait(10)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# --- the local Pixelfed-compatible instance, built once per session -----------------------------
@pytest.fixture(scope="session")
def world(photos: Path) -> World:
    from pixtag_demo.world.builder import build_world

    return build_world(photos)


@pytest.fixture(scope="session")
def demo(world: World) -> Iterator[DemoInstance]:
    """A shared instance; tests must not change its faults (use ``fresh_demo`` for that)."""
    from pixtag_demo.app import DemoInstance

    with DemoInstance(world=world, token=DEMO_TOKEN) as instance:
        yield instance


@pytest.fixture
def fresh_demo(world: World) -> Iterator[DemoInstance]:
    """An instance of its own, for tests that set faults or count requests."""
    from pixtag_demo.app import DemoInstance

    with DemoInstance(world=world, token=DEMO_TOKEN) as instance:
        yield instance


def demo_settings(url: str, **overrides: object) -> dict[str, object]:
    """Settings values for talking to a demo instance from a test (fast throttle, loopback allowed,
    class images only unless ``background=`` is given: module-scoped fixtures run before the
    autouse environment fixture, so the value is explicit here rather than read from the env)."""
    return {"instance_url": url, "token": DEMO_TOKEN, "request_rate": 100, "allow_private_hosts": ["127.0.0.1"],
            "background": 0, **overrides}


def _make_client(url: str, **overrides: object) -> Client:
    from pixtag.core.config import load_settings
    from pixtag.sources.pixelfed import Client

    return Client(load_settings(**demo_settings(url, **overrides)))


@pytest.fixture
def make_client() -> Callable[..., Client]:
    """``make_client(url, **settings)``: a pixtag Client for a demo instance (fast throttle)."""
    return _make_client


@pytest.fixture
def client(demo: DemoInstance) -> Iterator[Client]:
    with _make_client(demo.url) as c:
        yield c
