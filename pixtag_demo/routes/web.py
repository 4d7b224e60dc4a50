"""Web pages: ``/login`` (where Pixelfed sends browsers without a session)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

router = APIRouter()


@router.get("/login")
async def login(request: Request) -> Response:
    return HTMLResponse("<!DOCTYPE html><html><head><title>Login</title></head><body>"
                        "<h1>Login</h1><p>This demo instance has no login form; use a token"
                        " (PIXTAG_TOKEN) or <code>pixtag auth</code>.</p></body></html>")
