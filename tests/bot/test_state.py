"""The bot's memory in pixtag's storage: atomic, one write per outcome, the hourly allowance."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixtag.bot.state import HOUR, BotState, state_key
from pixtag.core.storage import LocalStorage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_round_trip_and_key(tmp_path: Path) -> None:
    store, clock = LocalStorage(tmp_path), Clock()
    assert state_key("https://pixelfed.example/") == "bot/pixelfed.example/state.json"
    assert state_key("http://127.0.0.1:8765") == "bot/127.0.0.1_8765/state.json"
    state = BotState.load(store, "http://127.0.0.1:8765", clock)
    state.begin("s1", key="k1", mode="comment", account="a1")
    assert BotState.load(store, "http://127.0.0.1:8765", clock).pending["s1"]["attempts"] == 1
    state.finish("s1", "answered", reply="r1", account="a1", counts=True, cursor=7)
    again = BotState.load(store, "http://127.0.0.1:8765", clock)
    assert again.cursor == 7 and again.done("s1") and not again.pending
    assert again.answered["s1"]["reply"] == "r1" and again.posts_in_last_hour("a1") == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_the_hourly_allowance_and_one_decline(tmp_path: Path) -> None:
    clock = Clock()
    state = BotState.load(LocalStorage(tmp_path), "https://x.example", clock)
    for i in range(3):
        state.finish(f"s{i}", "answered", account="a", counts=True, cursor=i)
    assert state.posts_in_last_hour("a") == 3 and not state.declined_recently("a")
    state.decline("s9", "a", "r9", 9)
    assert state.declined_recently("a")
    clock.now += HOUR + 1
    assert state.posts_in_last_hour("a") == 0 and not state.declined_recently("a")


def test_the_cursor_never_moves_back(tmp_path: Path) -> None:
    state = BotState.load(LocalStorage(tmp_path), "https://x.example")
    state.advance(10)
    state.advance(5)
    state.finish("s", "answered", cursor=3)
    assert state.cursor == 10 and state.started


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.write_json(state_key("https://x.example"), {"version": 99})
    with pytest.raises(ValueError, match="version"):
        BotState.load(store, "https://x.example")
