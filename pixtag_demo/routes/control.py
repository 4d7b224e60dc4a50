"""Control endpoints no real instance has (no auth). Bodies are JSON; errors are 422
``{"message", "errors"}``.

- ``GET|DELETE /_demo/stats``: requests per route kind (``post_status``, ``notifications``,
  ``media_upload``, ``direct``... too), statuses, faults, API request times; DELETE resets.
- ``GET|PUT /_demo/faults``: the fault knobs (:class:`~pixtag_demo.faults.Faults`); ``routes``
  aims them, e.g. ``{"rate_429": 1, "retry_after": 2, "routes": ["POST /api/v1/statuses"]}``
  or ``{"rate_5xx": 0.5, "routes": ["GET /api/v1/notifications"]}``.
- ``GET /_demo/world``: counts, classes, traps.
- ``GET /_demo/accounts``: every account ``{id, username, acct, local, locked, bot, opt_out,
  display_name}`` (world's and live): pick an opted-out (``opt_out``: ``#nobot``, ``#noai``,
  ``#noindex`` in the bio) or a locked one.
- ``POST /_demo/tokens`` ``{"username", "scopes": "read write", "token"?, "bio"?, "locked"?,
  "display_name"?}``: a bearer token for a local account; a new username makes a plain account
  with that bio and lock (ignored for an existing account). Answers ``{token, scopes, account}``.
- ``POST|DELETE /_demo/follows`` ``{"follower", "following"}`` (usernames, ``user@domain`` or
  ids): makes or ends a follow (what private statuses and message requests look at).
- ``POST /_demo/remote_statuses`` ``{"acct": "user@domain", "status", "media_urls"?: [...],
  "visibility"?, "sensitive"?, "spoiler_text"?, "in_reply_to_id"?}``: a status from a remote
  account (made when new) as if it had arrived over ActivityPub; its attachments' URLs are
  served exactly as given (point one at a host that resolves to a private address to test an
  SSRF guard); mentions of local accounts notify them. Answers the status JSON.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.errors import ApiError
from pixtag_demo.faults import Faults
from pixtag_demo.oauth import Grant, OAuthError, parse_scopes
from pixtag_demo.params import base_url
from pixtag_demo.render import render_account, render_status
from pixtag_demo.state import DemoState, demo_state
from pixtag_demo.world.entities import Account

router = APIRouter()


@router.api_route("/_demo/stats", methods=['GET', 'DELETE'])
async def demo_stats(request: Request) -> Response:
    demo = demo_state(request)
    if request.method == "DELETE":
        demo.stats.reset()
    return JSONResponse(demo.stats.snapshot())


@router.api_route("/_demo/faults", methods=['GET', 'PUT'])
async def demo_faults(request: Request) -> Response:
    demo = demo_state(request)
    if request.method == "PUT":
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object of fault knobs")
            demo.dice.set(Faults.from_dict(data))
        except (ValueError, TypeError) as exc:
            return _invalid("faults", str(exc))
    return JSONResponse(demo.dice.faults.to_dict())


@router.get("/_demo/world")
async def demo_world(request: Request) -> Response:
    demo = demo_state(request)
    return JSONResponse(demo.world.summary())


@router.get("/_demo/accounts")
async def demo_accounts(request: Request) -> Response:
    demo = demo_state(request)
    return JSONResponse([
        {"id": str(a.id), "username": a.username, "acct": a.acct, "local": a.local,
         "locked": a.locked, "bot": getattr(a, "bot", False), "opt_out": a.opt_out,
         "display_name": a.display_name}
        for a in demo.live.all_accounts()])


@router.post("/_demo/tokens")
async def demo_tokens(request: Request) -> Response:
    demo = demo_state(request)
    body = await _body(request)
    username = str(body.get("username") or "").strip().lstrip("@")
    if not username or "@" in username:
        return _invalid("username", "a local username is required (no @domain)")
    try:
        scopes = parse_scopes(str(body.get("scopes") or "read write"))
    except OAuthError:
        return _invalid("scopes", "scopes are some of read write follow push admin:read admin:write")
    token = str(body.get("token") or secrets.token_urlsafe(32))
    if token in demo.oauth.tokens:
        return _invalid("token", "that token is taken")
    account = demo.live.find_local(username) or demo.live.add_account(
        username, bio=str(body.get("bio") or ""), locked=bool(body.get("locked")),
        display_name=body.get("display_name"))
    demo.oauth.add_token(token, Grant("user", scopes, account_id=account.id))
    return JSONResponse({"token": token, "scopes": " ".join(sorted(scopes)),
                         "account": render_account(demo.live, account, base_url(request), False)})


@router.api_route("/_demo/follows", methods=["POST", "DELETE"])
async def demo_follows(request: Request) -> Response:
    demo = demo_state(request)
    body = await _body(request)
    follower, following = _account(demo, body.get("follower")), _account(demo, body.get("following"))
    if follower is None or following is None:
        return _invalid("follower", "follower and following must name known accounts")
    demo.live.follow(follower.id, following.id, on=request.method == "POST")
    return JSONResponse({"follower": str(follower.id), "following": str(following.id),
                         "follows": demo.live.is_following(follower.id, following.id)})


@router.post("/_demo/remote_statuses")
async def demo_remote_statuses(request: Request) -> Response:
    demo = demo_state(request)
    body = await _body(request)
    name, _, domain = str(body.get("acct") or "").lstrip("@").partition("@")
    if not name or not domain:
        return _invalid("acct", "acct must be user@domain of a remote account")
    urls = body.get("media_urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        return _invalid("media_urls", "media_urls must be a list of URLs")
    visibility = str(body.get("visibility") or "public")
    if visibility not in ("public", "unlisted", "private"):
        return _invalid("visibility", "visibility is public, unlisted or private")
    account = demo.live.find_acct(f"{name}@{domain}") or demo.live.add_account(
        name, domain=domain.lower(), bio=str(body.get("bio") or ""),
        display_name=body.get("display_name"))
    parent = None
    if body.get("in_reply_to_id") is not None:
        raw = str(body["in_reply_to_id"])
        parent = demo.live.post(int(raw)) if raw.isdigit() else None
        if parent is None:
            raise ApiError(404, "Record not found")
    sensitive = bool(body.get("sensitive"))
    post = demo.live.create_status(
        account, status=str(body.get("status") or ""), host=request.url.hostname or "",
        parent=parent, visibility=visibility, sensitive=sensitive,
        spoiler_text=str(body.get("spoiler_text") or "") if sensitive else None,
        remote_media=urls, kind="remote")
    return JSONResponse(render_status(demo.live, post, base_url(request), False))


def _account(demo: DemoState, ref: Any) -> Account | None:
    text = str(ref or "").strip()
    if text.isdigit():
        return demo.live.account(int(text))
    return demo.live.find_acct(text) if text else None


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _invalid(name: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "errors": {name: [message]}}, status_code=422)
