"""``/storage/...``: media files (v2 and legacy v1 paths, ``_thumb`` previews; uploads as they
were sent, their preview is the original), the default avatar and header, ``no-preview.png``;
truncated or garbled bodies as faults."""

from __future__ import annotations

import io
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixtag_demo.faults import TruncatedResponse, garble
from pixtag_demo.render import AVATAR_PATH, HEADER_PATH
from pixtag_demo.state import demo_state
from pixtag_demo.world.entities import NO_PREVIEW_PATH

router = APIRouter()


@router.get("/storage/{path:path}")
async def storage(request: Request) -> Response:
    """Media files (v2 and legacy v1 paths, ``_thumb`` previews); no auth."""
    demo = demo_state(request)
    path = request.url.path
    static = {AVATAR_PATH: "avatar", HEADER_PATH: "header", NO_PREVIEW_PATH: "preview"}
    if path in static:
        data, mime = _static_image(static[path])
        return Response(data, media_type=mime)
    uploaded = demo.live.media_by_path.get(path)
    hit = demo.world.media_by_path.get(path)
    if uploaded is not None:
        media, data = demo.live.media[uploaded], demo.live.blobs[uploaded]
    elif hit is not None:
        media = demo.world.media[hit[0]]
        data = demo.world.thumb_bytes(media) if hit[1] else demo.world.media_bytes(media)
    else:
        raise StarletteHTTPException(404, "Not Found")
    headers = {"Cache-Control": "public, max-age=31536000"}
    f = demo.dice.faults
    if not f.applies(request.method, path):
        return Response(data, media_type=media.mime, headers=headers)
    if demo.dice.roll(f.corrupt_media_rate):
        demo.stats.fault("corrupt_media")
        data = garble(data, demo.dice.rng)
    if demo.dice.roll(f.truncate_media_rate):
        demo.stats.fault("truncate_media")
        return TruncatedResponse(data, media_type=media.mime, headers=headers)
    return Response(data, media_type=media.mime, headers=headers)


@lru_cache(maxsize=4)
def _static_image(kind: str) -> tuple[bytes, str]:
    """The default avatar, the missing header and ``no-preview.png``."""
    buf = io.BytesIO()
    if kind == "avatar":
        Image.new("RGB", (64, 64), (200, 200, 210)).save(buf, format="JPEG")
        return buf.getvalue(), "image/jpeg"
    Image.new("RGB", (32, 32), (230, 230, 230)).save(buf, format="PNG")
    return buf.getvalue(), "image/png"
