"""Pixelfed entities as JSON: accounts, statuses and media (Mastodon mode; ``pe``: the
Pixelfed-entity fields of ``?_pe=1``), times, hashtag links and shortcodes."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pixtag_demo.world.entities import BLURHASH_FALLBACK, Account, Media, Post
from pixtag_demo.world.model import World
from pixtag_demo.world.vocab import LICENSES

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
