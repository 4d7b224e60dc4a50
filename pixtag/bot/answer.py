"""The bot's words: suggestions per photo (ranked hashtags with a plain-words confidence, or no
confident suggestion), and brief refusals.

Every text is at most :data:`MAX_CHARS` (Pixelfed's caption and direct-message limit, 500), mentions
nobody but the asker (a comment starts with ``@asker``; a direct message mentions nobody), repeats
none of the post's text, and carries no link but the one to ``bot_info_url`` (none when unset).
Hashtags are the model's labels with anything but letters, digits and ``_`` removed, so a label can
never become a mention or a link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_CHARS = 500
#: Plain words for a suggestion's probability, highest band first.
CONFIDENCE = ((0.9, "very likely"), (0.75, "likely"), (0.0, "possibly"))

REFUSALS = {
    "not_author": "Only the person who posted a photo can ask me about it, so I did not look at this one.",
    "opted_out": "Your profile says {marker}, so I do not look at your posts. Remove it if you want suggestions.",
    "sensitive": "This post is marked sensitive, so I did not look at it.",
    "content_warning": "This post has a content warning, so I did not look at it.",
    "no_media": "I found no photo in this post (nor in the post of yours it replies to), so I have nothing "
                "to suggest tags for.",
    "declined": "You have asked me {limit} times in the last hour. I will answer again later.",
}


@dataclass
class PhotoAnswer:
    """One photo's line: its suggestions (``[{"tag", "probability"}]``, best first), or why it was
    skipped (``note``)."""

    index: int
    tags: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None


def confidence(probability: float) -> str:
    return next(words for floor, words in CONFIDENCE if probability >= floor)


def hashtag(label: str) -> str:
    return "#" + re.sub(r"\W", "", str(label), flags=re.UNICODE)


def _photo_line(photo: PhotoAnswer, top: int) -> str:
    if photo.note:
        return photo.note
    tags = [t for t in photo.tags if re.sub(r"\W", "", str(t.get("tag", "")))][:top]
    if not tags:
        return "no confident suggestion"
    return ", ".join(f"{hashtag(t['tag'])} ({confidence(float(t['probability']))})" for t in tags)


def compose(photos: Sequence[PhotoAnswer], *, asker: str | None, info_url: str | None = None,
            post_id: str | None = None, extra: str | None = None, top: int = 3) -> str:
    """Suggestions for the photos of one post. ``asker`` (acct) starts a comment; ``post_id``
    names the post in a direct message (it is not in a thread); ``extra`` is one more short line
    (photos beyond the instance's attachment limit)."""
    for keep in range(top, 0, -1):
        parts = _suggestions(photos, asker, post_id, extra, keep)
        text = "\n".join(filter(None, [*parts, _link(info_url)]))
        if len(text) <= MAX_CHARS:
            return text
    body = parts[0]  # one tag per photo is still too long: drop the tail, cut the body, keep the link
    link = _link(info_url)
    room = MAX_CHARS - (len(link) + 1 if link else 0)
    return "\n".join(filter(None, [_fit(body, room), link]))


def _suggestions(photos: Sequence[PhotoAnswer], asker: str | None, post_id: str | None,
                 extra: str | None, top: int) -> tuple[str, str]:
    head = _head(asker, post_id)
    if len(photos) == 1 and not extra:
        line = _photo_line(photos[0], top)
        if photos[0].note:
            body = f"Your photo: {line}."
        elif line == "no confident suggestion":
            body = "I have no confident suggestion for your photo."
        else:
            body = f"Hashtags I would suggest for your photo: {line}."
    else:
        lines = [f"Photo {p.index}: {_photo_line(p, top)}" for p in photos]
        body = "Hashtags I would suggest:\n" + "\n".join([*lines, *([extra] if extra else [])])
    return f"{head}{body}", "Only suggestions: add the ones you like."


def refusal(reason: str, *, asker: str | None, post_id: str | None = None, **words: Any) -> str:
    """A brief refusal: why the bot did not look (no link, no photo fetched)."""
    return _fit(_head(asker, post_id) + REFUSALS[reason].format(**words))


def post_reference(post_id: str) -> str:
    """How a direct message names the post it answers (first words; :mod:`pixtag.bot.deliver`
    finds an earlier message by them)."""
    return f"About your post {post_id}:"


def _head(asker: str | None, post_id: str | None) -> str:
    if asker:
        return f"@{asker.lstrip('@')} "
    return f"{post_reference(post_id)} " if post_id else ""


def _link(info_url: str | None) -> str:
    return f"How this works: {info_url}" if info_url else ""


def _fit(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
