"""What a demo world is made of: accounts, media, posts, hashtags, planted traps, snowflake ids.

Everything is a pure function of (photo folder, seed, now): ids are Pixelfed snowflakes
computed from the post dates, which are anchored to ``now`` (default :data:`DEFAULT_NOW`,
not the wall clock), so two builds give identical JSON, ids and bytes.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pixtag.core.errors import PixtagError

SNOWFLAKE_EPOCH_MS = 1549756800000  # 2019-02-10T00:00:00Z (app/Services/SnowflakeService.php)
DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
PUBLIC_FALLOFF = timedelta(days=90)  # PF_NETWORK_TIMELINE_DAYS_FALLOFF
TRENDING_WINDOW = timedelta(days=14)  # PF_HASHTAGS_TRENDING_RECENCY_MINS
TAG_WALL_MONTHS = 6
TAG_SCAN_ROWS = 100  # the hashtag timeline looks at this many rows per call
MAX_LIMIT = 40
TRENDING_LIMIT = 20
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
BLURHASH_FALLBACK = "U4Rfzst8?bt7ogayj[j[~pfQ9Goe%Mj[WBay"
NO_PREVIEW_PATH = "/storage/no-preview.png"
REMOTE_DOMAINS = ("remote.example", "photos.example")
OPT_OUT_MARKERS = ("#nobot", "#noai", "#noindex")
NSFW_TAGS = frozenset({"nsfw"})


# Trap kinds that consume a photo from the class's trap pool, with their share of the class's
# photos (at least one each when a class has >= 50 photos).
POOL_TRAPS: dict[str, float] = {
    "locked": 0.01,
    "unlisted": 0.01,
    "private": 0.01,
    "sensitive": 0.01,
    "spoiler": 0.01,
    "media_nsfw": 0.015,
    "opt_out_bio": 0.015,
    "not_indexable": 0.01,
    "two_classes": 0.04,  # half single photos with a habitual second tag, half mixed albums
    "too_old": 0.025,
    "animated": 0.01,
}
# Trap kinds built from a clean photo (a copy of it) or from no photo at all.
DERIVED_TRAPS: dict[str, float] = {
    "not_image": 0.005,
    "grayscale": 0.01,
    "duplicate_exact": 0.01,
    "duplicate_near": 0.01,
    "duplicate_cross_class": 0.005,
}
TRAP_KINDS: tuple[str, ...] = (*POOL_TRAPS, *DERIVED_TRAPS)
MIN_PHOTOS_FOR_ALL_TRAPS = 50


class WorldError(PixtagError):
    """The photo folder cannot be turned into a demo world."""


# ---------------------------------------------------------------------------- entities ------
@dataclass(frozen=True)
class Account:
    """A local or remote profile. ``bio`` is plain text; hashtags in it are written ``#tag``."""

    id: int
    username: str
    display_name: str
    bio: str
    created_at: datetime
    domain: str | None = None  # None: a local account
    locked: bool = False
    indexable: bool | None = None  # sent only for remote (Mastodon-style) accounts
    is_admin: bool = False
    followers: int = 0
    following: int = 0
    website: str | None = None
    location: str | None = None

    @property
    def local(self) -> bool:
        return self.domain is None

    @property
    def acct(self) -> str:
        return self.username if self.local else f"{self.username}@{self.domain}"

    @property
    def opt_out(self) -> str | None:
        """The opt-out marker in the bio (``#nobot``, ``#noai``, ``#noindex``), if any."""
        low = self.bio.lower()
        return next((m for m in OPT_OUT_MARKERS if m in low), None)


@dataclass(frozen=True)
class Media:
    """One attachment. ``source`` says where its bytes come from (see :meth:`World.media_bytes`)."""

    id: int
    post_id: int
    account_id: int
    kind: str  # image | video
    mime: str
    source: str  # file:REL | blob:KEY | synthetic:N:WxH:FMT
    path: str  # URL path of the original
    thumb_path: str  # URL path of the preview
    width: int | None
    height: int | None
    description: str | None
    is_nsfw: bool = False
    license: int | None = None
    photo: str | None = None  # the labelled photo it shows (CLASS/NAME), if any
    quirks: tuple[str, ...] = ()
    other: str | None = None  # the everyday photo it shows (SUBJECT/NAME under ``others``), if any


@dataclass(frozen=True)
class Post:
    """A status. ``hashtags`` keep the author's spelling; ``kind`` is clean/filler/... or a trap."""

    id: int
    account_id: int
    created_at: datetime
    caption: str
    hashtags: tuple[str, ...]
    media_ids: tuple[int, ...]
    pf_type: str
    visibility: str = "public"
    sensitive: bool = False
    spoiler_text: str = ""
    likes: int = 0
    shares: int = 0
    kind: str = "clean"
    classes: tuple[str, ...] = ()
    quirks: tuple[str, ...] = ()

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slugify(t) for t in self.hashtags))


@dataclass(frozen=True)
class Hashtag:
    id: int
    name: str  # lowercased, as servers return it
    slug: str
    nsfw: bool = False


@dataclass(frozen=True)
class Trap:
    """A planted post a careful collector must not use as a clean example of ``cls``."""

    post_id: int
    media_id: int
    kind: str
    cls: str  # the class the post is tagged with (for two_classes: the photo's class)
    photo: str | None  # the labelled photo it derives from (CLASS/NAME), None for video
    detail: str | None = None  # e.g. "#noai", "L", the other class


@dataclass(frozen=True)
class TwoClassPhoto:
    """A photo in a post tagged with two classes: the class it really shows, and the post's
    class tags. ``how``: ``album`` (an album with photos of both classes) or ``habit`` (one
    photo; its author adds the other class's tag, e.g. ``#CatsOfPixelfed``, to every post)."""

    post_id: int
    media_id: int
    photo: str  # CLASS/NAME (the key of World.photo_files)
    shows: str  # the class the photo shows
    tagged: tuple[str, ...]  # the post's classes (Post.classes): ``shows`` and one other
    how: str


# ----------------------------------------------------------------------------- helpers ------
def slugify(tag: str) -> str:
    """Pixelfed's hashtag slug: ``str_slug(name)``, i.e. lowercased (tags here are ASCII words)."""
    return tag.lstrip("#").lower()


def snowflake(when: datetime, seq: int = 0) -> int:
    """Pixelfed snowflake for a moment: ``(ms - epoch) << 22 | seq``."""
    epoch = datetime.fromtimestamp(SNOWFLAKE_EPOCH_MS / 1000, UTC)
    ms = (when - epoch) // timedelta(milliseconds=1)
    return (max(ms, 0) << 22) | seq


def snowflake_time(status_id: int) -> datetime:
    return datetime.fromtimestamp(((status_id >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)


def sub_months(when: datetime, months: int) -> datetime:
    """``when`` minus calendar months (Carbon's ``subMonths``, clamping the day)."""
    years, month0 = divmod(when.month - 1 - months, 12)
    year, month = when.year + years, month0 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)

