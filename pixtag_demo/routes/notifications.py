"""``GET /api/v1/notifications`` as Pixelfed pages it (ApiV1Controller ``accountNotifications``,
NotificationService ``fetchPage``).

- ``limit``: default 20, anything above 40 is served as 40 (no error); ``min_id``, ``max_id``,
  ``since_id``: integers ≥ 1 (422 otherwise). Ids are the notification table's (1, 2, 3...).
- Newest first. ``max_id`` gives the newest ``limit`` below it; ``min_id`` (and ``since_id``,
  read the same way) gives the **newest** ``limit`` above it, not the ones just above it: a
  client that polls with ``min_id`` and gets a full page must page down with ``max_id`` to reach
  its cursor, or it misses the rest. No cursor: the newest ``limit``.
- ``Link``: ``<…?limit=N&max_id=LOWEST>; rel="next",<…?limit=N&min_id=HIGHEST>; rel="prev"`` over
  the notifications the page looked at; on a one-item page the lowest is dropped and the only
  link is ``max_id=`` (empty), as on the timelines.
- ``types[]`` (mention, reblog, follow, favourite; 422 otherwise) keeps only those types.
- Types: a mention is ``mention``; a comment on one's post is ``comment``, reported as
  ``mention`` (Mastodon mode); with ``_pe`` it stays ``comment`` and the account and status
  are Pixelfed entities. Direct messages never show here (read them with the direct API).
- A notification is ``{id, type, created_at, account, status}``; one whose status was deleted
  is left out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.errors import Invalid
from pixtag_demo.live.entities import Notification
from pixtag_demo.params import base_url, int_param
from pixtag_demo.render import iso_time, render_account, render_status
from pixtag_demo.state import DemoState, demo_state

DEFAULT_LIMIT, MAX_LIMIT = 20, 40
TYPES = ("mention", "reblog", "follow", "favourite")
MASTODON = {"mention": "mention", "comment": "mention"}  # Pixelfed action -> Mastodon type

router = APIRouter()


@router.get("/api/v1/notifications")
async def notifications(request: Request) -> Response:
    demo = demo_state(request)
    grant = demo.grant(request)
    limit = min(int_param(request, "limit", minimum=1) or DEFAULT_LIMIT, MAX_LIMIT)
    max_id = int_param(request, "max_id", minimum=1)
    min_id = int_param(request, "min_id", minimum=1)
    since_id = int_param(request, "since_id", minimum=1)
    types = _types(request)
    pe = "_pe" in request.query_params
    viewer = demo.viewer_id(grant)
    rows = demo.live.notifications_of(viewer) if viewer is not None else []
    if max_id:
        rows = [n for n in rows if n.id < max_id]
    else:
        cursor = min_id or since_id or 0
        rows = [n for n in rows if n.id > cursor]
    page, scanned = [], []
    for n in rows:
        scanned.append(n.id)
        entity = _render(demo, n, request, pe)
        if entity is not None and (not types or entity["type"] in types):
            page.append(entity)
            if len(page) >= limit:
                break
    link = _link(base_url(request), limit, types, scanned)
    return JSONResponse(page, headers={"Link": link} if link else None)


def _types(request: Request) -> list[str]:
    values = request.query_params.getlist("types[]") or request.query_params.getlist("types")
    for value in values:
        if value not in TYPES:
            raise Invalid("types", "The selected types is invalid.")
    return values


def _render(demo: DemoState, n: Notification, request: Request, pe: bool) -> dict[str, Any] | None:
    """The notification's entity, or None when Pixelfed would leave it out (a direct message,
    a deleted status or actor)."""
    if n.action not in MASTODON:
        return None
    actor, status = demo.live.account(n.actor_id), demo.live.post(n.item_id)
    if actor is None or status is None:
        return None
    base = base_url(request)
    return {"id": str(n.id), "type": n.action if pe else MASTODON[n.action],
            "created_at": iso_time(n.created_at),
            "account": render_account(demo.live, actor, base, pe),
            "status": render_status(demo.live, status, base, pe)}


def _link(base: str, limit: int, types: list[str], scanned: list[int]) -> str | None:
    """The Link header, built as Pixelfed builds it from the ids the page looked at."""
    if not scanned:
        return None
    url = f"{base}/api/v1/notifications?" + "".join(f"types[]={t}&" for t in types) + f"limit={limit}&"
    high, low = max(scanned), min(scanned)
    if low == high:
        return f'<{url}max_id=>; rel="next"'
    return f'<{url}max_id={low}>; rel="next",<{url}min_id={high}>; rel="prev"'
