"""Fixtures of the bot's tests: one champion trained per session (:func:`tests.helpers.shared_champion`),
one local instance with the bot account per module, people who post on it, and the bot run in
this process (``run_bot``, the model loaded once per module) or as ``pixtag bot --once``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.conftest import DEMO_TOKEN, REPO
from tests.demo.conftest import User
from tests.helpers import shared_champion

if TYPE_CHECKING:
    from pixtag.bot.champion import Champion
    from pixtag.core.config import Settings
    from pixtag_demo.app import DemoInstance
    from pixtag_demo.world.model import World

BOT_TOKEN = "bot-secret-Zq81mWx7Lr"
PIXTAG = str(Path(sys.executable).parent / "pixtag")


@pytest.fixture(scope="module")
def champion_uri(photos: Path) -> str:
    return shared_champion(photos)


@pytest.fixture(scope="module")
def instance(world: World) -> Iterator[DemoInstance]:
    """A writable local instance with the bot account ``pixtag`` (one per module)."""
    from pixtag_demo.app import DemoInstance

    with DemoInstance(world=world, token=DEMO_TOKEN, bot_token=BOT_TOKEN) as inst:
        yield inst


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pixtag's storage for the module's bot: its state and the suggestion ledger."""
    return tmp_path_factory.mktemp("bot-store")


def bot_values(instance: DemoInstance, champion_uri: str, store: Path, **overrides: Any) -> dict[str, Any]:
    return {"instance_url": instance.url, "bot_token": BOT_TOKEN, "allow_private_hosts": ["127.0.0.1"],
            "request_rate": 100, "mlflow_uri": champion_uri, "storage": str(store), "background": 0,
            "bot_poll_interval": 0.2, "retry_backoff": 0.01, "retry_backoff_max": 0.05,
            "max_retry_after": 0.2, **overrides}


@pytest.fixture(scope="module")
def bot_settings(instance: DemoInstance, champion_uri: str, store: Path) -> Settings:
    from pixtag.core.config import load_settings

    return load_settings(**bot_values(instance, champion_uri, store))


@pytest.fixture(scope="module")
def champion(bot_settings: Settings) -> Champion:
    """The champion loaded once for the module (the alias is not checked again)."""
    from pixtag.bot.champion import Champion

    loaded = Champion(bot_settings, interval=1e9)
    assert loaded.get() is not None
    return loaded


@pytest.fixture
def run_bot(bot_settings: Settings, champion: Champion) -> Callable[..., dict[str, Any]]:
    """``run_bot(**settings)``: one pass of the bot in this process (``--once``); its summary."""
    from pixtag.bot.run import Bot

    def run(**overrides: Any) -> dict[str, Any]:
        settings = bot_settings.model_copy(update=overrides) if overrides else bot_settings
        bot = Bot(settings, champion=champion)
        try:
            return bot.run(once=True)
        finally:
            bot.close()
    return run


def bot_env(instance: DemoInstance, champion_uri: str, store: Path, **extra: str) -> dict[str, str]:
    """The environment of ``pixtag bot`` as a user sets it in a shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    return env | {"PYTHONPATH": str(REPO), "PIXTAG_INSTANCE_URL": instance.url, "PIXTAG_BOT_TOKEN": BOT_TOKEN,
                  "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_MLFLOW_URI": champion_uri,
                  "PIXTAG_STORAGE": str(store), "PIXTAG_BACKGROUND": "0", **extra}


def pixtag_bot(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIXTAG, "bot", *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def person(instance: DemoInstance) -> Callable[..., User]:
    """``person(name, **account)``: a local account with a read+write token (made when new)."""
    def make(name: str, **account: Any) -> User:
        resp = requests.post(f"{instance.url}/_demo/tokens", json={"username": name, **account}, timeout=10)
        resp.raise_for_status()
        body = resp.json()
        return User(instance.url, body["token"], body["account"])
    return make


def photo_bytes(photos: Path, label: str, index: int = 0) -> bytes:
    """A photo the champion never trained on (the last ones of a class folder)."""
    return sorted((photos / label).glob("*.jpg"))[-1 - index].read_bytes()


def post_photos(u: User, images: list[bytes], text: str, **fields: Any) -> dict[str, Any]:
    """A status with these images (uploaded as a Pixelfed client does), as ``u``."""
    ids = []
    for data in images:
        media = u.upload(data)
        assert media.status_code in (200, 202), media.text
        ids.append(media.json()["id"])
    resp = u.status(text, **{"media_ids[]": ids, **fields})
    assert resp.status_code == 200, resp.text
    return resp.json()


def bot_replies(u: User, status_id: str) -> list[dict[str, Any]]:
    """The bot's replies among a status's replies."""
    context = u.get(f"/api/v1/statuses/{status_id}/context").json()
    return [s for s in context["descendants"] if s["account"]["username"] == "pixtag"]


def text_of(status: dict[str, Any]) -> str:
    """A status's text as its reader sees it (the HTML content without tags, line breaks kept)."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", status["content"].replace("<br />", "\n")))
