"""The model the bot serves: whatever ``models:/<model_name>@champion`` points to.

The alias is read once at start and again every ``bot_champion_check`` seconds (one small registry
call); when it has moved, that version is loaded (:func:`pixtag.model.serving.loader.load_tag_model`,
its ledger in pixtag's storage) and replaces the one in use, without a restart. While the registry
cannot be reached the bot keeps the model it has; before there is any champion it has none, and
:mod:`pixtag.bot.run` leaves the mentions waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pixtag.core import logs

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.model.serving.tagmodel import TagModel

log = logs.get_logger(__name__)

ALIAS = "champion"


def champion_version(settings: Settings) -> str | None:
    """The version ``@champion`` points to, ``None`` when there is none (the registered model or
    the alias does not exist). Other registry errors raise."""
    from mlflow.exceptions import MlflowException

    from pixtag.model.tracking import connect

    try:
        return str(connect(settings).get_model_version_by_alias(settings.model_name, ALIAS).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_version(settings: Settings, version: str) -> TagModel:
    """One registered version, loaded for the bot: its ledger goes to pixtag's storage."""
    from pixtag.model.serving.loader import load_tag_model

    return load_tag_model(f"models:/{settings.model_name}/{version}", settings, storage=settings.storage,
                          s3_endpoint_url=settings.s3_endpoint_url or "")


class Champion:
    """The current champion, checked at most every ``interval`` seconds."""

    def __init__(self, settings: Settings, *, lookup: Callable[[Settings], str | None] = champion_version,
                 load: Callable[[Settings, str], Any] = load_version, clock: Callable[[], float] = time.monotonic,
                 interval: float | None = None):
        self.settings, self.lookup, self.load, self.clock = settings, lookup, load, clock
        self.interval = settings.bot_champion_check if interval is None else interval
        self.model: TagModel | None = None
        self.version: str | None = None
        self._checked: float | None = None

    def get(self) -> TagModel | None:
        """The model to use now (after a check when one is due); ``None`` before any champion."""
        now = self.clock()
        if self._checked is None or now - self._checked >= self.interval:
            self._checked = now
            self.refresh()
        return self.model

    def refresh(self) -> bool:
        """Read the alias; load and switch to its version when it moved. True when it switched."""
        try:
            version = self.lookup(self.settings)
        except Exception as exc:  # the registry is down or refuses: keep serving what we have
            log.warning("cannot read @%s (%s); %s", ALIAS, type(exc).__name__,
                        f"keeping version {self.version}" if self.version else "no champion yet")
            return False
        if version is None:
            if self.version is None:
                log.info("no @%s yet: mentions wait until the first model is promoted", ALIAS)
            return False
        if version == self.version:
            return False
        try:
            model = self.load(self.settings, version)
        except Exception as exc:
            log.warning("cannot load version %s of %s (%s: %s); %s", version, self.settings.model_name,
                        type(exc).__name__, str(exc)[:200], f"keeping version {self.version}" if self.version
                        else "no champion yet")
            return False
        previous, self.model, self.version = self.version, model, version
        log.info("serving %s version %s (@%s)%s", self.settings.model_name, version, ALIAS,
                 f", was version {previous}" if previous else "")
        return True
