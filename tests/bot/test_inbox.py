"""Paging the bot's notifications as Pixelfed pages them: ``min_id`` gives the newest page above
it, so the bot pages down with ``max_id`` to its cursor; no gaps, no repeats, across restarts."""

from __future__ import annotations

import random

import pytest

from pixtag.bot.inbox import FIRST_BACKLOG, fetch_new
from pixtag.sources.bot_api import Notification


class Instance:
    """Notifications served as NotificationService::fetchPage serves them (newest first)."""

    def __init__(self, ids: list[int]):
        self.ids = sorted(ids)
        self.requests: list[dict] = []

    def notifications(self, *, min_id: int | None = None, max_id: int | None = None,
                      limit: int = 40) -> list[Notification]:
        self.requests.append({"min_id": min_id, "max_id": max_id})
        rows = sorted(self.ids, reverse=True)
        if max_id:
            rows = [i for i in rows if i < max_id]
        elif min_id:
            rows = [i for i in rows if i > min_id]
        return [Notification(id=str(i), type="mention") for i in rows[:limit]]


def ids(batch: list[Notification]) -> list[int]:
    return [n.number for n in batch]


@pytest.mark.parametrize("new", [0, 1, 39, 40, 41, 100, 333])
def test_everything_above_the_cursor_oldest_first_once(new: int) -> None:
    old = list(range(1, 51))
    fresh = sorted(random.Random(new).sample(range(51, 5000), new))  # ids of the whole instance: gaps
    inst = Instance(old + fresh)
    assert ids(fetch_new(inst, 50)) == fresh
    assert len(inst.requests) <= new // 40 + 2  # the min_id page, then max_id pages down to the cursor


def test_a_quiet_poll_is_one_request() -> None:
    inst = Instance(list(range(1, 10)))
    assert fetch_new(inst, 9) == []
    assert inst.requests == [{"min_id": 9, "max_id": None}]


def test_restarts_between_polls_lose_nothing_and_repeat_nothing() -> None:
    rng = random.Random(7)
    inst, seen, cursor = Instance([]), [], 0
    next_id = 1
    for _ in range(30):
        arrived = rng.choice([0, 1, 5, 40, 41, 90])
        inst.ids += list(range(next_id, next_id + arrived))
        next_id += arrived + rng.randint(0, 3)  # other accounts' notifications take ids too
        batch = fetch_new(inst, cursor)
        seen += ids(batch)
        cursor = max([cursor, *ids(batch)])  # what the state keeps
    assert seen == sorted(inst.ids) and len(seen) == len(set(seen))


def test_the_first_start_takes_only_the_newest_page() -> None:
    inst = Instance(list(range(1, 200)))
    assert ids(fetch_new(inst, 0, started=False)) == list(range(200 - FIRST_BACKLOG, 200))


def test_a_server_that_ignores_max_id_does_not_loop() -> None:
    class Stuck(Instance):
        def notifications(self, *, min_id=None, max_id=None, limit=40):  # type: ignore[override]
            return super().notifications(min_id=min_id, limit=limit)

    inst = Stuck(list(range(1, 200)))
    assert ids(fetch_new(inst, 100)) == list(range(160, 200))
    assert len(inst.requests) == 2
