"""One answer per mention, across restarts, crashes and retries.

For a mention (the status that mentions the bot), :func:`deliver`:

1. if the state has the mention answered: nothing (a re-read notification);
2. if the state has it *pending* (an earlier run wrote that it was about to post, and nothing
   after): looks for that earlier answer first, the bot's reply among the mention's replies
   (``context``) or its direct message in the thread with the asker; found: recorded, not posted;
3. writes the mention as pending (with its ``Idempotency-Key``), then posts:
   a comment with the key ``pixtag-bot-<sha256(instance, mention)>``, derived from the mention,
   so a retry (by the HTTP layer after a timeout, or by a restarted bot) of a post the instance
   already made is refused as a duplicate (:class:`~pixtag.sources.bot_api.DuplicatePost`), which
   counts as answered; or a direct message, which names the post it is about, so the thread shows
   whether it was sent;
4. the caller records the outcome, and the cursor, in one write.

A crash between 3 and 4 leaves the mention pending: step 2 finds the answer. Pixelfed keeps an
idempotency key for an hour and shows at most 20 replies in a context; a crash that is both
recovered after more than an hour and on a post with more than 20 replies could answer twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pixtag.bot.answer import post_reference
from pixtag.bot.state import BotState
from pixtag.core import logs
from pixtag.sources.bot_api import BotClient, DuplicatePost
from pixtag.sources.pixelfed import Account, Status

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Delivered:
    """Where the answer is: the reply's status id or the message's id; ``earlier``: it was found,
    not posted now."""

    mode: str
    reply: str | None
    earlier: bool = False


def idempotency_key(instance_url: str, mention_id: str) -> str:
    digest = hashlib.sha256(f"{instance_url.rstrip('/')}|{mention_id}".encode()).hexdigest()
    return f"pixtag-bot-{digest[:40]}"


def dm_marker(mention_id: str) -> str:
    """The words that tie a direct message to the post it answers (its first words)."""
    return post_reference(mention_id)


def find_earlier(api: BotClient, mention: Status, asker: Account, bot: Account, mode: str) -> str | None:
    """The bot's earlier answer to this mention, if the instance shows one."""
    if mode == "comment":
        _, replies = api.context(mention.id)
        mine = [r for r in replies if r.account.id == bot.id and r.in_reply_to_id in (None, mention.id)]
        return mine[0].id if mine else None
    marker = dm_marker(mention.id)
    for message in api.dm_thread(asker.id):
        if message.get("isAuthor") and marker in str(message.get("text") or ""):
            return str(message.get("id"))
    return None


def deliver(api: BotClient, state: BotState, mention: Status, asker: Account, bot: Account, text: str, *,
            mode: str, visibility: str) -> Delivered:
    """Post ``text`` as the one answer to ``mention`` (see the module docstring)."""
    if mention.id in state.pending:
        earlier = find_earlier(api, mention, asker, bot, state.pending[mention.id].get("mode", mode))
        if earlier is not None:
            log.info("mention %s: found the answer an earlier run posted (%s); not posting again", mention.id, earlier)
            return Delivered(mode, earlier, earlier=True)
    key = idempotency_key(api.base_url, mention.id)
    state.begin(mention.id, key=key, mode=mode, account=asker.id)
    if mode == "dm":
        message = api.send_dm(asker.id, text)
        return Delivered(mode, str(message.get("id") or ""))
    try:
        reply = api.reply(text, mention.id, visibility=visibility, idempotency_key=key)
    except DuplicatePost:
        earlier = find_earlier(api, mention, asker, bot, mode)
        log.info("mention %s: the instance already has this answer (duplicate Idempotency-Key)", mention.id)
        return Delivered(mode, earlier, earlier=True)
    return Delivered(mode, reply.id)
