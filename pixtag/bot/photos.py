"""A post's photos, read into memory and dropped, and the served model's suggestions for them.

At most the instance's attachment limit is looked at; videos, animations and anything that is not
a photo are skipped with a word; a file is downloaded only through the SSRF guard
(:meth:`pixtag.sources.bot_api.BotClient.download`) and only up to the model's byte cap; the
model refuses more pixels than its cap. Nothing is written anywhere but the photos' perceptual
hashes, which :meth:`TagModel.suggest` (``source="bot"``) adds to the suggestion ledger, so the
scraper never trains on a photo the bot suggested tags for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pixtag.bot.answer import PhotoAnswer
from pixtag.core import logs
from pixtag.sources.http import BlockedURL, HTTPError, ResponseTooLarge
from pixtag.sources.pixelfed import MediaAttachment, Status

if TYPE_CHECKING:
    from pixtag.model.serving.tagmodel import TagModel

log = logs.get_logger(__name__)

LEDGER_SOURCE = "bot"
DEFAULT_ATTACHMENT_LIMIT = 4  # Pixelfed's MAX_ALBUM_LENGTH


class Downloader(Protocol):
    def download(self, url: str, max_bytes: int) -> bytes: ...


@dataclass
class Looked:
    """What the bot made of a post's photos: one answer per photo looked at, the count of those
    left out beyond the attachment limit, and how many went to the model."""

    photos: list[PhotoAnswer]
    beyond_limit: int
    suggested: int

    def extra_line(self, limit: int) -> str | None:
        if not self.beyond_limit:
            return None
        return f"I looked at the first {limit} photos only (the instance's limit per post)."


def skip_reason(media: MediaAttachment) -> str | None:
    """Why an attachment is not looked at, in a few words, or ``None``."""
    if media.type == "video":
        return "a video, skipped"
    if media.type not in ("image",):
        return "not a photo, skipped"
    if media.is_nsfw:
        return "marked sensitive, skipped"
    if not media.url:
        return "no file to look at, skipped"
    return None


def _rejected(error: str) -> str:
    """The model's error for one image (``reason: detail``) in a few words."""
    reason = error.split(":", 1)[0].strip()
    return {
        "animated": "an animation, skipped",
        "decompression_bomb": "too many pixels for me, skipped",
        "unsupported_format": "a format I do not read, skipped",
    }.get(reason, "too large for me, skipped" if "larger than" in error else "I could not read this image")


def look(api: Downloader, model: TagModel, post: Status, *, limit: int) -> Looked:
    """Fetch the post's photos (at most ``limit``) into memory, ask the model, drop the bytes."""
    media = list(post.media_attachments)
    shown, beyond = media[:limit], max(0, len(media) - limit)
    max_bytes = int(model.config.get("max_image_bytes") or 20_000_000)
    answers = [PhotoAnswer(i) for i in range(1, len(shown) + 1)]
    data: list[bytes] = []
    where: list[int] = []
    for answer, item in zip(answers, shown, strict=True):
        answer.note = skip_reason(item)
        if answer.note:
            continue
        try:
            data.append(api.download(str(item.url), max_bytes))
            where.append(answer.index - 1)
        except ResponseTooLarge:
            answer.note = "too large for me, skipped"
        except BlockedURL as exc:
            log.warning("post %s, photo %d: not fetched (%s)", post.id, answer.index, exc)
            answer.note = "its file is somewhere I may not fetch from, skipped"
        except HTTPError as exc:
            log.warning("post %s, photo %d: download failed (%s)", post.id, answer.index, exc)
            answer.note = "I could not fetch it"
    results = suggest(model, data) if data else []
    del data  # the photos are dropped here; the ledger has their perceptual hashes
    for i, result in zip(where, results, strict=True):
        if result.get("error"):
            answers[i].note = _rejected(str(result["error"]))
        else:
            answers[i].tags = list(result.get("tags") or [])
    return Looked(answers, beyond, len(where))


def suggest(model: TagModel, images: Sequence[bytes]) -> list[dict[str, Any]]:
    """The champion's suggestions (its own threshold and top-k); records the ledger first."""
    return model.suggest(list(images), source=LEDGER_SOURCE)
