"""``pixtag bot``: read the bot account's notifications every ``bot_poll_interval`` seconds and answer
each mention once (``--once``: one pass over what is waiting, then exit).

A pass (:meth:`Bot.poll`): the current champion (:mod:`~pixtag.bot.champion`; none yet: the
mentions wait), the notifications above the cursor (:mod:`~pixtag.bot.inbox`), then for each,
oldest first: the consent rules (:mod:`~pixtag.bot.consent`), the per-account hourly allowance,
the photos and the model's suggestions (:mod:`~pixtag.bot.photos`), the text
(:mod:`~pixtag.bot.answer`), the one answer (:mod:`~pixtag.bot.deliver`) and the outcome with
the cursor in one write (:mod:`~pixtag.bot.state`). When the instance fails for a mention (after
the HTTP layer's retries), the pass stops there and the next one starts with it, for as long as
the instance is down or rate-limits the bot's posts (Pixelfed allows a user 50 comments an hour);
a mention that keeps failing for :data:`GIVE_UP_AFTER_S` while the instance answers otherwise is
logged as failed and skipped (a rate limit, HTTP 429, never gives up). A wrong or read-only token
stops the bot with one clear error; any other failure is logged and the bot polls again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pixtag.bot.answer import compose, refusal
from pixtag.bot.champion import Champion
from pixtag.bot.consent import ANSWER, IGNORE, Verdict, decide
from pixtag.bot.deliver import deliver
from pixtag.bot.inbox import fetch_new
from pixtag.bot.photos import DEFAULT_ATTACHMENT_LIMIT, look
from pixtag.bot.state import BotState
from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, StorageError, open_storage
from pixtag.sources.bot_api import BotClient, Gone, Notification, Refused
from pixtag.sources.http import HTTPError
from pixtag.sources.pixelfed import AuthError

log = logs.get_logger(__name__)

GIVE_UP_AFTER_S = 6 * 3600.0  # a mention failing for this long (not rate-limited) is skipped


class BotError(PixtagError):
    """The bot cannot work (no champion for ``--once``, a wrong setting)."""


class Bot:
    """The bot account on one instance, with its state and the champion."""

    def __init__(self, settings: Settings, *, api: BotClient | None = None, champion: Champion | None = None,
                 store: Storage | None = None):
        self.settings = settings
        self.api = api or BotClient(settings)
        self.me = self.api.me()
        if not self.me.bot:
            log.warning("@%s is not marked as a bot account on the instance: mark it so in its profile "
                        "settings, so people see that a program answers", self.me.acct or self.me.username)
        self.store = store or open_storage(settings.storage, settings.s3_endpoint_url)
        self.state = BotState.load(self.store, self.api.base_url)
        self.champion = champion or Champion(settings)
        self.attachment_limit = self._attachment_limit()
        self.counts: Counter[str] = Counter()
        self._failing_since: dict[str, float] = {}
        self.clock = time.monotonic
        self.stop = threading.Event()

    def _attachment_limit(self) -> int:
        try:
            return self.api.instance().max_media_attachments or DEFAULT_ATTACHMENT_LIMIT
        except HTTPError as exc:
            log.warning("cannot read the instance's attachment limit (%s); using %d", exc, DEFAULT_ATTACHMENT_LIMIT)
            return DEFAULT_ATTACHMENT_LIMIT

    # ---------------------------------------------------------------------------- passes ----
    def poll(self) -> int:
        """One pass over the waiting notifications; the number handled."""
        model = self.champion.get()
        if model is None:
            self.counts["waiting_for_champion"] += 1
            return 0
        batch = fetch_new(self.api, self.state.cursor, started=self.state.started)
        self.counts["polls"] += 1
        handled = 0
        for notification in batch:
            if self.stop.is_set() or not self._handle_one(notification, model):
                break
            handled += 1
        self.state.mark_started()
        return handled

    def _handle_one(self, n: Notification, model: Any) -> bool:
        """Handle one notification; False when the instance failed and the pass must stop here."""
        key = n.status.id if n.status is not None else f"notification:{n.id}"
        try:
            self.handle(n, model)
        except AuthError:
            raise
        except (HTTPError, StorageError) as exc:
            since = self._failing_since.setdefault(key, self.clock())
            limited = isinstance(exc, HTTPError) and exc.status == 429
            if limited or self.clock() - since < GIVE_UP_AFTER_S:
                log.warning("mention %s: %s; %s", key, exc, "the instance rate-limits the bot: it is tried again "
                            "later" if limited else "it is tried again next pass")
                self.counts["deferred"] += 1
                return False
            log.error("mention %s: giving up after %.0f s of failures: %s", key, self.clock() - since, exc)
            self._failing_since.pop(key, None)
            if n.status is None:
                self.state.advance(n.number)
            else:
                self._record(n, "failed", None, None, counts=False)
        return True

    def handle(self, n: Notification, model: Any) -> str:
        """Decide, answer and record one notification; its outcome."""
        mention, asker = n.status, n.account or (n.status.account if n.status else None)
        if mention is None or asker is None:
            return self._skip(n, "no_status")
        if self.state.done(mention.id):
            return self._skip(n, "already_answered")
        verdict = decide(mention, asker, self.me, self.api.find_status)
        if verdict.action == IGNORE:
            return self._skip(n, verdict.reason)
        mode = "dm" if self.settings.bot_reply == "dm" or verdict.private else "comment"
        if self.state.posts_in_last_hour(asker.id) >= self.settings.bot_answers_per_hour:
            return self._decline(n, mode)
        text, detail = self._text(verdict, n, mode, model)
        try:
            done = deliver(self.api, self.state, mention, asker, self.me, text, mode=mode,
                           visibility=self.settings.bot_visibility)
        except Gone:
            return self._record(n, "gone", None, "the post went away before the answer", counts=False)
        except Refused as exc:
            return self._record(n, "refused_by_instance", None, str(exc), counts=False)
        outcome = "answered" if verdict.action == ANSWER else f"refused:{verdict.reason}"
        return self._record(n, outcome, done.reply, f"{detail}{' (found earlier)' if done.earlier else ''}",
                            counts=True, mode=mode)

    def _text(self, verdict: Verdict, n: Notification, mode: str, model: Any) -> tuple[str, str]:
        assert n.status is not None and n.account is not None
        who = {"asker": n.account.acct or n.account.username} if mode == "comment" else \
            {"asker": None, "post_id": n.status.id}
        if verdict.action != ANSWER:
            return refusal(verdict.reason, marker=verdict.marker, **who), verdict.reason
        assert verdict.target is not None
        looked = look(self.api, model, verdict.target, limit=self.attachment_limit)
        tags = sorted({t["tag"] for p in looked.photos for t in p.tags})
        detail = f"{len(looked.photos)} photo(s), {looked.suggested} to the model, tags: {', '.join(tags) or 'none'}"
        return compose(looked.photos, info_url=self.settings.bot_info_url,
                       extra=looked.extra_line(self.attachment_limit), **who), detail

    def _decline(self, n: Notification, mode: str) -> str:
        assert n.status is not None and n.account is not None
        account = n.account.id
        if self.state.declined_recently(account):
            return self._skip(n, "over_hourly_limit")
        who = {"asker": n.account.acct or n.account.username} if mode == "comment" else \
            {"asker": None, "post_id": n.status.id}
        text = refusal("declined", limit=self.settings.bot_answers_per_hour, **who)
        try:
            done = deliver(self.api, self.state, n.status, n.account, self.me, text, mode=mode,
                           visibility=self.settings.bot_visibility)
        except (Gone, Refused) as exc:
            return self._record(n, "over_hourly_limit", None, str(exc), counts=False)
        self.state.decline(n.status.id, account, done.reply, n.number)
        self.counts["declined"] += 1
        log.info("mention %s by @%s: declined (over %d answers this hour)", n.status.id, n.account.acct,
                 self.settings.bot_answers_per_hour)
        return "declined"

    def _skip(self, n: Notification, reason: str) -> str:
        self.state.advance(n.number)
        self.counts[f"ignored:{reason}"] += 1
        log.info("notification %s%s: nothing to do (%s)", n.id,
                 f" (status {n.status.id} by @{n.status.account.acct})" if n.status else "", reason)
        return f"ignored:{reason}"

    def _record(self, n: Notification, outcome: str, reply: str | None, detail: str | None, *,
                counts: bool, mode: str | None = None) -> str:
        assert n.status is not None
        asker = n.account.id if n.account else n.status.account.id
        self.state.finish(n.status.id, outcome, reply=reply, account=asker, counts=counts, cursor=n.number)
        self._failing_since.pop(n.status.id, None)
        self.counts[outcome] += 1
        level = log.warning if outcome in ("failed", "gone", "refused_by_instance") else log.info
        level("mention %s by @%s: %s%s%s", n.status.id, n.status.account.acct, outcome,
              f" by {mode} {reply}" if reply else "", f"; {detail}" if detail else "")
        return outcome

    # ------------------------------------------------------------------------------ loop ----
    def run(self, *, once: bool = False) -> dict[str, Any]:
        """Poll until :attr:`stop` is set (``once``: one pass)."""
        interval = self.settings.bot_poll_interval
        log.info("pixtag bot @%s on %s: %s", self.me.acct or self.me.username, self.api.base_url,
                 "one pass" if once else f"polling every {interval:g} s")
        while True:
            try:
                self.poll()
            except AuthError:
                raise
            except (HTTPError, StorageError) as exc:
                if once:
                    raise
                self.counts["poll_errors"] += 1
                log.warning("this pass failed (%s); next in %g s", exc, interval)
            self._heartbeat()
            if once and self.champion.model is None:
                raise BotError(f"no @champion of {self.settings.model_name} in {self.settings.mlflow_uri!s:.80}: "
                               "nothing to answer with yet (the mentions wait)")
            if once or self.stop.wait(interval):
                return self.summary()

    def summary(self) -> dict[str, Any]:
        return {"instance": self.api.base_url, "account": self.me.acct or self.me.username,
                "champion": self.champion.version, "cursor": self.state.cursor, **dict(sorted(self.counts.items()))}

    def _heartbeat(self) -> None:
        if self.settings.bot_heartbeat:
            path = Path(self.settings.bot_heartbeat)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def close(self) -> None:
        self.api.close()


def run_bot(settings: Settings, *, once: bool = False, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the bot (``once``: one pass); returns what it did."""
    if not settings.instance_url:
        raise BotError("no instance configured: set PIXTAG_INSTANCE_URL (and PIXTAG_BOT_TOKEN)")
    bot = Bot(settings)
    if stop is not None:
        bot.stop = stop
    try:
        return bot.run(once=once)
    finally:
        bot.close()
