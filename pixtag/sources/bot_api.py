"""The bot account's side of the instance API (``pixtag bot``, see ../shared/pixelfed-api.md §7).

:class:`BotClient` is the read client (:class:`pixtag.sources.pixelfed.Client`) with the bot's own
token (``bot_token``, read and write scopes) and what a bot that answers mentions needs:

* its notifications (``GET /api/v1/notifications``, one page at a time: the paging is the
  caller's, :mod:`pixtag.bot.inbox`), its own account, a status's context, one status;
* a reply (``POST /api/v1/statuses`` with ``in_reply_to_id``, a visibility and an
  ``Idempotency-Key``: a retry of a post the instance already made is refused as a duplicate,
  :class:`DuplicatePost`), and Pixelfed's own direct messages (``/api/v1.1/direct``);
* media downloads through the SSRF guard: any host (remote accounts' media is hotlinked from
  their servers), but only public addresses, except the instance's own host and the hosts of
  ``allow_private_hosts``; the body is capped while it streams.

Every call goes through the HTTP manners of :mod:`pixtag.sources.http` (the instance's shared
throttle, retries honouring Retry-After, timeouts). The bot never follows, likes or boosts: there
is no method for it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError, field_validator

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.sources.http import AddressPolicy, HTTPError, HttpSession
from pixtag.sources.pixelfed import (
    PAGE_LIMIT,
    Account,
    AuthError,
    BadResponse,
    Client,
    PixelfedError,
    Status,
    _first_error,
    _Model,
    parse_datetime,
)

log = logs.get_logger(__name__)

DM_LIMIT = 500  # Pixelfed's direct messages: 1-500 characters


class DuplicatePost(PixelfedError):
    """The instance refused a post whose ``Idempotency-Key`` it has seen: the post exists."""


class Gone(PixelfedError):
    """The status is deleted, or not visible to the bot (HTTP 404)."""


class Refused(PixelfedError):
    """The instance refused the post for good (validation, comments disabled): retrying cannot help."""


class Notification(_Model):
    """One notification. ``status`` is ``None`` for kinds without one or one that did not parse."""

    id: str
    type: str = ""
    created_at: datetime | None = None
    account: Account | None = None
    status: Status | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        text = str(v if v is not None else "").strip()
        if not text.isdigit():
            raise ValueError(f"notification id {text[:20]!r} is not a number")
        return text

    @field_validator("created_at", mode="before")
    @classmethod
    def _created(cls, v: Any) -> datetime | None:
        return parse_datetime(v)

    @property
    def number(self) -> int:
        return int(self.id)

    @classmethod
    def from_api(cls, data: Any) -> Notification:
        if not isinstance(data, dict):
            raise ValueError(f"a notification must be an object, not {type(data).__name__}")
        account = data.get("account")
        status: Status | None = None
        if isinstance(data.get("status"), dict):
            try:
                status = Status.from_api(data["status"])
            except (ValidationError, ValueError, TypeError) as exc:
                log.warning("notification %s: its status does not parse (%s)", data.get("id"), _first_error(exc))
        return cls(id=data.get("id"), type=str(data.get("type") or ""), created_at=data.get("created_at"),
                   account=Account(**account) if isinstance(account, dict) else None, status=status)


def media_policy(settings: Settings, instance_host: str) -> AddressPolicy:
    """Media may come from any host, but only from public addresses (the instance's own host
    and ``allow_private_hosts`` excepted; link-local, e.g. cloud metadata, never)."""
    return AddressPolicy(any_host=True, private_ok_hosts={
        instance_host, *(h.lower() for h in settings.allow_private_hosts)})


class BotClient(Client):
    """The instance as the bot account sees it (``bot_token``)."""

    def __init__(self, settings: Settings, instance_url: str | None = None, *, token: str | None = None):
        if instance_url or settings.instance_url:
            source = settings if not instance_url else settings.model_copy(update={"instance_url": instance_url})
            token = token or source.bot_token_value()
        if not token:
            raise AuthError("no bot token: set PIXTAG_BOT_TOKEN (a user token of the bot account with the read "
                            "and write scopes) or run `pixtag auth --bot`")
        super().__init__(settings, instance_url, token=token)
        host = next(iter(self.policy.allowed_hosts))
        self.media = HttpSession(
            policy=media_policy(settings, host), rate=None, timeout=settings.request_timeout,
            max_retries=min(settings.max_retries, 2), max_retry_after=settings.max_retry_after,
            max_bytes=settings.max_image_bytes, backoff_initial=settings.retry_backoff,
            backoff_max=settings.retry_backoff_max)

    def __repr__(self) -> str:
        return f"BotClient({self.base_url!r}, token={'set' if self._has_token else 'none'})"

    def close(self) -> None:
        self.media.close()
        super().close()

    # ----------------------------------------------------------------------------- reads ----
    def get_json(self, path: str, params: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        """:meth:`Client.get_json`, naming the bot's token when the instance refuses it."""
        try:
            return super().get_json(path, params, auth=auth)
        except AuthError as exc:
            raise AuthError(str(exc).replace("PIXTAG_TOKEN", "PIXTAG_BOT_TOKEN"), status=exc.status) from None

    def me(self) -> Account:
        """The bot's own account (``verify_credentials``)."""
        path = "/api/v1/accounts/verify_credentials"
        return Account(**self._expect(self.get_json(path), dict, path))

    def notifications(self, *, min_id: int | None = None, max_id: int | None = None,
                      limit: int = PAGE_LIMIT, types: tuple[str, ...] = ("mention",)) -> list[Notification]:
        """One page, newest first, as the instance serves it (``min_id``: the *newest* page above
        it, not the one just above; see :mod:`pixtag.bot.inbox`). Entries that do not parse are
        skipped and counted in :attr:`unparseable`."""
        params: dict[str, Any] = {"limit": min(limit, PAGE_LIMIT)}
        if types:
            params["types[]"] = list(types)
        if max_id:
            params["max_id"] = max_id
        elif min_id:
            params["min_id"] = min_id
        path = "/api/v1/notifications"
        data = self._expect(self.get_json(path, params), list, path)
        return self._parse_many(data, Notification.from_api, path)

    def find_status(self, status_id: str) -> Status | None:
        """A status, or ``None`` when it is deleted or hidden from the bot (404, 403)."""
        try:
            return self.status(status_id, pixelfed_entity=False)
        except HTTPError as exc:
            if exc.status in (403, 404, 410):
                return None
            raise

    def context(self, status_id: str) -> tuple[list[Status], list[Status]]:
        """``ancestors`` (Pixelfed: the parent only) and ``descendants`` (direct replies, at most
        20); both empty when the status is gone or hidden (404)."""
        path = f"/api/v1/statuses/{quote(str(status_id), safe='')}/context"
        try:
            data = self._expect(self.get_json(path), dict, path)
        except HTTPError as exc:
            if exc.status in (403, 404, 410):
                return [], []
            raise
        return (self._parse_many(data.get("ancestors") or [], Status.from_api, path),
                self._parse_many(data.get("descendants") or [], Status.from_api, path))

    def dm_thread(self, profile_id: str) -> list[dict[str, Any]]:
        """The latest direct messages between the bot and ``profile_id`` (newest first)."""
        path = "/api/v1.1/direct/thread"
        try:
            data = self._expect(self.get_json(path, {"pid": profile_id}), dict, path)
        except HTTPError as exc:
            if exc.status in (403, 404):
                return []
            raise
        messages = data.get("messages") or []
        return [m for m in messages if isinstance(m, dict)]

    # ---------------------------------------------------------------------------- writes ----
    def reply(self, text: str, in_reply_to_id: str, *, visibility: str, idempotency_key: str) -> Status:
        """Comment on a status. Raises :class:`DuplicatePost` when the instance already made the
        post for this key, :class:`Gone` when the status is gone or hidden, :class:`Refused`
        when it refuses the post (comments disabled, validation)."""
        data = self._post("/api/v1/statuses", {"status": text, "in_reply_to_id": in_reply_to_id,
                                               "visibility": visibility},
                          {"Idempotency-Key": idempotency_key})
        return Status.from_api(self._expect(data, dict, "/api/v1/statuses"))

    def send_dm(self, to_id: str, message: str) -> dict[str, Any]:
        """A direct message through Pixelfed's own API (a message request unless the person follows
        the bot or accepts DMs); answers the message (``id``, ``reportId``, ``hidden``)."""
        if not 1 <= len(message) <= DM_LIMIT:
            raise Refused(f"a direct message has 1-{DM_LIMIT} characters, not {len(message)}")
        path = "/api/v1.1/direct/thread/send"
        return self._expect(self._post(path, {"to_id": to_id, "message": message, "type": "text"}), dict, path)

    def _post(self, path: str, data: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        try:
            fetched = self.http.request("POST", f"{self.base_url}{path}", data=data, headers=headers,
                                        ok_statuses=(200, 201, 202, 400, 401, 403, 404, 410, 422))
        except HTTPError as exc:
            if exc.status == 500 and "Unauthenticated" in str(exc):
                raise AuthError(f"POST {path}: the instance says Unauthenticated (HTTP 500); check "
                                "PIXTAG_BOT_TOKEN", status=500) from None
            raise
        body = _json_or_none(fetched.content)
        message = _error_message(body) or fetched.content[:200].decode("utf-8", "replace")
        status = fetched.status
        if status < 300:
            if body is None:
                raise BadResponse(f"POST {path}: the answer is not JSON", status=status)
            return body
        if status == 400 and "idempotency" in message.lower():
            raise DuplicatePost(f"POST {path}: {message}", status=status)
        if status in (401, 403):
            raise AuthError(f"POST {path}: the instance refused the bot's token (HTTP {status}: {message}); "
                            "PIXTAG_BOT_TOKEN needs the read and write scopes", status=status)
        if status in (404, 410):
            raise Gone(f"POST {path}: the status is gone or hidden from the bot (HTTP {status})", status=status)
        raise Refused(f"POST {path}: refused (HTTP {status}: {message[:200]})", status=status)

    # ----------------------------------------------------------------------------- media ----
    def download(self, url: str, max_bytes: int) -> bytes:
        """A media file's bytes, through the SSRF guard, at most ``max_bytes`` (else
        :class:`~pixtag.sources.http.ResponseTooLarge`); nothing is written anywhere."""
        return self.media.request("GET", url, auth=False, throttle=False, max_bytes=max_bytes,
                                  accept="image/*,*/*;q=0.5").content


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")
    if isinstance(body, str):
        return body
    return ""
