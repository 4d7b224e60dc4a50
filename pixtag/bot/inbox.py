"""The bot's notifications, read with the instance's paging: every one above the cursor, each once.

Pixelfed's ``min_id`` does not give the page just above it but the **newest** page above it
(NotificationService ``fetchPage``): after a full page, the notifications between the cursor and
that page are still unread. So :func:`fetch_new` asks for ``min_id=cursor``, then pages down with
``max_id`` = the lowest id it got until a page reaches the cursor (or is empty). It never follows
the ``Link`` header (on a one-item page Pixelfed sends ``max_id=`` with no value, which loops).
Ids are the notification table's (1, 2, 3… for the whole instance), compared as numbers.

On its very first poll (no state yet) the bot takes only the newest page (:data:`FIRST_BACKLOG`):
it answers the mentions that are waiting, not the account's whole history.
"""

from __future__ import annotations

from typing import Protocol

from pixtag.core import logs
from pixtag.sources.bot_api import Notification
from pixtag.sources.pixelfed import PAGE_LIMIT

log = logs.get_logger(__name__)

FIRST_BACKLOG = PAGE_LIMIT
MAX_PAGES = 500  # 20,000 notifications in one poll: something is wrong before that


class Pages(Protocol):
    def notifications(self, *, min_id: int | None = None, max_id: int | None = None,
                      limit: int = PAGE_LIMIT) -> list[Notification]: ...


def fetch_new(api: Pages, cursor: int, *, started: bool = True, limit: int = PAGE_LIMIT) -> list[Notification]:
    """The notifications above ``cursor``, oldest first, without gaps or repeats."""
    if not started:
        first = api.notifications(limit=min(limit, FIRST_BACKLOG))
        return sorted({n.number: n for n in first}.values(), key=lambda n: n.number)
    found: dict[int, Notification] = {}
    page = api.notifications(min_id=cursor or None, limit=limit)
    for _ in range(MAX_PAGES):
        fresh = [n for n in page if n.number > cursor]
        for n in fresh:
            found.setdefault(n.number, n)
        if not fresh or len(fresh) < len(page):
            break  # empty, or it reached the cursor: nothing is left between them
        lowest = min(n.number for n in page)
        page = api.notifications(max_id=lowest, limit=limit)
        if page and min(n.number for n in page) >= lowest:
            log.warning("notifications below max_id=%d did not move down; stopping this poll", lowest)
            break
    else:
        log.warning("stopped paging notifications after %d pages; the rest comes next poll", MAX_PAGES)
    return [found[k] for k in sorted(found)]
