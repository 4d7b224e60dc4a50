"""Hashtags: trending (both Pixelfed paths), ``/api/v1/trends`` and ``/api/v1/tags/{tag}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.params import base_url
from pixtag_demo.state import demo_state

router = APIRouter()


@router.get("/api/v1.1/discover/posts/hashtags")
@router.get("/api/pixelfed/v1/discover/posts/hashtags")
async def trending(request: Request) -> Response:
    """Up to 20 ``{id, total, name:"#tag", hashtag, url}`` over the last 14 days."""
    demo = demo_state(request)
    demo.grant(request)
    base = base_url(request)
    return JSONResponse([
        {"id": h.id, "total": n, "name": f"#{h.name}", "hashtag": h.name,
         "url": f"{base}/discover/tags/{h.slug}?src=hash"}
        for h, n in demo.world.trending()])


@router.get("/api/v1/trends")
async def trends(request: Request) -> Response:
    demo = demo_state(request)
    demo.grant(request, user=False, scope=None)
    return JSONResponse([])


@router.get("/api/v1/tags/{tag}")
async def tag(request: Request) -> Response:
    """``GET /api/v1/tags/{tag}`` (TagsController::getHashtag; count only with _pe)."""
    demo = demo_state(request)
    demo.grant(request, scope=None)
    name = request.path_params["tag"]
    base = base_url(request)
    hashtag = demo.live.find_hashtag(name)
    if hashtag is None:
        return JSONResponse({"name": name, "url": f"{base}/i/web/hashtag/{name}",
                             "history": [], "following": False})
    body: dict[str, Any] = {"name": hashtag.name,
                            "url": f"{base}/i/web/hashtag/{hashtag.slug}",
                            "history": [], "following": False}
    if "_pe" in request.query_params:
        body["count"] = demo.live.tag_count(hashtag.slug)
    return JSONResponse(body)
