"""What the bot remembers between polls and across restarts, as one JSON object in pixtag's storage.

``bot/<instance host[:port]>/state.json``::

    {"version": 1, "instance": "pixelfed.example", "started": true,
     "cursor": 4711,                       # highest notification id handled (all below it are done)
     "answered": {"<mention status id>": {"at": 1760000000.0, "outcome": "answered",
                                          "reply": "<status or message id>", "account": "<id>"}},
     "pending":  {"<mention status id>": {"at": ..., "attempts": 1, "mode": "comment",
                                          "key": "<Idempotency-Key>", "account": "<id>"}},
     "sent":     {"<account id>": [<times of posts to it in the last hour>]},
     "declined": {"<account id>": <time of the last decline>}}

Every change is written at once (the storage's writes are atomic: a temporary file renamed into
place after an fsync, or one S3 ``PutObject``), so whatever kills the bot, the file is the one
before or the one after the change. :mod:`pixtag.bot.deliver` writes a mention's ``pending``
entry *before* it posts, and its ``answered`` entry (with the cursor) after: a restart that finds
a mention pending looks for the earlier reply before it posts again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from pixtag.core import logs
from pixtag.core.storage import Storage

log = logs.get_logger(__name__)

VERSION = 1
HOUR = 3600.0
KEEP_ANSWERED_S = 90 * 24 * HOUR  # answered mentions older than this are forgotten (the cursor is past them)


def state_key(instance_url: str) -> str:
    """``bot/<host[_port]>/state.json``: one state per instance."""
    host = re.sub(r"^https?://", "", instance_url.rstrip("/")).split("/")[0]
    return f"bot/{re.sub(r'[^A-Za-z0-9.-]', '_', host)}/state.json"


class BotState:
    """The bot's memory: cursor, answered and pending mentions, posts per account in the last hour."""

    def __init__(self, store: Storage, key: str, data: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.key, self.clock = store, key, clock
        data = data or {}
        self.instance: str = str(data.get("instance") or "")
        self.started: bool = bool(data.get("started"))
        self.cursor: int = int(data.get("cursor") or 0)
        self.answered: dict[str, dict[str, Any]] = dict(data.get("answered") or {})
        self.pending: dict[str, dict[str, Any]] = dict(data.get("pending") or {})
        self.sent: dict[str, list[float]] = {k: list(v) for k, v in (data.get("sent") or {}).items()}
        self.declined: dict[str, float] = dict(data.get("declined") or {})

    @classmethod
    def load(cls, store: Storage, instance_url: str, clock: Callable[[], float] = time.time) -> BotState:
        key = state_key(instance_url)
        data = store.read_json(key) if store.exists(key) else None
        if data is not None and data.get("version") != VERSION:
            raise ValueError(f"{store.url(key)}: unknown bot state version {data.get('version')!r}")
        state = cls(store, key, data, clock)
        state.instance = state.instance or instance_url.rstrip("/")
        state._forget_old()
        return state

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "instance": self.instance, "started": self.started, "cursor": self.cursor,
                "answered": self.answered, "pending": self.pending, "sent": self.sent, "declined": self.declined}

    def save(self) -> None:
        self.store.write_json(self.key, self.to_dict())

    # ---------------------------------------------------------------------------------------
    def done(self, status_id: str) -> bool:
        """Whether this mention was answered (or decided) already."""
        return status_id in self.answered

    def begin(self, status_id: str, **info: Any) -> dict[str, Any]:
        """Write, before posting, that an answer to this mention may be on its way."""
        entry = self.pending.get(status_id) or {"at": self.clock(), "attempts": 0}
        entry.update(info)
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        self.pending[status_id] = entry
        self.save()
        return entry

    def finish(self, status_id: str, outcome: str, *, reply: str | None = None, account: str | None = None,
               counts: bool = False, cursor: int | None = None) -> None:
        """Record a mention's outcome (and move the cursor) in one write; ``counts``: a post the
        account received (its hourly allowance)."""
        now = self.clock()
        self.answered[status_id] = {"at": now, "outcome": outcome, "reply": reply, "account": account}
        self.pending.pop(status_id, None)
        if counts and account:
            self.sent[account] = [*self._recent(account, now), now]
        if cursor is not None:
            self.cursor = max(self.cursor, cursor)
        self.save()

    def advance(self, cursor: int) -> None:
        """Move the cursor past a notification that needed nothing."""
        if cursor > self.cursor or not self.started:
            self.cursor, self.started = max(self.cursor, cursor), True
            self.save()

    def mark_started(self) -> None:
        if not self.started:
            self.started = True
            self.save()

    def attempts(self, status_id: str) -> int:
        return int((self.pending.get(status_id) or {}).get("attempts", 0))

    # ---------------------------------------------------------------------------- limits ----
    def posts_in_last_hour(self, account: str) -> int:
        return len(self._recent(account, self.clock()))

    def declined_recently(self, account: str) -> bool:
        """Whether the account was told about its limit within the hour (it is told once)."""
        return self.clock() - self.declined.get(account, -HOUR * 2) < HOUR

    def decline(self, status_id: str, account: str, reply: str | None, cursor: int | None) -> None:
        self.declined[account] = self.clock()
        self.finish(status_id, "declined", reply=reply, account=account, cursor=cursor)

    def _recent(self, account: str, now: float) -> list[float]:
        return [t for t in self.sent.get(account, []) if now - t < HOUR]

    def _forget_old(self) -> None:
        now = self.clock()
        self.answered = {k: v for k, v in self.answered.items() if now - float(v.get("at") or 0) < KEEP_ANSWERED_S}
        self.sent = {k: kept for k in self.sent if (kept := self._recent(k, now))}
        self.declined = {k: t for k, t in self.declined.items() if now - t < HOUR}
