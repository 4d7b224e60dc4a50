"""Who may ask the bot about what: a pure decision on a mention, made before any photo is fetched.

* Only a mention of the bot counts (a comment on one of the bot's own replies that does not
  mention it is a conversation, not a request), and never one by the bot or another bot account.
* The bot looks only at photos the asker posted: the mentioning post's own photos, or, for a
  mention in a reply to the asker's own post, that post's photos. On someone else's post it
  answers that only the author can ask, without fetching anything.
* Never at posts of accounts whose bio or profile fields carry ``#nobot``, ``#noai`` or
  ``#noindex`` (:data:`OPT_OUT`), nor at posts marked sensitive or with a content warning: it says
  why, briefly.
* A private post (a locked account's) cannot take the bot's comment (Pixelfed answers 404 unless
  the bot follows the author, and the bot follows nobody): the answer goes as a direct message,
  which only the author sees. Direct posts never reach the bot's notifications.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pixtag.sources.pixelfed import Account, Status

OPT_OUT = ("#nobot", "#noai", "#noindex")
ANSWER, REFUSE, IGNORE = "answer", "refuse", "ignore"


@dataclass(frozen=True)
class Verdict:
    """``action``: answer (look at ``target``'s photos), refuse (say ``reason`` briefly, look at
    nothing) or ignore (log only). ``private``: the answer must go as a direct message."""

    action: str
    reason: str
    target: Status | None = None
    private: bool = False
    marker: str | None = None  # the opt-out marker found


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html or "").lower()


def opt_out_marker(account: Account) -> str | None:
    """The opt-out marker in the account's bio or profile fields, if any."""
    text = " ".join([_text(account.note), *(_text(f) for f in account.fields)])
    for marker in OPT_OUT:
        if re.search(re.escape(marker) + r"\b", text):
            return marker
    return None


def mentions(status: Status, account: Account) -> bool:
    """Whether ``status`` mentions ``account`` (by id, else by acct/username)."""
    for ref in status.mentions:
        if ref.id == account.id or (ref.acct and ref.acct.lower() in (account.acct.lower(), account.username.lower())):
            return True
    return False


def decide(mention: Status, asker: Account, bot: Account,
           find_status: Callable[[str], Status | None]) -> Verdict:
    """What to do with a mention of ``bot`` in ``mention`` by ``asker``. ``find_status`` looks up the
    post a reply answers (called only for a mention without photos in a reply)."""
    if asker.id == bot.id:
        return Verdict(IGNORE, "own_post")
    if asker.bot:
        return Verdict(IGNORE, "bot_account")  # bots answering bots: no loops
    if not mentions(mention, bot):
        return Verdict(IGNORE, "not_a_mention")
    if mention.visibility == "direct":
        return Verdict(IGNORE, "direct")
    marker = opt_out_marker(asker)
    if marker:
        return Verdict(REFUSE, "opted_out", private=_private(mention, asker), marker=marker)
    target = mention
    if not mention.media_attachments and mention.in_reply_to_id:
        parent = find_status(mention.in_reply_to_id)
        if parent is None:
            return Verdict(IGNORE, "parent_gone")
        if parent.account.id == bot.id:
            return Verdict(IGNORE, "reply_to_the_bot")
        if parent.account.id != asker.id:
            return Verdict(REFUSE, "not_author", private=_private(mention, asker))
        target = parent
    private = _private(target, asker) or _private(mention, asker)
    if not target.media_attachments:
        return Verdict(REFUSE, "no_media", private=private)
    if target.visibility == "direct":
        return Verdict(IGNORE, "direct")
    if target.spoiler_text.strip():
        return Verdict(REFUSE, "content_warning", target, private)
    if target.sensitive is not False:
        return Verdict(REFUSE, "sensitive", target, private)
    return Verdict(ANSWER, "photos", target, private)


def _private(status: Status, asker: Account) -> bool:
    return status.visibility == "private" or bool(asker.locked)
