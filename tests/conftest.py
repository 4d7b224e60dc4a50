"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def photos_dir() -> Path:
    """The labelled photos (CLASS/*.jpg): $PIXTAG_PHOTOS or ../shared/data/photos5."""
    return Path(os.environ.get("PIXTAG_PHOTOS") or REPO.parent / "shared" / "data" / "photos5")


@pytest.fixture(scope="session")
def photos() -> Path:
    path = photos_dir()
    if not (path / "cat").is_dir():
        raise FileNotFoundError(
            f"photos not found at {path}; set PIXTAG_PHOTOS to a folder laid out CLASS/*.jpg"
        )
    return path


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own settings, credentials or PIXTAG_* environment."""
    for key in list(os.environ):
        if key.startswith("PIXTAG_") and key != "PIXTAG_PHOTOS":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PIXTAG_CREDENTIALS_FILE", str(tmp_path / "credentials.yaml"))
    monkeypatch.chdir(tmp_path)
