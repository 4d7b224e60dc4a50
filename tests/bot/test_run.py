"""What the bot does when the instance keeps failing for one mention: it stops the pass there and
tries again (a rate limit for as long as it lasts), and skips a mention only after failing on it
for hours."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pixtag.bot import run
from pixtag.bot.run import GIVE_UP_AFTER_S, Bot
from pixtag.bot.state import BotState
from pixtag.core.storage import LocalStorage
from pixtag.sources.bot_api import Notification
from pixtag.sources.http import TransientError


def failing_bot(tmp_path: Path, status: int) -> tuple[Bot, list[float]]:
    bot = object.__new__(Bot)
    now = [0.0]
    bot.state = BotState.load(LocalStorage(tmp_path), "https://pixelfed.example")
    bot.counts, bot._failing_since, bot.clock = Counter(), {}, lambda: now[0]

    def handle(n: Notification, model: object) -> str:
        raise TransientError(f"POST /api/v1/statuses returned HTTP {status}", status=status)
    bot.handle = handle  # type: ignore[method-assign]
    return bot, now


def notification() -> Notification:
    return Notification.from_api({"id": "7", "type": "mention", "account": {"id": "2", "username": "alice"},
                                  "status": {"id": "70", "account": {"id": "2", "username": "alice"}}})


def test_a_failing_mention_waits_and_is_skipped_only_after_hours(tmp_path: Path) -> None:
    bot, now = failing_bot(tmp_path, 503)
    assert bot._handle_one(notification(), None) is False  # the pass stops; the cursor stays
    now[0] = GIVE_UP_AFTER_S - 1
    assert bot._handle_one(notification(), None) is False and bot.state.cursor == 0
    now[0] = GIVE_UP_AFTER_S + 1
    assert bot._handle_one(notification(), None) is True
    assert bot.state.cursor == 7 and bot.state.answered["70"]["outcome"] == "failed"


def test_a_rate_limited_mention_is_never_given_up(tmp_path: Path) -> None:
    bot, now = failing_bot(tmp_path, 429)
    for hours in (0, 10, 100):
        now[0] = hours * 3600.0
        assert bot._handle_one(notification(), None) is False
    assert bot.state.cursor == 0 and not bot.state.answered and bot.counts["deferred"] == 3
    assert run.GIVE_UP_AFTER_S >= 3600
