"""Pixelfed API client and typed models (see ../shared/pixelfed-api.md).

Lenient on input, strict on output: every variant that live servers send (numbers as strings,
booleans as 0/1 or null, capitalised media types, hashtags only in the HTML content, several
date formats) is normalised into the models below; an entity that cannot be parsed is counted
in :attr:`Client.unparseable` with its reason instead of crashing a scrape.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.sources.http import AddressPolicy, Fetched, HTTPError, HttpSession, RateLimiter, TransientError

log = logs.get_logger(__name__)

PAGE_LIMIT = 40  # Pixelfed silently caps `limit` at 40
SNOWFLAKE_EPOCH_MS = 1549756800000
TAG_WALL = timedelta(days=182)  # the hashtag timeline returns [] past ~6 months


class PixelfedError(HTTPError):
    """The instance answered, but not with what the API promises."""


class AuthError(PixelfedError):
    """No token, a wrong or expired token, or a token without the needed scope."""


class BadResponse(PixelfedError):
    """Malformed JSON, an HTML error page or a JSON shape that is not the expected one."""


class TransientBadResponse(BadResponse, TransientError):
    """A body that is not JSON at all (an HTML challenge or error page, JSON cut short) under a
    200: proxies and CDNs serve these for a moment, so it is asked for again, a bounded number
    of times; well-formed JSON of the wrong shape is not (it will not change)."""


# ---------------------------------------------------------------------------- models ------
def _to_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    return int(float(value))


def _lenient_int(value: Any) -> int | None:
    """An optional number: ``None`` for anything that is not one (a limit the client can do without)."""
    try:
        return _to_int(value)
    except (TypeError, ValueError):
        return None


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 with 0-6 fractional digits, ``Z`` or an offset; naive times are UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Account(_Model):
    id: str
    username: str = ""
    acct: str = ""
    display_name: str | None = None
    locked: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    bot: bool | None = None
    note: str = ""
    url: str | None = None
    fields: tuple[str, ...] = Field(default=(), description="Profile fields as 'name value' (value may be HTML).")

    _bools = field_validator("locked", "discoverable", "indexable", "bot", mode="before")(
        lambda v: _to_bool(v)
    )

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list | tuple):
            return ()
        return tuple(f"{f.get('name') or ''} {f.get('value') or ''}".strip() if isinstance(f, dict) else str(f)
                     for f in v)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        return str(v)

    @field_validator("note", mode="before")
    @classmethod
    def _note(cls, v: Any) -> str:
        return v or ""


class License(_Model):
    id: int | None = None
    title: str | None = None
    url: str | None = None


class MediaAttachment(_Model):
    id: str
    type: str = "unknown"
    url: str | None = None
    preview_url: str | None = None
    description: str | None = None
    blurhash: str | None = None
    width: int | None = None
    height: int | None = None
    mime: str | None = None
    is_nsfw: bool | None = None
    license: License | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        return str(v)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str:
        return str(v or "unknown").lower()

    @field_validator("is_nsfw", mode="before")
    @classmethod
    def _nsfw(cls, v: Any) -> bool | None:
        return _to_bool(v)

    @field_validator("width", "height", mode="before")
    @classmethod
    def _dims(cls, v: Any) -> int | None:
        return _to_int(v)

    @field_validator("license", mode="before")
    @classmethod
    def _license(cls, v: Any) -> Any:
        return v if isinstance(v, dict) else None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> MediaAttachment:
        meta = data.get("meta") or {}
        original = meta.get("original") if isinstance(meta, dict) else None
        original = original if isinstance(original, dict) else {}
        return cls(**{**data, "width": original.get("width"), "height": original.get("height")})


class MentionRef(_Model):
    """An account a status mentions (``mentions[]``)."""

    id: str
    username: str = ""
    acct: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        return str(v)


class Status(_Model):
    id: str
    created_at: datetime | None = None
    url: str | None = None
    uri: str | None = None
    content: str = ""
    content_text: str | None = None
    sensitive: bool | None = None
    spoiler_text: str = ""
    visibility: str = "unknown"
    account: Account
    media_attachments: tuple[MediaAttachment, ...] = ()
    tag_names: tuple[str, ...] = Field(default=(), description="Tag names from `tags`.")
    pf_type: str | None = None
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    mentions: tuple[MentionRef, ...] = ()

    @field_validator("in_reply_to_id", "in_reply_to_account_id", mode="before")
    @classmethod
    def _optional_id(cls, v: Any) -> str | None:
        return None if v in (None, "", 0, "0") else str(v)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if v in (None, ""):
            raise ValueError("missing id")
        return str(v)

    @field_validator("sensitive", mode="before")
    @classmethod
    def _sensitive(cls, v: Any) -> bool | None:
        return _to_bool(v)

    @field_validator("created_at", mode="before")
    @classmethod
    def _created(cls, v: Any) -> datetime | None:
        return parse_datetime(v)

    @field_validator("content", "spoiler_text", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        return v or ""

    @field_validator("visibility", mode="before")
    @classmethod
    def _vis(cls, v: Any) -> str:
        return str(v or "unknown").lower()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Status:
        if not isinstance(data, dict):
            raise ValueError(f"a status must be an object, not {type(data).__name__}")
        account = data.get("account")
        if not isinstance(account, dict):
            raise ValueError("status has no account object")
        media = data.get("media_attachments") or []
        if not isinstance(media, list):
            raise ValueError("media_attachments is not a list")
        tags = data.get("tags") or []
        names = tuple(
            str(t.get("name")) for t in tags if isinstance(t, dict) and t.get("name")
        ) if isinstance(tags, list) else ()
        mentions = data.get("mentions") if isinstance(data.get("mentions"), list) else []
        return cls(
            **{k: v for k, v in data.items() if k not in ("account", "media_attachments", "tags", "mentions")},
            account=Account(**account),
            media_attachments=tuple(MediaAttachment.from_api(m) for m in media if isinstance(m, dict)),
            tag_names=names,
            mentions=tuple(MentionRef(**m) for m in mentions if isinstance(m, dict) and m.get("id") is not None),
        )

    @property
    def hashtags(self) -> list[str]:
        """The post's hashtags, from `tags` and the HTML content, in the author's spelling.

        Servers lowercase ``tags[].name`` but the content keeps ``#CatsOfPixelfed``, and some
        send ``tags: []`` while the content has the links; so both are merged, case-insensitively,
        preferring the content's spelling.
        """
        seen: dict[str, str] = {}
        for name in hashtags_in_html(self.content):
            seen.setdefault(name.lower(), name)
        for name in self.tag_names:
            seen.setdefault(name.lower(), name)
        return list(seen.values())

    @property
    def snowflake_time(self) -> datetime | None:
        return snowflake_to_datetime(self.id)


class TrendingTag(_Model):
    name: str
    total: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> TrendingTag:
        name = str(data.get("hashtag") or data.get("name") or "").lstrip("#")
        if not name:
            raise ValueError("trending entry has no name")
        return cls(name=name, total=_to_int(data.get("total")) or 0)


class InstanceInfo(_Model):
    uri: str = ""
    title: str = ""
    version: str = ""
    status_count: int | None = None
    user_count: int | None = None
    image_size_limit: int | None = None
    image_matrix_limit: int | None = None
    supported_mime_types: tuple[str, ...] = ()
    max_media_attachments: int | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> InstanceInfo:
        stats = data.get("stats") or {}
        media = ((data.get("configuration") or {}).get("media_attachments")) or {}
        statuses = ((data.get("configuration") or {}).get("statuses")) or {}
        return cls(
            uri=str(data.get("uri") or ""),
            title=str(data.get("title") or ""),
            version=str(data.get("version") or ""),
            status_count=_to_int(stats.get("status_count")),
            user_count=_to_int(stats.get("user_count")),
            image_size_limit=_to_int(media.get("image_size_limit")),
            image_matrix_limit=_lenient_int(media.get("image_matrix_limit")),
            supported_mime_types=tuple(media.get("supported_mime_types") or ()),
            max_media_attachments=_lenient_int(statuses.get("max_media_attachments")),
        )


class _HashtagParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self._depth = 0
        self._text: list[str] = []
        self._title: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            a = dict(attrs)
            classes = (a.get("class") or "").split()
            href = a.get("href") or ""
            if "hashtag" in classes or "/discover/tags/" in href or "/tags/" in href:
                self._depth, self._text, self._title = 1, [], a.get("title")
        elif self._depth:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        if tag == "a":
            text = "".join(self._text).strip()
            name = text if text.startswith("#") else (self._title or text)
            name = name.strip().lstrip("#")
            if name:
                self.tags.append(name)
            self._depth = 0
        else:
            self._depth = max(1, self._depth - 1)

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


_PLAIN_TAG = re.compile(r"(?<![\w&/#])#(\w+)", re.UNICODE)


def hashtags_in_html(content: str) -> list[str]:
    """Hashtags linked in a status's HTML content (or written plainly as ``#tag``)."""
    if not content:
        return []
    parser = _HashtagParser()
    try:
        parser.feed(content)
        parser.close()
    except Exception:  # malformed HTML: fall back to the plain pattern
        parser.tags = []
    if parser.tags:
        return parser.tags
    text = re.sub(r"<[^>]+>", " ", content)
    return _PLAIN_TAG.findall(text)


def snowflake_to_datetime(status_id: str) -> datetime | None:
    try:
        ms = (int(status_id) >> 22) + SNOWFLAKE_EPOCH_MS
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def datetime_to_snowflake(when: datetime) -> int:
    return int(when.timestamp() * 1000 - SNOWFLAKE_EPOCH_MS) << 22


# ---------------------------------------------------------------------------- client ------
class Client:
    """Read access to one Pixelfed instance with a user token.

    Every call goes through :class:`pixtag.sources.http.HttpSession` (throttle, retries honouring
    Retry-After, timeouts, size cap, address guard). The token is held only in the session's
    Authorization header and never appears in reprs, logs or errors.
    """

    def __init__(self, settings: Settings, instance_url: str | None = None,
                 *, token: str | None = None):
        url = instance_url or settings.instance_url
        if not url:
            raise PixelfedError(
                "no Pixelfed instance configured: pass --instance URL or set PIXTAG_INSTANCE_URL"
            )
        self.base_url = url.rstrip("/")
        self.settings = settings
        host = (urlsplit(self.base_url).hostname or "").lower()
        self.policy = AddressPolicy(
            allowed_hosts={host},
            # The instance's own host is trusted as the user named it (a local instance).
            private_ok_hosts={host, *(h.lower() for h in settings.allow_private_hosts)},
        )
        self.http = HttpSession(
            policy=self.policy,
            # One limiter per instance in this process: the scrapes of all classes share the rate.
            limiter=RateLimiter.shared(self.base_url, settings.request_rate),
            timeout=settings.request_timeout,
            max_retries=settings.max_retries,
            max_retry_after=settings.max_retry_after,
            max_bytes=settings.max_response_bytes,
            backoff_initial=settings.retry_backoff,
            backoff_max=settings.retry_backoff_max,
            fatal_markers=(b"Unauthenticated",),
        )
        if token is None:
            same = self.base_url == (settings.instance_url or "")
            source = settings if same else settings.model_copy(update={"instance_url": self.base_url})
            token = source.token_value()
        self._has_token = bool(token)
        self.http.set_bearer(token)
        self.unparseable: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, token={'set' if self._has_token else 'none'})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------
    def get_json(self, path: str, params: dict[str, Any] | None = None, *, auth: bool = True) -> Any:
        """GET an API path and decode its JSON, turning Pixelfed's error shapes into errors."""
        if auth and not self._has_token:
            raise AuthError(
                f"{self.base_url}{path} needs a user token: set PIXTAG_TOKEN or run "
                "`pixtag auth --instance URL`"
            )
        url = f"{self.base_url}{path}"
        try:
            fetched = self.http.request("GET", url, params=params, auth=auth, ok_statuses=(200,),
                                        parse=lambda f: _decode_json(f, path))
        except HTTPError as exc:
            raise _classify(exc, path) from None
        return fetched.parsed

    def instance(self) -> InstanceInfo:
        path = "/api/v1/instance"
        return InstanceInfo.from_api(self._expect(self.get_json(path, auth=False), dict, path))

    def status(self, status_id: str, *, pixelfed_entity: bool = True) -> Status:
        path = f"/api/v1/statuses/{quote(str(status_id), safe='')}"
        data = self.get_json(path, {"_pe": 1} if pixelfed_entity else None)
        return Status.from_api(self._expect(data, dict, path))

    def trending_hashtags(self) -> list[TrendingTag]:
        path = "/api/v1.1/discover/posts/hashtags"
        data = self._expect(self.get_json(path), list, path)
        return [t for t in self._parse_many(data, TrendingTag.from_api, path)]

    def public_timeline(
        self, *, local: bool = True, remote: bool = False, limit: int = PAGE_LIMIT,
        max_id: str | None = None,
    ) -> list[Status]:
        """One page of the public (local), network (remote) or combined timeline."""
        params: dict[str, Any] = {"limit": min(limit, PAGE_LIMIT), "_pe": 1}
        if local and remote:
            params.update(local=1, remote=1)
        elif remote:
            params["remote"] = 1
        else:
            params["local"] = 1
        if max_id:
            params["max_id"] = max_id
        path = "/api/v1/timelines/public"
        data = self._expect(self.get_json(path, params), list, path)
        return self._parse_many(data, Status.from_api, path)

    def hashtag_timeline(self, tag: str, *, limit: int = PAGE_LIMIT, max_id: str | None = None) -> list[Status]:
        """One page of a hashtag timeline (``_pe=1``: per-media NSFW flag and licence)."""
        params: dict[str, Any] = {"limit": min(limit, PAGE_LIMIT), "_pe": 1}
        if max_id:
            params["max_id"] = max_id
        path = f"/api/v1/timelines/tag/{quote(tag.lstrip('#'), safe='')}"
        data = self._expect(self.get_json(path, params), list, path)
        return self._parse_many(data, Status.from_api, path)

    # ---------------------------------------------------------------------------------------
    def iter_public(self, posts: int, *, local: bool = True, remote: bool = False) -> Iterator[Status]:
        """The ``posts`` most recent posts of a timeline, newest first, each once."""
        yield from self._page(lambda mid: self.public_timeline(local=local, remote=remote, max_id=mid),
                              posts, wall=None)

    def iter_hashtag(self, tag: str, posts: int | None = None) -> Iterator[Status]:
        """Every post of a hashtag timeline back to the ~6-month wall (or ``posts`` of them)."""
        yield from self._page(lambda mid: self.hashtag_timeline(tag, max_id=mid), posts, wall=TAG_WALL)

    def _page(self, fetch: Any, posts: int | None, wall: timedelta | None, *,
              max_empty_steps: int = 3, step: timedelta = timedelta(days=7), max_repeats: int = 2,
              max_pages: int = 2000) -> Iterator[Status]:
        """Page by ``max_id = smallest id seen`` (never by Link headers) until ``[]``.

        * A short page is not the end (the server scans 100 candidates and filters).
        * ``[]`` usually is, but can also mean 100 filtered rows in a row: then step ``max_id``
          back in time a few times, within the wall, before stopping.
        * With a ``wall`` (the hashtag timeline's ~6 months), posts older than the wall before
          the newest post are not yielded and end the paging: the server checks its wall only on
          the cursor, so its last page can reach past it, and a server that never returns ``[]``
          still ends here.
        * A page that repeats posts already seen is asked again (at most ``max_repeats`` times);
          an id that does not decrease, or ``max_pages`` pages, end the paging with a warning.
        """
        seen: set[str] = set()
        max_id: str | None = None
        newest: datetime | None = None
        empty_steps = repeats = 0
        for _ in range(max_pages):
            page = fetch(max_id)
            fresh = [s for s in page if s.id not in seen]
            if not fresh:
                if page and repeats < max_repeats:
                    repeats += 1
                    log.warning("page below max_id=%s repeated posts already seen; asking again", max_id)
                    continue
                if page:
                    log.warning("pagination repeats itself below max_id=%s; stopping", max_id)
                    return
                if wall is not None and max_id is not None and newest is not None \
                        and empty_steps < max_empty_steps:
                    current = snowflake_to_datetime(max_id)
                    if current is not None and current - step > newest - wall:
                        empty_steps += 1
                        max_id = str(datetime_to_snowflake(current - step))
                        continue
                return
            empty_steps = repeats = 0
            for status in fresh:
                seen.add(status.id)
                when = status.snowflake_time or status.created_at
                if newest is None and when is not None:
                    newest = when
                if wall is not None and newest is not None and when is not None and when < newest - wall:
                    return
                yield status
                if posts is not None and len(seen) >= posts:
                    return
            smallest = min(fresh, key=lambda s: _id_key(s.id)).id
            if max_id is not None and _id_key(smallest) >= _id_key(max_id):
                log.warning("pagination did not move past max_id=%s; stopping", max_id)
                return
            max_id = smallest
        log.warning("stopped paging after %d pages", max_pages)

    def _expect(self, data: Any, kind: type, path: str) -> Any:
        if not isinstance(data, kind):
            raise BadResponse(f"GET {path}: expected a JSON {kind.__name__}, got {type(data).__name__}")
        return data

    def _parse_many(self, items: list[Any], parse: Any, path: str) -> list[Any]:
        out = []
        for item in items:
            try:
                out.append(parse(item))
            except (ValidationError, ValueError, TypeError) as exc:
                reason = _first_error(exc)
                self.unparseable[reason] += 1
                log.warning("GET %s: skipped an entry that does not parse (%s)", path, reason)
        return out


def _id_key(status_id: str) -> tuple[int, str]:
    return (int(status_id), status_id) if status_id.isdigit() else (0, status_id)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)[:120]


def _classify(exc: HTTPError, path: str) -> HTTPError:
    status = exc.status
    if status in (401, 403) or (status is not None and 300 <= status < 400):
        return AuthError(
            f"GET {path}: the instance refused the token (HTTP {status}); check PIXTAG_TOKEN "
            "(a user token with the read scope is needed, app-only tokens get 403)",
            status=status,
        )
    if status == 500 and "Unauthenticated" in str(exc):
        return AuthError(f"GET {path}: the instance says Unauthenticated (HTTP 500); check PIXTAG_TOKEN",
                         status=status)
    return exc


def _decode_json(fetched: Fetched, path: str) -> Any:
    ctype = fetched.content_type
    if ctype and "json" not in ctype:
        raise TransientBadResponse(
            f"GET {path}: expected JSON, got {ctype or 'no content type'} "
            f"({fetched.content[:60].decode('utf-8', 'replace')!r}…)",
            status=fetched.status,
        )
    try:
        data = json.loads(fetched.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TransientBadResponse(f"GET {path}: malformed JSON ({exc.__class__.__name__}: {str(exc)[:80]})",
                                   status=fetched.status) from None
    if isinstance(data, dict) and set(data) & {"error", "message"} and len(data) <= 3 \
            and "id" not in data and "uri" not in data:
        message = str(data.get("error") or data.get("message"))
        if "unauthenticated" in message.lower():
            raise AuthError(f"GET {path}: the instance says {message!r}; check PIXTAG_TOKEN",
                            status=fetched.status)
        raise PixelfedError(f"GET {path}: the instance answered with an error: {message[:200]}",
                            status=fetched.status)
    return data
