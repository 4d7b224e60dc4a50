"""``pixtag auth``: get a user token with the OAuth authorization-code flow and store it.

1. register an app (``POST /api/v1/apps``, redirect ``urn:ietf:wg:oauth:2.0:oob``, scope read;
   ``--bot``: read write, for the bot account);
2. print the authorization URL; the user opens it, approves, and pastes the code shown;
3. exchange the code (``POST /oauth/token``), check the token on a read endpoint, and store it
   in the credentials file (mode 0600) where the settings find it for that instance.

The token and the app secret are registered as secrets: they never appear in logs or output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError
from pixtag.sources.http import AddressPolicy, HTTPError, HttpSession

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = "read"
BOT_SCOPES = "read write"  # the bot account (``pixtag auth --bot``) reads notifications and posts replies


class AuthFlowError(PixtagError):
    """The instance did not complete the OAuth flow."""


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"App(client_id={self.client_id!r}, client_secret='***')"


def _session(settings: Settings, base_url: str) -> HttpSession:
    host = (urlsplit(base_url).hostname or "").lower()
    return HttpSession(
        policy=AddressPolicy({host}, {host, *(h.lower() for h in settings.allow_private_hosts)}),
        rate=settings.request_rate, timeout=settings.request_timeout, max_retries=2,
        max_retry_after=settings.max_retry_after, max_bytes=1_000_000,
    )


def _post_json(http: HttpSession, url: str, data: dict[str, str]) -> dict[str, object]:
    try:
        fetched = http.request("POST", url, data=data, auth=False, ok_statuses=(200,))
    except HTTPError as exc:
        raise AuthFlowError(f"OAuth step failed: {exc}") from None
    try:
        body = json.loads(fetched.content)
    except json.JSONDecodeError:
        raise AuthFlowError(f"POST {urlsplit(url).path}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise AuthFlowError(f"POST {urlsplit(url).path}: unexpected answer")
    return body


def register_app(http: HttpSession, base_url: str, client_name: str = "pixtag", scopes: str = SCOPES) -> App:
    body = _post_json(http, f"{base_url}/api/v1/apps", {
        "client_name": client_name, "redirect_uris": OOB, "scopes": scopes,
        "website": "https://github.com/pixtag/pixtag",
    })
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not client_id or not secret:
        raise AuthFlowError("the instance did not return an app id and secret "
                            "(is OAUTH_ENABLED on? users can also create a client under "
                            "Settings → Developers)")
    logs.register_secret(str(secret))
    return App(str(client_id), str(secret))


def authorize_url(base_url: str, app: App, scopes: str = SCOPES) -> str:
    query = urlencode({"client_id": app.client_id, "redirect_uri": OOB,
                       "response_type": "code", "scope": scopes})
    return f"{base_url}/oauth/authorize?{query}"


def exchange_code(http: HttpSession, base_url: str, app: App, code: str, scopes: str = SCOPES) -> str:
    body = _post_json(http, f"{base_url}/oauth/token", {
        "grant_type": "authorization_code", "code": code.strip(), "client_id": app.client_id,
        "client_secret": app.client_secret, "redirect_uri": OOB, "scope": scopes,
    })
    token = body.get("access_token")
    if not token:
        raise AuthFlowError("the instance did not return an access token (wrong or used code?)")
    logs.register_secret(str(token))
    return str(token)


def check_token(settings: Settings, base_url: str, token: str) -> None:
    """A read call with the new token (the hashtag timeline needs a user token with read)."""
    from pixtag.sources.pixelfed import Client

    with Client(settings, base_url, token=token) as client:
        client.hashtag_timeline("pixelfed", limit=1)


def check_bot_token(settings: Settings, base_url: str, token: str) -> str:
    """The bot token reads the account it belongs to (and its notifications); returns its acct."""
    from pixtag.sources.bot_api import BotClient

    with BotClient(settings, base_url, token=token) as client:
        me = client.me()
        client.notifications(limit=1)
    return me.acct or me.username
