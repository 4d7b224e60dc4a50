"""OAuth2 as Laravel Passport does it: apps, authorization codes, tokens, scopes, error shapes."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi.responses import JSONResponse

OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
TOKEN_LIFETIME_S = 365 * 24 * 3600  # OAUTH_TOKEN_DAYS
KNOWN_SCOPES = frozenset({"read", "write", "follow", "push", "admin:read", "admin:write"})
DEFAULT_SCOPES = "read write follow"


@dataclass(frozen=True)
class Grant:
    """What a bearer token stands for: a user or an app only. ``account_id`` is the user's
    account; None is the demo user (``--token`` and the OAuth flow), whose account the live
    state makes on its first write (:meth:`pixtag_demo.live.store.Live.demo_account`)."""

    kind: str  # user | app
    scopes: frozenset[str]
    client_id: str | None = None
    account_id: int | None = None


@dataclass
class OAuthApp:
    id: int
    name: str
    redirect_uris: tuple[str, ...]
    secret: str
    website: str | None = None


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]


class OAuthError(Exception):
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
        self.codes: dict[str, AuthCode] = {}
        self._lock = threading.Lock()

    def add_token(self, token: str, grant: Grant) -> None:
        """Registers a token minted outside the OAuth flows (the bot's, the control endpoint's)."""
        with self._lock:
            self.tokens[token] = grant

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
            raise OAuthError("invalid_client")
        return app

    def authorize(self, params: Mapping[str, str]) -> tuple[str, str]:
        """Check an authorization request; returns (code, redirect_uri)."""
        app = self.client(params.get("client_id", ""))
        redirect = params.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris
                                                  else "")
        if redirect not in app.redirect_uris:
            raise OAuthError("invalid_client", "redirect_uri does not match the app")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type")
        scopes = parse_scopes(params.get("scope"))
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.codes[code] = AuthCode(str(app.id), redirect, scopes)
        return code, redirect

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /oauth/token`` for the authorization_code and client_credentials grants."""
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "client_credentials"):
            raise OAuthError("unsupported_grant_type")
        app = self.client(form.get("client_id", ""), form.get("client_secret", ""))
        if grant_type == "client_credentials":
            return self._issue(Grant("app", parse_scopes(form.get("scope") or "read"),
                                     str(app.id)))
        with self._lock:
            code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != str(app.id):
            raise OAuthError("invalid_grant", "Authorization code has expired or was used")
        if form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
            raise OAuthError("invalid_request", "Check the `redirect_uri` parameter")
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
        raise OAuthError("invalid_scope", "Check the `scope` parameter")
    return scopes

