"""``pixtag demo-instance``: a demo world served over the Pixelfed API on 127.0.0.1.

:func:`create_app` serves a :class:`~pixtag_demo.world.World` with the endpoints, JSON shapes,
auth behaviour, caps, paging and quirks of ``../shared/pixelfed-api.md`` (Mastodon-mode
entities; ``?_pe=1`` adds the Pixelfed-entity fields). :class:`DemoInstance` runs it in a
background thread for tests, benchmarks and the demo; the ``demo-instance`` command runs it in
the foreground. Optional :class:`Faults` (429, 5xx, slow, truncated or corrupt media, HTML or
malformed bodies, repeated or endless pages) are drawn from a seeded RNG, so runs repeat.

Control endpoints that no real instance has (no auth): ``GET /_demo/stats`` (requests per
route kind, monotonic timestamps of API requests), ``DELETE /_demo/stats``,
``GET|PUT /_demo/faults`` and ``GET /_demo/world`` (counts, classes, traps).
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

import click
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixtag.core.errors import PixtagError
from pixtag_demo.world import (
    BLURHASH_FALLBACK,
    DEFAULT_NOW,
    LICENSES,
    MAX_LIMIT,
    NO_PREVIEW_PATH,
    Account,
    Media,
    Post,
    World,
    build_world,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_TOKEN = "demo-token"
VERSION = "3.5.3 (compatible; Pixelfed 0.12.5)"
SOFTWARE_VERSION = "0.12.5"
OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
TOKEN_LIFETIME_S = 365 * 24 * 3600  # OAUTH_TOKEN_DAYS
KNOWN_SCOPES = frozenset({"read", "write", "follow", "push", "admin:read", "admin:write"})
DEFAULT_SCOPES = "read write follow"
PHP_INT_MAX = 2**63 - 1
AVATAR_PATH = "/storage/avatars/default.jpg"
HEADER_PATH = "/storage/headers/missing.png"
API_KINDS = frozenset({"public_timeline", "tag_timeline", "status", "trending", "trends", "tag",
                       "instance", "api_other"})
ENDLESS_STEP = (3600 * 1000) << 22  # one hour, in snowflake units


class DemoError(PixtagError):
    """The demo instance cannot start (no photos, port in use, bad option)."""


# ---------------------------------------------------------------------------- faults -------
@dataclass
class Faults:
    """Failure knobs, all off by default. Rates are per-request probabilities in [0, 1].

    ``retry_after`` is the Retry-After value sent with a 429 (``None``: no header);
    ``repeat_page`` is how many times the tag timeline ignores ``max_id`` and serves the
    previous page again; ``endless_pages`` makes the tag timeline never answer ``[]``.
    """

    seed: int = 0
    rate_429: float = 0.0
    retry_after: int | None = 1
    rate_5xx: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    truncate_media_rate: float = 0.0
    corrupt_media_rate: float = 0.0
    html_error_rate: float = 0.0
    malformed_json_rate: float = 0.0
    repeat_page: int = 0
    endless_pages: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "rate" in f.name and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, not {value!r}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0 or null")
        if not 0 <= self.slow_seconds <= 120:
            raise ValueError("slow_seconds must be between 0 and 120")
        if self.repeat_page < 0:
            raise ValueError("repeat_page must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Knobs from JSON; unknown names and wrong types raise ValueError."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _coerce_knob(name, value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce_knob(name: str, value: Any) -> Any:
    if name == "endless_pages":
        if not isinstance(value, bool):
            raise ValueError("endless_pages must be true or false")
        return value
    if name == "retry_after" and value is None:
        return None
    if isinstance(value, bool) and name == "repeat_page":
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if name in ("seed", "retry_after", "repeat_page"):
        if int(value) != value:
            raise ValueError(f"{name} must be an integer")
        return int(value)
    return float(value)


class _FaultDice:
    """The current knobs plus the seeded RNG that decides, request by request."""

    def __init__(self, faults: Faults):
        self.set(faults)

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(f"faults:{faults.seed}")
        self.repeats_left = faults.repeat_page

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


# ----------------------------------------------------------------------------- stats -------
class _Stats:
    """Request counts per route kind and the monotonic times of API requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.since = time.monotonic()
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.api_times: list[float] = []

    def request(self, kind: str, api: bool) -> None:
        with self._lock:
            self.requests[kind] += 1
            if api:
                self.api_times.append(time.monotonic())

    def status(self, code: int) -> None:
        with self._lock:
            self.statuses[str(code)] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self.since, "now": time.monotonic(),
                "requests": dict(self.requests), "statuses": dict(self.statuses),
                "faults": dict(self.faults), "api_requests": len(self.api_times),
                "api_times": list(self.api_times),
            }


def route_kind(path: str) -> str:
    """Coarse route family of a request path (for stats and fault selection)."""
    for prefix, kind in _ROUTE_KINDS:
        if path.startswith(prefix):
            return kind
    return "other"


_ROUTE_KINDS = (
    ("/api/v1/timelines/public", "public_timeline"),
    ("/api/v1/timelines/tag/", "tag_timeline"),
    ("/api/v1/statuses/", "status"),
    ("/api/v1.1/discover/posts/hashtags", "trending"),
    ("/api/pixelfed/v1/discover/posts/hashtags", "trending"),
    ("/api/v1/trends", "trends"),
    ("/api/v1/tags/", "tag"),
    ("/api/v1/instance", "instance"),
    ("/api/v2/instance", "instance"),
    ("/api/nodeinfo/", "instance"),
    ("/.well-known/nodeinfo", "instance"),
    ("/api/v1/apps", "oauth"),
    ("/oauth/", "oauth"),
    ("/storage/", "media"),
    ("/_demo/", "demo"),
    ("/api/", "api_other"),
)


# ------------------------------------------------------------------------------ auth -------
@dataclass(frozen=True)
class Grant:
    """What a bearer token stands for: a user (the demo user) or an app only."""

    kind: str  # user | app
    scopes: frozenset[str]
    client_id: str | None = None


@dataclass
class OAuthApp:
    id: int
    name: str
    redirect_uris: tuple[str, ...]
    secret: str
    website: str | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]


class _OAuthError(Exception):
    """An OAuth2 error in league/oauth2-server's JSON shape (what Passport sends)."""

    MESSAGES: ClassVar[dict[str, tuple[int, str]]] = {
        "invalid_client": (401, "Client authentication failed"),
        "invalid_grant": (400, "The provided authorization grant (e.g., authorization code, "
                               "resource owner credentials) or refresh token is invalid, expired, "
                               "revoked, does not match the redirection URI used in the "
                               "authorization request, or was issued to another client."),
        "invalid_request": (400, "The request is missing a required parameter, includes an "
                                 "invalid parameter value, includes a parameter more than once, "
                                 "or is otherwise malformed."),
        "invalid_scope": (400, "The requested scope is invalid, unknown, or malformed"),
        "unsupported_grant_type": (400, "The authorization grant type is not supported by the "
                                        "authorization server."),
        "unsupported_response_type": (400, "The authorization server does not support obtaining "
                                           "an access token using this method."),
    }

    def __init__(self, error: str, hint: str = ""):
        super().__init__(error)
        self.error, self.hint = error, hint

    def response(self) -> JSONResponse:
        status, message = self.MESSAGES[self.error]
        body = {"error": self.error, "error_description": message, "message": message}
        if self.hint:
            body["hint"] = self.hint
        return JSONResponse(body, status_code=status)


class OAuthServer:
    """Apps, authorization codes and tokens (Laravel Passport's flows, no login screen)."""

    def __init__(self, token: str):
        self.tokens: dict[str, Grant] = {token: Grant("user", frozenset(DEFAULT_SCOPES.split()))}
        self.apps: dict[str, OAuthApp] = {}
        self.codes: dict[str, _Code] = {}
        self._lock = threading.Lock()

    def register(self, name: str, redirect_uris: str, website: str | None) -> OAuthApp:
        with self._lock:
            app = OAuthApp(len(self.apps) + 1, name,
                           tuple(u for u in re.split(r"[\s,]+", redirect_uris) if u),
                           secrets.token_urlsafe(30), website)
            self.apps[str(app.id)] = app
        return app

    def client(self, client_id: str, secret: str | None = None) -> OAuthApp:
        app = self.apps.get(client_id)
        if app is None or (secret is not None and not secrets.compare_digest(secret, app.secret)):
            raise _OAuthError("invalid_client")
        return app

    def authorize(self, params: Mapping[str, str]) -> tuple[str, str]:
        """Check an authorization request; returns (code, redirect_uri)."""
        app = self.client(params.get("client_id", ""))
        redirect = params.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris
                                                  else "")
        if redirect not in app.redirect_uris:
            raise _OAuthError("invalid_client", "redirect_uri does not match the app")
        if params.get("response_type") != "code":
            raise _OAuthError("unsupported_response_type")
        scopes = parse_scopes(params.get("scope"))
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.codes[code] = _Code(str(app.id), redirect, scopes)
        return code, redirect

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /oauth/token`` for the authorization_code and client_credentials grants."""
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "client_credentials"):
            raise _OAuthError("unsupported_grant_type")
        app = self.client(form.get("client_id", ""), form.get("client_secret", ""))
        if grant_type == "client_credentials":
            return self._issue(Grant("app", parse_scopes(form.get("scope") or "read"),
                                     str(app.id)))
        with self._lock:
            code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != str(app.id):
            raise _OAuthError("invalid_grant", "Authorization code has expired or was used")
        if form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
            raise _OAuthError("invalid_request", "Check the `redirect_uri` parameter")
        return self._issue(Grant("user", code.scopes, str(app.id)), refresh=True)

    def _issue(self, grant: Grant, refresh: bool = False) -> dict[str, Any]:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self.tokens[token] = grant
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
                                "access_token": token, "scope": " ".join(sorted(grant.scopes))}
        if refresh:
            body["refresh_token"] = secrets.token_urlsafe(48)
        return body


def parse_scopes(raw: str | None) -> frozenset[str]:
    scopes = frozenset(s for s in re.split(r"[\s+]+", raw or DEFAULT_SCOPES) if s)
    if not scopes or not scopes <= KNOWN_SCOPES:
        raise _OAuthError("invalid_scope", "Check the `scope` parameter")
    return scopes


# ---------------------------------------------------------------------------- errors -------
class _ApiError(Exception):
    """Rendered the way Pixelfed's exception handler does for JSON clients: ``{"error": msg}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _Unauthenticated(Exception):
    """No or unknown bearer token."""


class _Invalid(Exception):
    """A Laravel validation error (HTTP 422 ``{"message", "errors"}``)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message


def wants_json(request: Request) -> bool:
    """Laravel's ``expectsJson()``: an XHR, or a first Accept type that is JSON."""
    if request.headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return True
    first = request.headers.get("accept", "").split(",")[0].strip().lower()
    return "/json" in first or "+json" in first


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _unauthenticated(request: Request) -> Response:
    """Pixelfed without a valid token: HTTP 500 JSON for JSON clients, else 302 to /login."""
    if wants_json(request):
        return JSONResponse({"error": "Unauthenticated."}, status_code=500)
    return RedirectResponse(f"{base_url(request)}/login", status_code=302)


def _not_found(request: Request, exc: StarletteHTTPException) -> Response:
    if wants_json(request) or request.url.path.startswith("/api/"):
        message = (f"The route {request.url.path.lstrip('/')} could not be found."
                   if exc.status_code == 404 else str(exc.detail))
        return JSONResponse({"error": message}, status_code=exc.status_code)
    return HTMLResponse(f"<!DOCTYPE html><title>{exc.status_code}</title>"
                        f"<h1>{html.escape(str(exc.detail))}</h1>", status_code=exc.status_code)


# -------------------------------------------------------------------------- entities -------
def iso_time(when: datetime, quirks: tuple[str, ...] = ()) -> str:
    """ISO 8601 UTC with milliseconds, or the variants live servers send (spec §6)."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if "date_micro" in quirks:
        return f"{text}.{when.microsecond:06d}Z"
    if "date_offset" in quirks:
        return f"{text}+00:00"
    return f"{text}.{when.microsecond // 1000:03d}Z"


def hashtag_link(base: str, name: str) -> str:
    """A hashtag as Pixelfed renders it in HTML content, in the author's spelling."""
    return (f'<a href="{base}/discover/tags/{name.lower()}?src=hash" title="#{name}" '
            f'class="u-url hashtag" rel="external nofollow noopener">#{name}</a>')


def _linkify(text: str, base: str) -> str:
    """Plain text as HTML, with ``#tags`` turned into hashtag links."""
    parts = re.split(r"(#\w+)", text)
    return "".join(hashtag_link(base, part[1:]) if part.startswith("#") else html.escape(part)
                   for part in parts)


def content_html(post: Post, base: str) -> str:
    links = " ".join(hashtag_link(base, tag) for tag in post.hashtags)
    return f"<p>{html.escape(post.caption)}{' ' + links if links else ''}</p>"


def content_text(post: Post) -> str:
    return " ".join([post.caption, *(f"#{t}" for t in post.hashtags)])


def render_account(world: World, account: Account, base: str, pe: bool) -> dict[str, Any]:
    url = (f"{base}/{account.username}" if account.local
           else f"https://{account.domain}/@{account.username}")
    avatar = f"{base}{AVATAR_PATH}"
    data: dict[str, Any] = {
        "id": str(account.id), "username": account.username, "acct": account.acct,
        "display_name": account.display_name, "discoverable": True, "locked": account.locked,
        "followers_count": account.followers, "following_count": account.following,
        "statuses_count": world.statuses_count(account.id),
        "note": f"<p>{_linkify(account.bio, base)}</p>" if account.bio else "",
        "url": url, "avatar": avatar, "avatar_static": avatar,
        "header": f"{base}{HEADER_PATH}", "header_static": f"{base}{HEADER_PATH}",
        "created_at": iso_time(account.created_at), "bot": False, "group": False,
        "emojis": [], "fields": [], "last_status_at": None,
    }
    if account.indexable is not None:
        data["indexable"] = account.indexable
    if pe:
        data.update(local=account.local, is_admin=account.is_admin, note_text=account.bio,
                    website=account.website, location=account.location, pronouns=[])
    return data


def render_media(media: Media, base: str, pe: bool) -> dict[str, Any]:
    url = f"{base}{media.path}"
    q = media.quirks
    data: dict[str, Any] = {
        "id": str(media.id),
        "type": "Image" if media.kind == "image" and "type_capitalised" in q else media.kind,
        "url": url,
        "preview_url": url if "preview_is_url" in q else f"{base}{media.thumb_path}",
        "remote_url": None, "text_url": None, "description": media.description,
        "blurhash": BLURHASH_FALLBACK, "meta": _media_meta(media),
    }
    if pe:
        data.update(
            mime=media.mime, license=_license(media.license, base),
            is_nsfw=int(media.is_nsfw) if "nsfw_as_int" in q else media.is_nsfw,
            orientation=_orientation(media), filter_name=None, filter_class=None,
            optimized_url=url)
    return data


def _media_meta(media: Media) -> dict[str, Any] | None:
    if "meta_null" in media.quirks or not media.width or not media.height:
        return None
    w, h = media.width, media.height
    return {"focus": {"x": 0, "y": 0},
            "original": {"width": w, "height": h, "size": f"{w}x{h}", "aspect": round(w / h, 4)}}


def _orientation(media: Media) -> str | None:
    if not media.width or not media.height:
        return None
    if media.width == media.height:
        return "square"
    return "landscape" if media.width > media.height else "portrait"


def _license(license_id: int | None, base: str) -> dict[str, Any] | None:
    if license_id is None:
        return None
    title, url = LICENSES[license_id]
    return {"id": license_id, "title": title, "url": url if url.startswith("http") else base + url}


def render_status(world: World, post: Post, base: str, pe: bool) -> dict[str, Any]:
    """A status in Mastodon mode, plus the Pixelfed-entity fields when ``pe``."""
    account = world.account_of(post)
    q = post.quirks
    if account.local:
        url = uri = f"{base}/p/{account.username}/{post.id}"
    else:
        url = f"https://{account.domain}/@{account.username}/{post.id}"
        uri = f"https://{account.domain}/users/{account.username}/statuses/{post.id}"
    count: Callable[[int], Any] = str if "counts_as_strings" in q else int
    flag = None if "bools_null" in q else False
    data: dict[str, Any] = {
        "id": str(post.id), "uri": uri, "url": url, "created_at": iso_time(post.created_at, q),
        "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": None,
        "content": content_html(post, base), "sensitive": post.sensitive,
        "spoiler_text": post.spoiler_text, "visibility": post.visibility,
        "language": None if "bools_null" in q else "en", "edited_at": None,
        "reblogs_count": count(post.shares), "favourites_count": count(post.likes),
        "replies_count": count(0), "favourited": flag, "reblogged": flag, "bookmarked": flag,
        "muted": flag, "pinned": flag, "application": {"name": "web", "website": None},
        "mentions": [], "emojis": [], "poll": None, "card": None,
        "tags": [] if "tags_empty" in q else [
            {"name": slug, "url": f"{base}/discover/tags/{slug}"} for slug in post.slugs],
        "account": render_account(world, account, base, pe),
        "media_attachments": [render_media(m, base, pe) for m in world.media_of(post)],
    }
    if pe:
        data.update(
            shortcode=_shortcode(post.id), content_text=content_text(post), pf_type=post.pf_type,
            reply_count=count(0), comments_disabled=False, place=None, local=account.local,
            taggedPeople=[], label={"covid": False, "covid_label": None},
            liked_by={"username": None, "others": False}, thread=False, replies=[], parent=[])
    return data


def _shortcode(post_id: int) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out, n = "", post_id
    while n:
        n, r = divmod(n, 62)
        out = alphabet[r] + out
    return out or "0"


# ---------------------------------------------------------------------- small helpers ------
def int_param(request: Request, name: str, minimum: int = 0,
              maximum: int = PHP_INT_MAX) -> int | None:
    """An integer query parameter with Laravel's validation (empty string = absent)."""
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    label = name.replace("_", " ")
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise _Invalid(name, f"The {label} field must be an integer.")
    value = int(raw)
    if value < minimum:
        raise _Invalid(name, f"The {label} field must be at least {minimum}.")
    if value > maximum:
        raise _Invalid(name, f"The {label} field must not be greater than {maximum}.")
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """Laravel's ``$request->boolean()``."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "on", "yes")


async def form_params(request: Request) -> dict[str, str]:
    """Query string plus a form-encoded or JSON body (Laravel's ``$request->input()``)."""
    params = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise _ApiError(400, "Malformed JSON body") from None
        if isinstance(data, dict):
            params.update({k: "\n".join(map(str, v)) if isinstance(v, list) else str(v)
                           for k, v in data.items() if v is not None})
        return params
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    params.update({k: v[-1] for k, v in parsed.items()})
    return params


@lru_cache(maxsize=4)
def _static_image(kind: str) -> tuple[bytes, str]:
    """The default avatar, the missing header and ``no-preview.png``."""
    buf = io.BytesIO()
    if kind == "avatar":
        Image.new("RGB", (64, 64), (200, 200, 210)).save(buf, format="JPEG")
        return buf.getvalue(), "image/jpeg"
    Image.new("RGB", (32, 32), (230, 230, 230)).save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def _garble(data: bytes, rng: random.Random) -> bytes:
    """Corrupt bytes of the same length: the first two kept, a third of the rest replaced."""
    n = max(64, len(data) // 3)
    return data[:2] + bytes(rng.randrange(256) for _ in range(min(n, len(data) - 2))) + \
        data[2 + n:]


class _TruncatedResponse(Response):
    """Declares the whole body in Content-Length, sends half, then the connection drops."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        _PlannedTruncation.expect_one()
        await send({"type": "http.response.body", "body": self.body[:len(self.body) // 2],
                    "more_body": True})
        # returning without the final body message makes uvicorn close the connection


class _PlannedTruncation(logging.Filter):
    """Keeps uvicorn's 'returned without completing response' error for planned truncations
    out of the logs (real ones still show)."""

    pending = 0
    lock = threading.Lock()

    @classmethod
    def expect_one(cls) -> None:
        with cls.lock:
            cls.pending += 1

    def filter(self, record: logging.LogRecord) -> bool:
        if "without completing response" not in record.getMessage():
            return True
        with self.lock:
            if type(self).pending:
                type(self).pending -= 1
                return False
        return True


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _PlannedTruncation) for f in logger.filters):
        logger.addFilter(_PlannedTruncation())


# ------------------------------------------------------------------------------- app -------
class DemoApi:
    """The route handlers, over one world, one token store, the fault dice and the stats."""

    def __init__(self, world: World, token: str, faults: Faults | None = None):
        self.world = world
        self.oauth = OAuthServer(token)
        self.dice = _FaultDice(faults or Faults())
        self.stats = _Stats()
        self.last_tag_page: dict[str, list[Post]] = {}

    # ------------------------------------------------------------------- auth ------------
    def grant(self, request: Request, *, user: bool = True, scope: str | None = "read") -> Grant:
        """The caller's grant; raises for no/unknown token (500/302) or missing rights (403)."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        grant = self.oauth.tokens.get(token) if token else None
        if grant is None:
            raise _Unauthenticated()
        if (user and grant.kind != "user") or (scope and scope not in grant.scopes):
            raise _ApiError(403, "This action is unauthorized.")
        return grant

    # -------------------------------------------------------------- timelines ------------
    async def public_timeline(self, request: Request) -> Response:
        """``GET /api/v1/timelines/public`` with Pixelfed's flags, cap and Link header."""
        self.grant(request, scope=None)
        min_id, max_id = int_param(request, "min_id"), int_param(request, "max_id")
        limit = min(int_param(request, "limit", minimum=1) or 20, MAX_LIMIT)
        if not max_id:  # PHP: `if ($max == 0) { $min = 1; }`, and null == 0
            min_id = 1
        remote = "remote" in request.query_params and bool_param(request, "remote")
        local = bool_param(request, "local")
        pe = "_pe" in request.query_params
        posts = self.world.public_timeline(local=local, remote=remote, max_id=max_id,
                                           min_id=min_id, limit=limit)
        base = base_url(request)
        link = public_link(base, posts, limit=limit, pe=pe, remote=remote, local=local)
        return JSONResponse([render_status(self.world, p, base, pe) for p in posts],
                            headers={"Link": link} if link else None)

    async def tag_timeline(self, request: Request) -> Response:
        """``GET /api/v1/timelines/tag/{hashtag}``: 100-row scan, 6-month wall, no Link."""
        self.grant(request)
        name = request.path_params["hashtag"]
        min_id, max_id = int_param(request, "min_id"), int_param(request, "max_id")
        limit = min(int_param(request, "limit", minimum=1) or 20, MAX_LIMIT)
        int_param(request, "page", maximum=40)  # validated, then ignored (as in Pixelfed)
        pe = "_pe" in request.query_params
        hashtag = self.world.find_hashtag(name)
        slug = hashtag.slug if hashtag else None
        if slug and max_id and self.dice.repeats_left and slug in self.last_tag_page:
            self.dice.repeats_left -= 1
            self.stats.fault("repeat_page")
            posts = self.last_tag_page[slug]
        else:
            posts = self.world.tag_timeline(name, max_id=max_id, min_id=min_id, limit=limit,
                                            only_media=bool_param(request, "only_media", True))
        if not posts and slug and self.dice.faults.endless_pages:
            self.stats.fault("endless_pages")
            posts = self.endless_page(slug, max_id, limit)
        if slug:
            self.last_tag_page[slug] = posts
        base = base_url(request)
        return JSONResponse([render_status(self.world, p, base, pe) for p in posts])

    def endless_page(self, slug: str, max_id: int | None, limit: int) -> list[Post]:
        """Real posts of the tag again, under fresh fake ids below ``max_id`` (a fault)."""
        source = self.world.tag_timeline(slug, limit=MAX_LIMIT)
        if not source:
            return []
        start = max_id or source[0].id
        fake_ids = [start - (i + 1) * ENDLESS_STEP for i in range(limit)]
        return [replace(source[i % len(source)], id=fake)
                for i, fake in enumerate(fake_ids) if fake > 0]

    # ---------------------------------------------------------------- statuses -----------
    async def status(self, request: Request) -> Response:
        """``GET /api/v1/statuses/{id}``: 404 missing, 403 private, 400 direct."""
        self.grant(request)
        raw = request.path_params["status_id"]
        post = self.world.posts_by_id.get(int(raw)) if raw.isdigit() else None
        if post is None:
            raise _ApiError(404, "Record not found")
        if post.visibility == "private":  # the demo user follows nobody
            raise _ApiError(403, "This action is unauthorized.")
        if post.visibility == "direct":
            raise _ApiError(400, "Invalid request")
        pe = "_pe" in request.query_params
        return JSONResponse(render_status(self.world, post, base_url(request), pe))

    # ------------------------------------------------------------------ tags -------------
    async def trending(self, request: Request) -> Response:
        """Up to 20 ``{id, total, name:"#tag", hashtag, url}`` over the last 14 days."""
        self.grant(request)
        base = base_url(request)
        return JSONResponse([
            {"id": h.id, "total": n, "name": f"#{h.name}", "hashtag": h.name,
             "url": f"{base}/discover/tags/{h.slug}?src=hash"}
            for h, n in self.world.trending()])

    async def trends(self, request: Request) -> Response:
        self.grant(request, user=False, scope=None)
        return JSONResponse([])

    async def tag(self, request: Request) -> Response:
        """``GET /api/v1/tags/{tag}`` (TagsController::getHashtag; count only with _pe)."""
        self.grant(request, scope=None)
        name = request.path_params["tag"]
        base = base_url(request)
        hashtag = self.world.find_hashtag(name)
        if hashtag is None:
            return JSONResponse({"name": name, "url": f"{base}/i/web/hashtag/{name}",
                                 "history": [], "following": False})
        body: dict[str, Any] = {"name": hashtag.name,
                                "url": f"{base}/i/web/hashtag/{hashtag.slug}",
                                "history": [], "following": False}
        if "_pe" in request.query_params:
            body["count"] = self.world.tag_count(hashtag.slug)
        return JSONResponse(body)

    # -------------------------------------------------------------- instance -------------
    async def instance_v1(self, request: Request) -> Response:
        w, base = self.world, base_url(request)
        local = [a for a in w.accounts.values() if a.local]
        return JSONResponse({
            "uri": request.url.netloc, "title": "pixtag demo",
            "short_description": "A local Pixelfed-compatible instance built from labelled photos.",
            "description": "Demo instance for pixtag. Everything here is generated.",
            "email": "admin@demo.invalid", "version": VERSION,
            "urls": {"streaming_api": None}, "stats": {
                "user_count": len(local),
                "status_count": str(sum(1 for p in w.posts if w.account_of(p).local)),
                "domain_count": len({a.domain for a in w.accounts.values() if a.domain})},
            "thumbnail": f"{base}/img/pixelfed-icon-color.png", "languages": ["en"],
            "registrations": False, "approval_required": False,
            "contact_account": render_account(w, w.accounts[w.admin_id], base, False),
            "rules": [{"id": "1", "text": "Be kind."},
                      {"id": "2", "text": "Only your own photos."}],
            "configuration": {
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "video/mp4"],
                    "image_size_limit": 15000 * 1024, "image_matrix_limit": 3686400,
                    "video_size_limit": 15000 * 1024, "video_frame_rate_limit": 240,
                    "video_matrix_limit": 3686400},
                "polls": {"max_options": 4, "max_characters_per_option": 50,
                          "min_expiration": 300, "max_expiration": 2629746},
                "statuses": {"max_characters": 500, "max_media_attachments": 4,
                             "characters_reserved_per_url": 23}},
        })

    async def instance_v2(self, request: Request) -> Response:
        w, base = self.world, base_url(request)
        return JSONResponse({
            "domain": request.url.netloc, "title": "pixtag demo", "version": VERSION,
            "source_url": "https://github.com/pixelfed/pixelfed",
            "description": "A local Pixelfed-compatible instance built from labelled photos.",
            "usage": {"users": {"active_month": len(w.accounts)}},
            "thumbnail": {"url": f"{base}/img/pixelfed-icon-color.png"}, "languages": ["en"],
            "configuration": {
                "urls": {"streaming": None}, "accounts": {"max_featured_tags": 0},
                "statuses": {"max_characters": 500, "max_media_attachments": 4,
                             "characters_reserved_per_url": 23},
                "media_attachments": {  # v1 and v2 disagree on limits, as on live servers
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif"],
                    "image_size_limit": 15000 * 1000, "image_matrix_limit": 16777216,
                    "video_size_limit": 15000 * 1000, "video_frame_rate_limit": 120,
                    "video_matrix_limit": 2304000},
                "translation": {"enabled": False}},
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "contact": {"email": "admin@demo.invalid",
                        "account": render_account(w, w.accounts[w.admin_id], base, False)},
            "rules": [{"id": "1", "text": "Be kind."}],
        })

    async def nodeinfo_links(self, request: Request) -> Response:
        return JSONResponse({"links": [{
            "href": f"{base_url(request)}/api/nodeinfo/2.0.json",
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0"}]},
            headers={"Access-Control-Allow-Origin": "*"})

    async def nodeinfo(self, request: Request) -> Response:
        w = self.world
        local = [a for a in w.accounts.values() if a.local]
        return JSONResponse({
            "version": "2.0", "software": {"name": "pixelfed", "version": SOFTWARE_VERSION},
            "protocols": ["activitypub"], "services": {"inbound": [], "outbound": []},
            "usage": {"localPosts": sum(1 for p in w.posts if w.account_of(p).local),
                      "localComments": 0,
                      "users": {"total": len(local), "activeHalfyear": len(local),
                                "activeMonth": str(len(local) // 2)}},
            "openRegistrations": False,
            "metadata": {"nodeName": "pixtag demo", "software": {
                "homepage": "https://pixelfed.org", "repo": "https://github.com/pixelfed/pixelfed"},
                "config": {"features": {"timelines": {"local": True, "network": True},
                                        "mobile_apis": True, "stories": False, "video": True,
                                        "import": {"instagram": False}}}},
        }, headers={"Access-Control-Allow-Origin": "*"})

    # ----------------------------------------------------------------- oauth -------------
    async def apps(self, request: Request) -> Response:
        """``POST /api/v1/apps``: register a client (no auth)."""
        form = await form_params(request)
        for name in ("client_name", "redirect_uris"):
            if not form.get(name, "").strip():
                raise _Invalid(name, f"The {name.replace('_', ' ')} field is required.")
        app = self.oauth.register(form["client_name"].strip(), form["redirect_uris"],
                                  form.get("website"))
        return JSONResponse({"id": str(app.id), "name": app.name, "website": app.website,
                             "redirect_uri": "\n".join(app.redirect_uris),
                             "client_id": str(app.id), "client_secret": app.secret,
                             "vapid_key": None})

    async def authorize(self, request: Request) -> Response:
        """``GET /oauth/authorize``: the demo user approves at once; the code is shown (oob)
        or sent to ``redirect_uri`` with a 302."""
        params = dict(request.query_params)
        try:
            code, redirect = self.oauth.authorize(params)
        except _OAuthError as exc:
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

    async def token(self, request: Request) -> Response:
        try:
            return JSONResponse(self.oauth.exchange(await form_params(request)))
        except _OAuthError as exc:
            return exc.response()

    async def login(self, request: Request) -> Response:
        return HTMLResponse("<!DOCTYPE html><html><head><title>Login</title></head><body>"
                            "<h1>Login</h1><p>This demo instance has no login form; use a token"
                            " (PIXTAG_TOKEN) or <code>pixtag auth</code>.</p></body></html>")

    # ----------------------------------------------------------------- media -------------
    async def storage(self, request: Request) -> Response:
        """Media files (v2 and legacy v1 paths, ``_thumb`` previews); no auth."""
        path = request.url.path
        static = {AVATAR_PATH: "avatar", HEADER_PATH: "header", NO_PREVIEW_PATH: "preview"}
        if path in static:
            data, mime = _static_image(static[path])
            return Response(data, media_type=mime)
        hit = self.world.media_by_path.get(path)
        if hit is None:
            raise StarletteHTTPException(404, "Not Found")
        media = self.world.media[hit[0]]
        data = self.world.thumb_bytes(media) if hit[1] else self.world.media_bytes(media)
        headers = {"Cache-Control": "public, max-age=31536000"}
        f = self.dice.faults
        if self.dice.roll(f.corrupt_media_rate):
            self.stats.fault("corrupt_media")
            data = _garble(data, self.dice.rng)
        if self.dice.roll(f.truncate_media_rate):
            self.stats.fault("truncate_media")
            return _TruncatedResponse(data, media_type=media.mime, headers=headers)
        return Response(data, media_type=media.mime, headers=headers)

    # --------------------------------------------------------------- control -------------
    async def demo_stats(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.stats.reset()
        return JSONResponse(self.stats.snapshot())

    async def demo_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                data = json.loads(await request.body() or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("the body must be a JSON object of fault knobs")
                self.dice.set(Faults.from_dict(data))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"message": str(exc), "errors": {"faults": [str(exc)]}},
                                    status_code=422)
        return JSONResponse(self.dice.faults.to_dict())

    async def demo_world(self, request: Request) -> Response:
        return JSONResponse(self.world.summary())

    # ---------------------------------------------------------------- routing ------------
    def routes(self) -> list[tuple[str, Callable[[Request], Any], list[str]]]:
        get = ["GET"]
        return [
            ("/api/v1/timelines/public", self.public_timeline, get),
            ("/api/v1/timelines/tag/{hashtag}", self.tag_timeline, get),
            ("/api/v1/statuses/{status_id}", self.status, get),
            ("/api/v1.1/discover/posts/hashtags", self.trending, get),
            ("/api/pixelfed/v1/discover/posts/hashtags", self.trending, get),
            ("/api/v1/trends", self.trends, get),
            ("/api/v1/tags/{tag}", self.tag, get),
            ("/api/v1/instance", self.instance_v1, get),
            ("/api/v2/instance", self.instance_v2, get),
            ("/.well-known/nodeinfo", self.nodeinfo_links, get),
            ("/api/nodeinfo/2.0.json", self.nodeinfo, get),
            ("/api/v1/apps", self.apps, ["POST"]),
            ("/oauth/authorize", self.authorize, get),
            ("/oauth/token", self.token, ["POST"]),
            ("/login", self.login, get),
            ("/storage/{path:path}", self.storage, get),
            ("/_demo/stats", self.demo_stats, ["GET", "DELETE"]),
            ("/_demo/faults", self.demo_faults, ["GET", "PUT"]),
            ("/_demo/world", self.demo_world, get),
        ]


def public_link(base: str, posts: list[Post], *, limit: int, pe: bool, remote: bool,
                local: bool) -> str | None:
    """The public timeline's Link header, built as Pixelfed does (one-item-page quirk included:
    ``min == max`` drops the min, so a full one-item page links ``max_id=`` empty)."""
    if not posts:
        return None
    url = (f"{base}/api/v1/timelines/public?limit={limit}&" + ("_pe=1&" if pe else "")
           + ("remote=1&" if remote else "") + ("local=1&" if local else ""))
    ids = [p.id for p in posts]
    low: int | None = min(ids)
    high = max(ids)
    if low == high:
        low = None
    link = None
    if len(posts) >= limit:
        link = f'<{url}max_id={low if low is not None else ""}>; rel="next"'
    if low is not None:
        link = f'<{url}min_id={high}>; rel="prev"'
        link = f'<{url}max_id={low}>; rel="next",{link}'
    return link


# ----------------------------------------------------------------------- middleware --------
class _Instrument:
    """Counts every request and, on API and media routes, injects the configured faults."""

    def __init__(self, app: ASGIApp, api: DemoApi):
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        kind = route_kind(path)
        stats = self.api.stats
        stats.request(kind, api=path.startswith("/api/"))

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.status(message["status"])
            await send(message)

        fault = await self._fault(kind) if kind in API_KINDS or kind == "media" else None
        if fault is not None:
            await fault(scope, receive, counted_send)
            return
        await self.app(scope, receive, counted_send)

    async def _fault(self, kind: str) -> Response | None:
        dice, stats = self.api.dice, self.api.stats
        f = dice.faults
        if dice.roll(f.slow_rate):
            stats.fault("slow")
            await asyncio.sleep(f.slow_seconds)
        if dice.roll(f.rate_429):
            stats.fault("429")
            headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            return HTMLResponse(_CLOUDFLARE_429, status_code=429, headers=headers)
        if dice.roll(f.rate_5xx):
            code = dice.rng.choice((500, 502, 503))
            stats.fault(str(code))
            if code == 500:
                return JSONResponse({"error": "Server Error"}, status_code=500)
            return HTMLResponse(_NGINX_ERROR.format(code=code, text=_REASONS[code]),
                                status_code=code)
        if kind != "media" and dice.roll(f.html_error_rate):
            stats.fault("html")
            return HTMLResponse(_HTML_CHALLENGE)
        if kind != "media" and dice.roll(f.malformed_json_rate):
            stats.fault("malformed_json")
            return Response('[{"id":"1","content":"<p>cut', media_type="application/json")
        return None


_CLOUDFLARE_429 = ("<!DOCTYPE html><html><head><title>Access denied | rate limited</title></head>"
                   "<body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>")
_NGINX_ERROR = ("<html><head><title>{code} {text}</title></head><body><center><h1>{code} {text}"
                "</h1></center><hr><center>nginx</center></body></html>")
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}
_HTML_CHALLENGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                   "<p>Checking your browser before accessing the site.</p></body></html>")


def create_app(world: World, token: str = DEFAULT_TOKEN, faults: Faults | None = None) -> FastAPI:
    """The FastAPI app serving ``world``; ``token`` is the demo user's bearer token."""
    if not token:
        raise DemoError("the demo instance needs a non-empty token")
    api = DemoApi(world, token, faults)
    app = FastAPI(title="pixtag demo instance", docs_url=None, redoc_url=None, openapi_url=None)
    for path, endpoint, methods in api.routes():
        app.add_api_route(path, endpoint, methods=methods)
    app.add_exception_handler(_Unauthenticated, lambda r, e: _unauthenticated(r))
    app.add_exception_handler(
        _ApiError, lambda r, e: JSONResponse({"error": e.message}, status_code=e.status))
    app.add_exception_handler(
        _Invalid, lambda r, e: JSONResponse({"message": e.message, "errors": {e.name: [e.message]}},
                                            status_code=422))
    app.add_exception_handler(StarletteHTTPException, _not_found)
    app.add_middleware(_Instrument, api=api)
    app.state.api = api
    _install_log_filter()
    return app


# --------------------------------------------------------------------------- running -------
def bind_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {HOST}:{port} ({exc.strerror}); "
                        "pick another port with --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            loop="asyncio", timeout_graceful_shutdown=2, timeout_keep_alive=5)
    return uvicorn.Server(config)


class DemoInstance:
    """The demo instance in a background thread, for tests, benchmarks and the demo.

    ``with DemoInstance(photos) as demo: ... demo.url ... demo.world``. Port 0 picks a free
    port; leaving the block stops the server and frees the port. Pass ``world`` to reuse an
    already built world (tests build it once).
    """

    def __init__(self, photos: Path | None = None, seed: int = 0, token: str = DEFAULT_TOKEN,
                 port: int = 0, now: datetime | None = None, faults: Faults | None = None,
                 world: World | None = None, others: Path | None = None):
        if world is None and photos is None:
            raise DemoError("DemoInstance needs a photo folder or a built world")
        self._photos, self._seed, self._now = photos, seed, now or DEFAULT_NOW
        self._others = others
        self.token, self.port = token, port
        self._faults = faults
        self.world = world
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api(self) -> DemoApi:
        if self.app is None:
            raise DemoError("the demo instance is not running")
        return self.app.state.api

    @property
    def faults(self) -> Faults:
        return self.api.dice.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.api.dice.set(value)

    def stats(self) -> dict[str, Any]:
        return self.api.stats.snapshot()

    def start(self, timeout: float = 20.0) -> DemoInstance:
        if self.world is None:
            self.world = build_world(Path(self._photos or "."), self._seed, self._now, self._others)
        self.app = create_app(self.world, self.token, self._faults)
        self._sock = bind_socket(self.port)
        self.port = self._sock.getsockname()[1]
        self._server = _server(self.app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"demo-instance-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise DemoError(f"the demo instance did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> DemoInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------- CLI -------
def default_photos() -> Path:
    """$PIXTAG_PHOTOS, else ../shared/data/photos5 next to the repository."""
    env = os.environ.get("PIXTAG_PHOTOS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "photos5"


def default_others() -> Path | None:
    """$PIXTAG_OTHERS (empty: none), else ../shared/data/others next to the repository when it
    exists: everyday photos of none of the classes, most of a real timeline."""
    env = os.environ.get("PIXTAG_OTHERS")
    if env is not None:
        return Path(env) if env else None
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "others"
    return path if path.is_dir() else None


def _parse_now(text: str | None) -> datetime:
    if not text:
        return DEFAULT_NOW
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DemoError(f"--now must be an ISO 8601 time such as 2026-11-01T00:00:00Z, "
                        f"not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _token_hint(source: click.core.ParameterSource | None, token: str) -> str:
    if source == click.core.ParameterSource.ENVIRONMENT:
        return 'export PIXTAG_TOKEN="$PIXTAG_DEMO_TOKEN"   # the token is in PIXTAG_DEMO_TOKEN'
    if source == click.core.ParameterSource.COMMANDLINE:
        return "export PIXTAG_TOKEN=<the value you passed with --token>"
    return (f"export PIXTAG_TOKEN={token}   # the default demo token "
            "(set PIXTAG_DEMO_TOKEN or --token to change it)")


_rate = click.FloatRange(0.0, 1.0)


@click.command("demo-instance")
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Labelled photos CLASS/*.jpg (default: $PIXTAG_PHOTOS or "
                   "../shared/data/photos5).")
@click.option("--others", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Everyday photos SUBJECT/*.jpg of none of the classes, served as most of the "
                   "timeline (default: $PIXTAG_OTHERS or ../shared/data/others when it exists).")
@click.option("--no-others", is_flag=True, help="Serve the labelled photos only.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option("--token", envvar="PIXTAG_DEMO_TOKEN", default=DEFAULT_TOKEN, show_envvar=True,
              help="Bearer token of the demo user.")
@click.option("--now", "now_text", default=None, metavar="ISO",
              help="The instance's clock (default 2026-11-01T00:00:00Z, fixed).")
@click.option("--rate-429", type=_rate, default=0.0, help="Share of requests answered 429.")
@click.option("--retry-after", type=click.IntRange(0), default=1, show_default=True,
              help="Retry-After sent with a 429.")
@click.option("--rate-5xx", type=_rate, default=0.0, help="Share answered 500/502/503.")
@click.option("--slow-rate", type=_rate, default=0.0, help="Share of slow responses.")
@click.option("--slow-seconds", type=click.FloatRange(0, 120), default=1.0, show_default=True)
@click.option("--truncate-media-rate", type=_rate, default=0.0, help="Share of cut media bodies.")
@click.option("--corrupt-media-rate", type=_rate, default=0.0, help="Share of garbled media.")
@click.option("--fault-seed", type=int, default=0, show_default=True)
@click.pass_context
def demo_instance_cmd(ctx: click.Context, photos: Path | None, others: Path | None,
                      no_others: bool, port: int, seed: int, token: str,
                      now_text: str | None, rate_429: float, retry_after: int, rate_5xx: float,
                      slow_rate: float, slow_seconds: float, truncate_media_rate: float,
                      corrupt_media_rate: float, fault_seed: int) -> None:
    """Serve a local Pixelfed-compatible instance built from a folder of labelled photos."""
    if not token:
        raise DemoError("the token must not be empty")
    faults = Faults(seed=fault_seed, rate_429=rate_429, retry_after=retry_after,
                    rate_5xx=rate_5xx, slow_rate=slow_rate, slow_seconds=slow_seconds,
                    truncate_media_rate=truncate_media_rate,
                    corrupt_media_rate=corrupt_media_rate)
    now = _parse_now(now_text)
    sock = bind_socket(port)  # fail fast when the port is taken
    try:
        others = None if no_others else (others or default_others())
        if others is not None and not others.is_dir():
            raise DemoError(f"--others {others} is not a folder (expected SUBJECT/*.jpg)")
        world = build_world(photos or default_photos(), seed, now, others)
        url = f"http://{HOST}:{sock.getsockname()[1]}"
        click.echo(f"pixtag demo instance on {url}  (seed {seed}, {len(world.posts)} posts, "
                   f"classes: {', '.join(world.classes)}; {len(world.other_images)} everyday "
                   f"photos of other subjects)")
        click.echo("Use it with:")
        click.echo(f"  export PIXTAG_INSTANCE_URL={url} PIXTAG_ALLOW_PRIVATE_HOSTS={HOST}")
        click.echo(f"  {_token_hint(ctx.get_parameter_source('token'), token)}")
        click.echo("Press Ctrl-C to stop.")
        _server(create_app(world, token, faults)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        sock.close()
    click.echo("demo instance stopped")
