"""Fixtures for the demo instance: the world is built once, one server serves most tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from pixtag.config import Settings
from pixtag.demo.server import DemoInstance
from pixtag.demo.world import World, build_world
from pixtag.pixelfed import Client

TOKEN = "test-demo-token"


@pytest.fixture(scope="session")
def world(photos: Path) -> World:
    return build_world(photos)


@pytest.fixture(scope="session")
def demo(world: World) -> Iterator[DemoInstance]:
    """A shared instance; tests must not change its faults (use ``fresh_demo`` for that)."""
    with DemoInstance(world=world, token=TOKEN) as instance:
        yield instance


@pytest.fixture
def fresh_demo(world: World) -> Iterator[DemoInstance]:
    """An instance of its own, for tests that set faults or count requests."""
    with DemoInstance(world=world, token=TOKEN) as instance:
        yield instance


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """A requests session that sends the token and asks for JSON, like an API client."""
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        session.trust_env = False
        yield session


def _make_client(url: str, **overrides: object) -> Client:
    values: dict[str, object] = {"instance_url": url, "token": TOKEN, "request_rate": 100,
                                 "allow_private_hosts": ["127.0.0.1"], **overrides}
    settings = Settings(**values)
    return Client(settings)


@pytest.fixture
def make_client() -> Callable[..., Client]:
    """``make_client(url, **settings)``: a pixtag Client for a demo instance (fast throttle)."""
    return _make_client


@pytest.fixture
def client(demo: DemoInstance) -> Iterator[Client]:
    with _make_client(demo.url) as c:
        yield c
