"""Direct messages, Pixelfed's own API (``/api/v1.1/direct``, DirectMessageController).

- ``POST /api/v1.1/direct/thread/send``: ``to_id`` (a profile id, not oneself: 404), ``message``
  (1-500 characters), ``type`` (``text`` or ``emoji``; a message that is one URL is stored as
  ``link``). The message is a ``direct`` status; it is **hidden** (a message request) when the
  recipient is local (whose ``public_dm`` setting is off by default) or locked and does not
  follow the sender; follows are made with ``POST /_demo/follows``. Answers
  ``{id, isAuthor, reportId, hidden, type, text, media, timeAgo, seen, meta}``.
- ``GET /api/v1.1/direct/thread?pid=PROFILE_ID`` (``max_id`` / ``min_id``): the latest 8
  messages between the caller and ``pid``, hidden ones included, newest first, under the
  other account's ``{id, name, username, avatar, url, muted, isLocal, domain, timeAgo,
  lastMessage, messages}``.

Both need a user token (Pixelfed checks no scope here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.errors import ApiError, Invalid
from pixtag_demo.live.entities import DirectMessage
from pixtag_demo.live.text import account_url
from pixtag_demo.params import base_url, int_param, request_input
from pixtag_demo.render import AVATAR_PATH
from pixtag_demo.state import demo_state

MAX_MESSAGE = 500

router = APIRouter()


@router.post("/api/v1.1/direct/thread/send")
async def send(request: Request) -> Response:
    demo = demo_state(request)
    sender = demo.user(request, scope=None)
    data = await request_input(request)
    if data.get("to_id") is None:
        raise Invalid("to_id", "The to id field is required.")
    message = data.get("message")
    if message is None:
        raise Invalid("message", "The message field is required.")
    if not isinstance(message, str):
        raise Invalid("message", "The message field must be a string.")
    if len(message) > MAX_MESSAGE:
        raise Invalid("message", f"The message field must not be greater than {MAX_MESSAGE} characters.")
    if data.get("type") is None:
        raise Invalid("type", "The type field is required.")
    if data["type"] not in ("text", "emoji"):
        raise Invalid("type", "The selected type is invalid.")
    raw = str(data["to_id"])
    recipient = demo.live.account(int(raw)) if raw.isdigit() else None
    if recipient is None or recipient.id == sender.id:
        raise ApiError(404, "Record not found")
    dm = demo.live.send_dm(sender, recipient, message, data["type"], request.url.hostname or "")
    return JSONResponse(_message(demo.live.post(dm.status_id), dm, sender.id, demo.live.now()))


@router.get("/api/v1.1/direct/thread")
async def thread(request: Request) -> Response:
    demo = demo_state(request)
    viewer = demo.user(request, scope=None)
    raw = request.query_params.get("pid", "").strip()
    if not raw:
        raise Invalid("pid", "The pid field is required.")
    other = demo.live.account(int(raw)) if raw.isdigit() else None
    if other is None:
        raise ApiError(404, "Record not found")
    now = demo.live.now()
    rows = demo.live.thread(viewer.id, other.id, max_id=int_param(request, "max_id"),
                            min_id=int_param(request, "min_id"))
    base = base_url(request)
    return JSONResponse({
        "id": str(other.id), "name": other.display_name, "username": other.acct,
        "avatar": f"{base}{AVATAR_PATH}", "url": account_url(base, other), "muted": False,
        "isLocal": other.local, "domain": other.domain,
        "timeAgo": time_ago(other.created_at, now), "lastMessage": "",
        "messages": [_message(demo.live.post(d.status_id), d, viewer.id, now) for d in rows]})


def _message(status: Any, dm: DirectMessage, viewer_id: int, now: datetime) -> dict[str, Any]:
    return {"id": str(dm.id), "isAuthor": viewer_id == dm.from_id, "reportId": str(dm.status_id),
            "hidden": dm.hidden, "type": dm.type, "text": status.caption if status else None,
            "media": None, "timeAgo": time_ago(dm.created_at, now), "seen": False,
            "meta": dm.meta}


def time_ago(when: datetime, now: datetime) -> str:
    """Carbon's short ``diffForHumans``: 5s, 3m, 2h, 4d, 1w, 2mo, 1y."""
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("y", 31536000), ("mo", 2592000), ("w", 604800), ("d", 86400),
                       ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
