"""What the instance gains while it runs: accounts, statuses and media made through the API or
the control endpoints, notifications and direct messages.

The live kinds extend the world's (:mod:`pixtag_demo.world.entities`) so that the renderers
treat both alike; the world's own entities are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pixtag_demo.world.entities import Account, Media, Post


@dataclass(frozen=True)
class LiveAccount(Account):
    """An account made at run time (the bot, the demo user, control-endpoint accounts)."""

    bot: bool = False


@dataclass(frozen=True)
class LivePost(Post):
    """A status posted at run time. ``text`` is what the author sent (``caption`` holds it too);
    ``hashtags`` and ``mention_ids`` were parsed from it."""

    text: str = ""
    in_reply_to_id: int | None = None
    in_reply_to_account_id: int | None = None
    mention_ids: tuple[int, ...] = ()
    comments_disabled: bool = False


@dataclass(frozen=True)
class LiveMedia(Media):
    """An uploaded attachment (bytes kept as sent) or a remote one (``path`` is its URL)."""

    remote: bool = False
    size: int = 0


@dataclass(frozen=True)
class Notification:
    """Pixelfed's notification row: ``action`` is ``mention``, ``comment`` or ``dm``; the item is a
    status (mention, comment) or a direct message (dm). Ids count up from 1, as the table's do."""

    id: int
    profile_id: int
    actor_id: int
    action: str
    item_id: int
    created_at: datetime


@dataclass(frozen=True)
class DirectMessage:
    """A direct message: its text is the ``direct`` status ``status_id``; ``hidden`` marks a
    message request."""

    id: int
    from_id: int
    to_id: int
    status_id: int
    hidden: bool
    type: str  # text | emoji | link
    created_at: datetime
    meta: dict[str, object] | None = field(default=None, compare=False)
