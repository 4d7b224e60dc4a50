"""OAuth: ``POST /api/v1/apps``, ``GET /oauth/authorize`` (no login screen) and ``POST /oauth/token``."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pixtag_demo.errors import Invalid
from pixtag_demo.oauth import OOB_REDIRECT, OAuthError
from pixtag_demo.params import form_params
from pixtag_demo.state import demo_state

router = APIRouter()


@router.api_route("/api/v1/apps", methods=['POST'])
async def apps(request: Request) -> Response:
    """``POST /api/v1/apps``: register a client (no auth)."""
    demo = demo_state(request)
    form = await form_params(request)
    for name in ("client_name", "redirect_uris"):
        if not form.get(name, "").strip():
            raise Invalid(name, f"The {name.replace('_', ' ')} field is required.")
    app = demo.oauth.register(form["client_name"].strip(), form["redirect_uris"],
                              form.get("website"))
    return JSONResponse({"id": str(app.id), "name": app.name, "website": app.website,
                         "redirect_uri": "\n".join(app.redirect_uris),
                         "client_id": str(app.id), "client_secret": app.secret,
                         "vapid_key": None})


@router.get("/oauth/authorize")
async def authorize(request: Request) -> Response:
    """``GET /oauth/authorize``: the demo user approves at once; the code is shown (oob)
    or sent to ``redirect_uri`` with a 302."""
    demo = demo_state(request)
    params = dict(request.query_params)
    try:
        code, redirect = demo.oauth.authorize(params)
    except OAuthError as exc:
        return exc.response()
    page = ("<!DOCTYPE html><html><head><title>Authorization code</title></head><body>"
            "<h1>pixtag demo: authorization granted</h1><p>Copy this code:</p>"
            f'<pre id="code">{html.escape(code)}</pre></body></html>')
    if redirect == OOB_REDIRECT:
        return HTMLResponse(page)
    query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
    sep = "&" if "?" in redirect else "?"
    return HTMLResponse(page, status_code=302,
                        headers={"Location": f"{redirect}{sep}{urlencode(query)}"})


@router.api_route("/oauth/token", methods=['POST'])
async def token(request: Request) -> Response:
    demo = demo_state(request)
    try:
        return JSONResponse(demo.oauth.exchange(await form_params(request)))
    except OAuthError as exc:
        return exc.response()
