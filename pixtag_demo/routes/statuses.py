"""``GET /api/v1/statuses/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.errors import ApiError
from pixtag_demo.params import base_url
from pixtag_demo.render import render_status
from pixtag_demo.state import demo_state

router = APIRouter()


@router.get("/api/v1/statuses/{status_id}")
async def status(request: Request) -> Response:
    """``GET /api/v1/statuses/{id}``: 404 missing, 403 private, 400 direct."""
    demo = demo_state(request)
    demo.grant(request)
    raw = request.path_params["status_id"]
    post = demo.world.posts_by_id.get(int(raw)) if raw.isdigit() else None
    if post is None:
        raise ApiError(404, "Record not found")
    if post.visibility == "private":  # the demo user follows nobody
        raise ApiError(403, "This action is unauthorized.")
    if post.visibility == "direct":
        raise ApiError(400, "Invalid request")
    pe = "_pe" in request.query_params
    return JSONResponse(render_status(demo.world, post, base_url(request), pe))
