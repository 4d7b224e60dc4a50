"""Fixtures for the demo-instance tests (world, demo, fresh_demo, make_client and client live in
tests/conftest.py, shared with the other stages' end-to-end tests); ``live_demo``, ``user`` and
``bot`` for the tests that write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.conftest import DEMO_TOKEN as TOKEN

if TYPE_CHECKING:
    from pixtag_demo.app import DemoInstance
    from pixtag_demo.world.model import World


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """A requests session that sends the token and asks for JSON, like an API client."""
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        session.trust_env = False
        yield session


BOT_TOKEN = "test-bot-token"


@pytest.fixture(scope="session")
def live_demo(world: World) -> Iterator[DemoInstance]:
    """One instance with the bot account that the write tests share (``demo`` stays read-only);
    tests keep apart by posting as accounts of their own (:func:`user`)."""
    from pixtag_demo.app import DemoInstance

    with DemoInstance(world=world, token=TOKEN, bot_token=BOT_TOKEN) as instance:
        yield instance


class User:
    """A local account with a read+write token on ``live_demo``, and requests made as it."""

    def __init__(self, url: str, token: str, account: dict[str, Any]):
        self.url, self.token, self.account = url, token, account
        self.id = account["id"]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=10, **kw)

    def status(self, text: str = "", **fields: Any) -> requests.Response:
        return self.post("/api/v1/statuses", data={"status": text, **fields})

    def upload(self, data: bytes, name: str = "photo.jpg", version: int = 2) -> requests.Response:
        return self.post(f"/api/v{version}/media", files={"file": (name, data, "image/jpeg")})


@pytest.fixture
def user(live_demo: DemoInstance) -> Callable[..., User]:
    """``user(name, scopes="read write", **account)``: a token for a local account on
    ``live_demo`` (made when new; ``bio``, ``locked``)."""
    def make(name: str, scopes: str = "read write", **account: Any) -> User:
        resp = requests.post(f"{live_demo.url}/_demo/tokens", json={"username": name, "scopes": scopes,
                                                                   **account}, timeout=10)
        resp.raise_for_status()
        body = resp.json()
        return User(live_demo.url, body["token"], body["account"])
    return make


@pytest.fixture
def bot(live_demo: DemoInstance) -> User:
    """The bot account ``pixtag`` of ``live_demo``, through its ``--bot-token``."""
    session = requests.Session()
    session.trust_env = False
    me = session.get(f"{live_demo.url}/api/v1/accounts/verify_credentials", timeout=10,
                     headers={"Authorization": f"Bearer {BOT_TOKEN}"}).json()
    return User(live_demo.url, BOT_TOKEN, me)
