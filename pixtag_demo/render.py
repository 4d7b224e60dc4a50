"""Pixelfed entities as JSON: accounts, statuses and media (Mastodon mode; ``pe``: the
Pixelfed-entity fields of ``?_pe=1``), times, hashtag links and shortcodes.

The renderers read a :class:`Catalogue`: the routes pass the live state
(:class:`~pixtag_demo.live.store.Live`), which knows the world's entities and the ones made
while the instance runs (replies, mentions, uploads, the bot's ``bot: true``)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pixtag_demo.live.entities import LivePost
from pixtag_demo.live.text import Mention, account_url, autolink
from pixtag_demo.world.entities import BLURHASH_FALLBACK, Account, Media, Post
from pixtag_demo.world.vocab import LICENSES


class Counts(Protocol):
    def statuses_count(self, account_id: int) -> int: ...


class Catalogue(Counts, Protocol):
    """What rendering a status needs to look up (the world's and the live entities)."""

    def account(self, account_id: int) -> Account | None: ...

    def account_of(self, post: Post) -> Account: ...

    def media_of(self, post: Post) -> list[Media]: ...

    def replies_count(self, post_id: int) -> int: ...


AVATAR_PATH = "/storage/avatars/default.jpg"
HEADER_PATH = "/storage/headers/missing.png"


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


def content_html(post: Post, base: str, mentioned: list[Account] | None = None) -> str:
    """A world post: caption, then its hashtags as links; a live status: its text with the
    hashtags and ``mentioned`` accounts linked where they were written."""
    if isinstance(post, LivePost):
        return autolink(post.text, base, lambda m: _mentioned(m, mentioned or []))
    links = " ".join(hashtag_link(base, tag) for tag in post.hashtags)
    return f"<p>{html.escape(post.caption)}{' ' + links if links else ''}</p>"


def _mentioned(mention: Mention, accounts: list[Account]) -> Account | None:
    return next((a for a in accounts if a.username.lower() == mention.name.lower()
                 and (mention.domain is None or a.domain in (None, mention.domain))), None)


def content_text(post: Post) -> str:
    if isinstance(post, LivePost):
        return post.text
    return " ".join([post.caption, *(f"#{t}" for t in post.hashtags)])


def render_account(world: Counts, account: Account, base: str, pe: bool) -> dict[str, Any]:
    url = account_url(base, account)
    avatar = f"{base}{AVATAR_PATH}"
    data: dict[str, Any] = {
        "id": str(account.id), "username": account.username, "acct": account.acct,
        "display_name": account.display_name, "discoverable": True, "locked": account.locked,
        "followers_count": account.followers, "following_count": account.following,
        "statuses_count": world.statuses_count(account.id),
        "note": f"<p>{_linkify(account.bio, base)}</p>" if account.bio else "",
        "url": url, "avatar": avatar, "avatar_static": avatar,
        "header": f"{base}{HEADER_PATH}", "header_static": f"{base}{HEADER_PATH}",
        "created_at": iso_time(account.created_at), "bot": getattr(account, "bot", False),
        "group": False,
        "emojis": [], "fields": [], "last_status_at": None,
    }
    if account.indexable is not None:
        data["indexable"] = account.indexable
    if pe:
        data.update(local=account.local, is_admin=account.is_admin, note_text=account.bio,
                    website=account.website, location=account.location, pronouns=[])
    return data


def render_media(media: Media, base: str, pe: bool) -> dict[str, Any]:
    """An attachment; a remote one keeps its origin's URL (``remote_url`` is always null)."""
    remote = getattr(media, "remote", False)
    url = media.path if remote else f"{base}{media.path}"
    q = media.quirks
    data: dict[str, Any] = {
        "id": str(media.id),
        "type": "Image" if media.kind == "image" and "type_capitalised" in q else media.kind,
        "url": url,
        "preview_url": url if "preview_is_url" in q or remote else f"{base}{media.thumb_path}",
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


def render_status(world: Catalogue, post: Post, base: str, pe: bool) -> dict[str, Any]:
    """A status in Mastodon mode, plus the Pixelfed-entity fields when ``pe``."""
    account = world.account_of(post)
    mentioned = [a for a in map(world.account, getattr(post, "mention_ids", ())) if a is not None]
    reply_to, reply_to_account = (getattr(post, "in_reply_to_id", None),
                                  getattr(post, "in_reply_to_account_id", None))
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
        "in_reply_to_id": str(reply_to) if reply_to else None,
        "in_reply_to_account_id": str(reply_to_account) if reply_to and reply_to_account else None,
        "reblog": None, "content": content_html(post, base, mentioned), "sensitive": post.sensitive,
        "spoiler_text": post.spoiler_text, "visibility": post.visibility,
        "language": None if "bools_null" in q else "en", "edited_at": None,
        "reblogs_count": count(post.shares), "favourites_count": count(post.likes),
        "replies_count": count(world.replies_count(post.id)), "favourited": flag, "reblogged": flag, "bookmarked": flag,
        "muted": flag, "pinned": flag, "application": {"name": "web", "website": None},
        "mentions": [{"id": str(a.id), "username": a.username, "acct": a.acct,
                      "url": account_url(base, a)} for a in mentioned],
        "emojis": [], "poll": None, "card": None,
        "tags": [] if "tags_empty" in q else [
            {"name": slug, "url": f"{base}/discover/tags/{slug}"} for slug in post.slugs],
        "account": render_account(world, account, base, pe),
        "media_attachments": [render_media(m, base, pe) for m in world.media_of(post)],
    }
    if pe:
        data.update(
            shortcode=_shortcode(post.id), content_text=content_text(post), pf_type=post.pf_type,
            reply_count=count(world.replies_count(post.id)),
            comments_disabled=getattr(post, "comments_disabled", False), place=None, local=account.local,
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
