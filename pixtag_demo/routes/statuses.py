"""``GET /api/v1/statuses/{id}`` (world's and live statuses)."""

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
    """``GET /api/v1/statuses/{id}``: 404 missing or deleted, 403 private (unless the caller is
    the author or follows them; the demo user follows nobody), 400 direct."""
    demo = demo_state(request)
    grant = demo.grant(request)
    raw = request.path_params["status_id"]
    post = demo.live.post(int(raw)) if raw.isdigit() else None
    if post is None:
        raise ApiError(404, "Record not found")
    viewer = demo.viewer_id(grant)
    if post.visibility == "private" and not demo.live.visible_to(post, viewer or -1):
        raise ApiError(403, "This action is unauthorized.")
    if post.visibility == "direct":
        raise ApiError(400, "Invalid request")
    pe = "_pe" in request.query_params
    return JSONResponse(render_status(demo.live, post, base_url(request), pe))
