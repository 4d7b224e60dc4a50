"""Writing as Pixelfed's API does it (ApiV1Controller ``mediaUpload``, ``mediaUploadV2``,
``mediaGet``, ``mediaUpdate``, ``statusCreate``, ``statusDelete``, ``statusContext``).

- ``POST /api/v1/media`` (200, ``url`` set) and ``POST /api/v2/media`` (202, ``url`` null until
  ``GET /api/v1/media/{id}``): multipart ``file`` (or ``file[]``), optional ``description``;
  the type is sniffed from the bytes (jpeg, png, gif, mp4), at most 15000 KB, an empty or
  missing file is a 422; the bytes are kept as sent and served under ``/storage/m/_v2/...``.
- ``POST /api/v1/statuses`` (form fields or JSON): ``status`` (≤ 500), ``media_ids[]`` (≤ 4,
  the caller's unattached uploads), ``in_reply_to_id``, ``visibility`` in private, unlisted,
  public (anything else, ``direct`` included: 422 "The selected visibility is invalid."),
  ``sensitive``, ``spoiler_text`` (≤ 140, kept only with ``sensitive``), ``comments_disabled``;
  header ``Idempotency-Key`` (same key, same user, within an hour: 400 "Duplicate idempotency
  key.", checked after validation, before anything else); neither media nor a parent: 403
  "Empty statuses are not allowed". A locked account's statuses are private; a reply is never
  more visible than its parent and needs to see it (404 otherwise).
- ``DELETE /api/v1/statuses/{id}``: the author's own only (404 otherwise); answers the status
  with ``text`` in place of ``content``.
- ``GET /api/v1/statuses/{id}/context``: ``ancestors`` is the parent only (Pixelfed does not walk
  further up), ``descendants`` the direct replies (≤ 20, oldest first); a status the reader may
  not see is an empty 404.

Writes need a token with ``write`` (403 otherwise), reads ``read``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from pixtag_demo.errors import ApiError, Invalid
from pixtag_demo.live.store import VISIBILITY_RANK
from pixtag_demo.live.text import strip_tags
from pixtag_demo.live.uploads import MAX_ALTEXT_LENGTH, MAX_PHOTO_SIZE_KB, MEDIA_TYPES, sniff_mime
from pixtag_demo.params import base_url, boolean, filled, request_input
from pixtag_demo.render import render_media, render_status
from pixtag_demo.state import DemoState, demo_state
from pixtag_demo.world.entities import Account, Post

MAX_CAPTION_LENGTH = 500
MAX_ALBUM_LENGTH = 4
MAX_SPOILER_LENGTH = 140
VISIBILITIES = ("private", "unlisted", "public")

router = APIRouter()


# ------------------------------------------------------------------------------ media -----
@router.post("/api/v1/media")
async def media_upload_v1(request: Request) -> Response:
    return await _upload(request, v2=False)


@router.post("/api/v2/media")
async def media_upload_v2(request: Request) -> Response:
    return await _upload(request, v2=True)


async def _upload(request: Request, *, v2: bool) -> Response:
    demo = demo_state(request)
    owner = demo.user(request, scope="write")
    data = await request_input(request)
    upload = data.get("file")
    if isinstance(upload, list):
        upload = next((u for u in upload if isinstance(u, UploadFile)), None)
    if not isinstance(upload, UploadFile):
        raise Invalid("file", "The file field is required when file.* is not present.")
    content = await upload.read()
    if sniff_mime(content) not in MEDIA_TYPES:
        raise Invalid("file", f"The file field must be a file of type: {', '.join(MEDIA_TYPES)}.")
    if len(content) > MAX_PHOTO_SIZE_KB * 1024:
        raise Invalid("file", f"The file field must not be greater than {MAX_PHOTO_SIZE_KB} kilobytes.")
    description = _description(data.get("description"))
    media = demo.live.upload(owner, content, sniff_mime(content), description)
    body = render_media(media, base_url(request), False)
    stamp = f"{body['url']}?v={int(time.time())}"
    body["preview_url"], body["url"] = stamp, (None if v2 else stamp)
    return JSONResponse(body, status_code=202 if v2 else 200)


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("description", "The description field must be a string.")
    if len(value) > MAX_ALTEXT_LENGTH:
        raise Invalid("description", f"The description field must not be greater than "
                                     f"{MAX_ALTEXT_LENGTH} characters.")
    return value


@router.get("/api/v1/media/{media_id}")
async def media_get(request: Request) -> Response:
    """The caller's upload that is not in a status yet (404 otherwise)."""
    demo = demo_state(request)
    owner = demo.user(request)
    media = demo.live.unattached(owner.id, _id(request, "media_id"))
    if media is None:
        raise ApiError(404, "Record not found")
    return JSONResponse(render_media(media, base_url(request), False))


@router.put("/api/v1/media/{media_id}")
async def media_update(request: Request) -> Response:
    """The caller's upload's alt text (attached or not)."""
    demo = demo_state(request)
    owner = demo.user(request, scope="write")
    media = demo.live.media.get(_id(request, "media_id"))
    if media is None or media.account_id != owner.id:
        raise ApiError(404, "Record not found")
    media = demo.live.describe(media, _description((await request_input(request)).get("description")))
    return JSONResponse(render_media(media, base_url(request), False))


# ---------------------------------------------------------------------------- statuses ----
@router.post("/api/v1/statuses")
async def status_create(request: Request) -> Response:
    demo = demo_state(request)
    author = demo.user(request, scope="write")
    data = await request_input(request)
    media_ids = _validate_status(data)
    key = request.headers.get("idempotency-key")
    if key is not None and not demo.live.claim_idempotency_key(author.id, key):
        raise ApiError(400, "Duplicate idempotency key.")
    if not filled(data.get("media_ids")) and not filled(data.get("in_reply_to_id")):
        raise ApiError(403, "Empty statuses are not allowed")
    visibility = "private" if author.locked else (data.get("visibility") or "public")
    parent = _parent(demo, author, data.get("in_reply_to_id"))
    if parent is not None:
        if getattr(parent, "comments_disabled", False):
            return JSONResponse("Comments have been disabled on this post", status_code=422)
        visibility = max(visibility, parent.visibility, key=VISIBILITY_RANK.__getitem__)
    sensitive = boolean(data.get("sensitive") or False)
    spoiler = data.get("spoiler_text") if sensitive and filled(data.get("spoiler_text")) else None
    post = demo.live.create_status(
        author, status=strip_tags(str(data.get("status") or "")), host=request.url.hostname or "",
        media_ids=media_ids, parent=parent, visibility=visibility, sensitive=sensitive,
        spoiler_text=str(spoiler) if spoiler is not None else None,
        comments_disabled=boolean(data.get("comments_disabled") or False))
    body = render_status(demo.live, post, base_url(request), False)
    body.update(favourited=False, language="en", bookmarked=False, card=None)
    return JSONResponse(body)


def _validate_status(data: dict[str, Any]) -> list[int]:
    """statusCreate's validation rules, in order, with Laravel's messages; the media ids."""
    status = data.get("status")
    if status is not None and not isinstance(status, str):
        raise Invalid("status", "The status field must be a string.")
    if isinstance(status, str) and len(status) > MAX_CAPTION_LENGTH:
        raise Invalid("status", f"The status field must not be greater than {MAX_CAPTION_LENGTH} "
                                "characters.")
    ids = data.get("media_ids")
    if "media_ids" in data and not isinstance(ids, list):
        raise Invalid("media_ids", "The media ids field must be an array.")
    if isinstance(ids, list) and len(ids) > MAX_ALBUM_LENGTH:
        raise Invalid("media_ids", f"The media ids field must not have more than {MAX_ALBUM_LENGTH} "
                                   "items.")
    if "visibility" in data:
        visibility = data["visibility"]
        if not isinstance(visibility, str):
            raise Invalid("visibility", "The visibility field must be a string.")
        if visibility not in VISIBILITIES:
            raise Invalid("visibility", "The selected visibility is invalid.")
    spoiler = data.get("spoiler_text")
    if spoiler is not None and len(str(spoiler)) > MAX_SPOILER_LENGTH:
        raise Invalid("spoiler_text", f"The spoiler text field must not be greater than "
                                      f"{MAX_SPOILER_LENGTH} characters.")
    disabled = data.get("comments_disabled")
    if "comments_disabled" in data and str(disabled).lower() not in ("true", "false", "1", "0"):
        raise Invalid("comments_disabled", "The comments disabled field must be true or false.")
    return [int(str(v)) if str(v).isdigit() else -1 for v in ids or []]


def _parent(demo: DemoState, author: Account, raw: Any) -> Post | None:
    """The status replied to: 404 when missing or not visible to the author."""
    if not filled(raw):
        return None
    text = str(raw)
    parent = demo.live.post(int(text)) if text.isdigit() else None
    if parent is None or not demo.live.visible_to(parent, author.id):
        raise ApiError(404, "Record not found")
    return parent


@router.delete("/api/v1/statuses/{status_id}")
async def status_delete(request: Request) -> Response:
    demo = demo_state(request)
    author = demo.user(request, scope="write")
    post = demo.live.post(_id(request, "status_id"))
    if post is None or post.account_id != author.id:
        raise ApiError(404, "Record not found")
    body = render_status(demo.live, post, base_url(request), False)
    body["text"] = body.pop("content")
    demo.live.delete_status(post)
    return JSONResponse(body)


@router.get("/api/v1/statuses/{status_id}/context")
async def status_context(request: Request) -> Response:
    demo = demo_state(request)
    grant = demo.grant(request)
    viewer = demo.viewer_id(grant)
    post = demo.live.post(_id(request, "status_id"))
    if post is None or not demo.live.visible_to(post, viewer if viewer is not None else -1):
        return Response(status_code=404)
    ancestors, descendants = demo.live.context(post)
    pe, base = "_pe" in request.query_params, base_url(request)
    return JSONResponse({"ancestors": [render_status(demo.live, p, base, pe) for p in ancestors],
                         "descendants": [render_status(demo.live, p, base, pe) for p in descendants]})


def _id(request: Request, name: str) -> int:
    raw = request.path_params[name]
    return int(raw) if raw.isdigit() else -1
