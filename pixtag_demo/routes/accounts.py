"""Accounts: ``GET /api/v1/accounts/verify_credentials`` (the caller, with ``source``) and
``GET /api/v1/accounts/{id}`` (any account, world's or live; 404 ``Record not found``). The bot
account answers ``bot: true``; ``?_pe=1`` adds the Pixelfed-entity fields."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.errors import ApiError
from pixtag_demo.params import base_url
from pixtag_demo.render import render_account
from pixtag_demo.state import demo_state

router = APIRouter()


@router.get("/api/v1/accounts/verify_credentials")
async def verify_credentials(request: Request) -> Response:
    demo = demo_state(request)
    account = demo.user(request)
    body = render_account(demo.live, account, base_url(request), "_pe" in request.query_params)
    body["source"] = {"privacy": "private" if account.locked else "public", "sensitive": False,
                      "language": "en", "note": account.bio, "fields": []}
    return JSONResponse(body)


@router.get("/api/v1/accounts/{account_id}")
async def account_by_id(request: Request) -> Response:
    demo = demo_state(request)
    demo.grant(request)
    raw = request.path_params["account_id"]
    account = demo.live.account(int(raw)) if raw.isdigit() else None
    if account is None:
        raise ApiError(404, "Record not found")
    return JSONResponse(render_account(demo.live, account, base_url(request),
                                       "_pe" in request.query_params))
