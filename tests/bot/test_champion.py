"""The bot serves whatever @champion points to, and moves to a new one without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pixtag.bot.champion import Champion, champion_version
from pixtag.core.config import load_settings
from tests.helpers import shared_champion


class Registry:
    def __init__(self) -> None:
        self.version: str | None = None
        self.down = False
        self.lookups = 0
        self.loaded: list[str] = []

    def lookup(self, settings: Any) -> str | None:
        self.lookups += 1
        if self.down:
            raise ConnectionError("registry down")
        return self.version

    def load(self, settings: Any, version: str) -> str:
        self.loaded.append(version)
        return f"model-{version}"


def test_it_follows_the_alias_at_the_check_interval() -> None:
    registry, now = Registry(), [0.0]
    champ = Champion(load_settings(), lookup=registry.lookup, load=registry.load, clock=lambda: now[0], interval=60)
    assert champ.get() is None  # no champion yet
    registry.version = "1"
    now[0] = 30
    assert champ.get() is None and registry.lookups == 1  # not checked again before the interval
    now[0] = 60
    assert champ.get() == "model-1"
    registry.version = "2"
    now[0] = 100
    assert champ.get() == "model-1"
    now[0] = 120
    assert champ.get() == "model-2" and registry.loaded == ["1", "2"]
    registry.down = True
    now[0] = 180
    assert champ.get() == "model-2"  # the registry is down: keep serving


@pytest.mark.slow
def test_the_registry_says_which_version_is_champion(photos: Path, tmp_path: Path) -> None:
    uri = shared_champion(photos)
    assert champion_version(load_settings(mlflow_uri=uri)) == "1"
    assert champion_version(load_settings(mlflow_uri=f"sqlite:///{tmp_path / 'empty.db'}")) is None
    assert champion_version(load_settings(mlflow_uri=uri, model_name="no-such-model")) is None
