"""The demo instance's content, built deterministically from a folder of labelled photos.

``build_world(photos, seed, now)`` turns ``photos/CLASS/*.jpg`` into what a real Pixelfed
instance holds: ~80 local and a few remote accounts, posts spread over a year, hashtags in
several spellings, off-topic tags, albums, text posts and, per class, a set of **traps**
(posts a careful collector must drop: locked/unlisted/private, sensitive, opted-out authors,
two classes, too old, GIF/video, grayscale copies, duplicates...). Every trap is recorded in
:attr:`World.traps` so later stages can compare what they dropped against what was planted;
:attr:`World.clean_images` lists the photos in clean, reachable posts.

Everything is a pure function of (photo folder, seed, now): ids are Pixelfed snowflakes
computed from the post dates, which are anchored to ``now`` (default :data:`DEFAULT_NOW`,
not the wall clock), so two builds give identical JSON, ids and bytes. The only I/O is
reading the photos and encoding derived images with Pillow.

The query methods (:meth:`World.tag_timeline`, :meth:`World.public_timeline`,
:meth:`World.trending`) implement the server-side selection rules of
``../shared/pixelfed-api.md`` §1; :mod:`pixtag_demo.server` only adds HTTP and JSON.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

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
    "two_classes": 0.02,
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

ALBUM_RATE = 0.06  # share of clean posts that are albums of 2-3 photos
VARIANT_ONLY_EVERY = 30  # one clean post in this many carries only a variant, not the base tag
CLEAN_MAX_DAYS = 175  # clean posts stay inside the 6-month tag wall
FILLER_PER_PHOTO = 0.3  # off-topic posts (synthetic images) per photo
NOISE_PER_PHOTO = 0.25  # #nofilter posts, mostly private/unlisted (short tag-timeline pages)
TEXT_PER_PHOTO = 0.03  # media-less posts
DIRECT_POSTS = 3


# ------------------------------------------------------------------------------- hashtags ----
@dataclass(frozen=True)
class ClassTags:
    """How people tag one class: the base tag, spelling variants, nicknames, a companion."""

    base: str
    variants: tuple[tuple[str, float], ...]  # (tag, probability on a clean post)
    nicknames: tuple[tuple[str, float], ...] = ()
    companion: str | None = None  # only ever next to another class tag (e.g. #caturday)

    @property
    def names(self) -> list[str]:
        names = [self.base, *(v for v, _ in self.variants), *(n for n, _ in self.nicknames)]
        return [*names, self.companion] if self.companion else names


KNOWN_CLASS_TAGS: dict[str, ClassTags] = {
    "cat": ClassTags("cat", (("Cats", 0.25), ("CatsOfPixelfed", 0.2)), (("kitty", 0.08),),
                     companion="caturday"),
    "dog": ClassTags("dog", (("Dogs", 0.25), ("DogsOfPixelfed", 0.2)), (("puppy", 0.08),)),
    "bird": ClassTags("bird", (("Birds", 0.2), ("BirdPhotography", 0.2)), (("birding", 0.08),)),
    "flower": ClassTags("flower", (("Flowers", 0.25), ("FlowerPhotography", 0.15))),
    "car": ClassTags("car", (("Cars", 0.25), ("CarsOfPixelfed", 0.2)), (("carspotting", 0.08),)),
}
COMPANION_RATE = 0.12
BASE_CAPITALISED_RATE = 0.1

# Off-topic tags: (spelling, share of public posts). The first block is the frequent one.
OFF_TOPIC: tuple[tuple[str, float], ...] = (
    ("photography", 0.35), ("mastodon", 0.08), ("travel", 0.10), ("thursday", 0.08),
    ("Halloween", 0.06), ("war", 0.05), ("Pixelfed", 0.05), ("fediverse", 0.04),
    # long tail; concrete nouns (animal, pet, sunset, sky, ...) stay well below any class
    ("nature", 0.03), ("art", 0.02), ("weekend", 0.02), ("summer", 0.02), ("autumn", 0.02),
    ("GoldenHour", 0.02), ("bokeh", 0.015), ("macro", 0.015), ("BlackAndWhite", 0.015),
    ("PhotoOfTheDay", 0.02), ("StreetPhotography", 0.015), ("analog", 0.01), ("film", 0.01),
    ("love", 0.015), ("mood", 0.01), ("sunday", 0.015), ("music", 0.01), ("FediPhoto", 0.015),
    ("animal", 0.03), ("pet", 0.02), ("sunset", 0.025), ("sky", 0.02), ("tree", 0.01),
    ("garden", 0.015), ("coffee", 0.01), ("beach", 0.01),
)
FILLER_FALLBACK_TAGS = ("photography", "nature", "travel", "art", "weekend", "GoldenHour")
CAPITALISED_RATE = 0.15  # an off-topic tag written capitalised in the content

# Everyday photos of none of the classes (``--others``: ``SUBJECT/*.jpg``), tagged as people tag
# them: (spelling, probability) per subject folder. They are recent (the public timeline shows
# 90 days), so they are most of it, as on a real instance; each tag stays below any class tag.
OTHER_TAGS: dict[str, tuple[tuple[str, float], ...]] = {
    "landscape": (("landscape", 0.6), ("mountains", 0.3), ("hiking", 0.25), ("nature", 0.4)),
    "sea_beach": (("sea", 0.5), ("beach", 0.45), ("ocean", 0.3), ("seascape", 0.2)),
    "food_drinks": (("foodporn", 0.5), ("food", 0.4), ("foodphotography", 0.3), ("brunch", 0.1)),
    "buildings_street": (("StreetPhotography", 0.5), ("architecture", 0.45), ("city", 0.3)),
    "people": (("portrait", 0.6), ("people", 0.3), ("PortraitPhotography", 0.25)),
    "indoor_rooms": (("interior", 0.5), ("home", 0.35), ("InteriorDesign", 0.3), ("cozy", 0.2)),
    "forest_trees": (("forest", 0.6), ("trees", 0.4), ("woods", 0.2)),
    "sky_sunset": (("sunset", 0.6), ("sky", 0.4), ("clouds", 0.3)),
    "city_night": (("NightPhotography", 0.5), ("cityscape", 0.4), ("lights", 0.2)),
    "art_museum": (("museum", 0.5), ("painting", 0.35), ("ArtGallery", 0.3)),
    "vehicles_other": (("train", 0.3), ("bicycle", 0.2), ("boat", 0.2), ("transport", 0.3)),
    "animals_land": (("wildlife", 0.5), ("zoo", 0.3), ("animals", 0.3)),
    "animals_sea": (("underwater", 0.5), ("fish", 0.3), ("diving", 0.3), ("marine", 0.2)),
    "animals_insects": (("insect", 0.4), ("butterfly", 0.3), ("bugs", 0.3)),
    "text_drawings": (("sketch", 0.5), ("drawing", 0.4), ("illustration", 0.3)),
}
OTHER_FALLBACK_TAGS = ("photography", "PhotoOfTheDay", "travel", "weekend")
OTHER_MAX_DAYS = 90
# Tags that hold a class word without meaning the class: the study's normalisation splits
# #HotDog into "hot dog", so these posts are class-tagged and must never become background.
OTHER_TRAPS: dict[str, tuple[str, int]] = {"food_drinks": ("HotDog", 2), "people": ("CatWalk", 2)}
# Privacy traps among the everyday photos: (post kind, every n-th photo).
OTHER_PRIVACY: tuple[tuple[str, int], ...] = (("other_sensitive", 37), ("other_locked", 41),
                                              ("other_opt_out", 43))

# Per-post and per-media real-world variance (spec §6), each on a small deterministic minority.
POST_QUIRKS: dict[str, float] = {
    "tags_empty": 0.05,  # `tags: []` while the content carries the hashtag links
    "counts_as_strings": 0.05,
    "date_micro": 0.06,  # six fractional digits
    "date_offset": 0.03,  # +00:00 instead of Z
    "bools_null": 0.05,
}
MEDIA_QUIRKS: dict[str, float] = {
    "type_capitalised": 0.04,  # "Image"
    "meta_null": 0.05,
    "nsfw_as_int": 0.08,  # is_nsfw 0/1 (only visible with _pe=1)
    "legacy_path": 0.05,  # /storage/m/<40hex>/<40hex>/<name>.jpg
    "preview_is_url": 0.04,
    "description_null": 0.05,
}
LICENSES: dict[int, tuple[str, str]] = {  # app/Util/Media/License.php (1 = default -> null)
    5: ("Public Domain", "/site/kb/licenses"),
    6: ("Public Domain (CC0)", "/site/kb/licenses"),
    11: ("CC BY", "https://creativecommons.org/licenses/by/4.0/"),
    12: ("CC BY-SA", "https://creativecommons.org/licenses/by-sa/4.0/"),
    13: ("CC BY-NC", "https://creativecommons.org/licenses/by-nc/4.0/"),
    14: ("CC BY-NC-SA", "https://creativecommons.org/licenses/by-nc-sa/4.0/"),
    15: ("CC BY-ND", "https://creativecommons.org/licenses/by-nd/4.0/"),
    16: ("CC BY-NC-ND", "https://creativecommons.org/licenses/by-nc-nd/4.0/"),
}

# ------------------------------------------------------------------------- people & words ---
FIRST_NAMES = (
    "mira", "tomas", "ana", "jonas", "lea", "noah", "sofia", "elias", "maya", "luca", "ines",
    "oskar", "yara", "felix", "nora", "emil", "zoe", "arne", "lina", "theo", "ida", "milan",
    "rosa", "kai", "vera", "jan", "alma", "leon", "ella", "finn", "hanna", "otto", "clara",
    "nils", "ruth", "pablo", "greta", "ivan", "lotte", "sami", "amira", "bruno", "dana", "erik",
    "fatima", "gus", "helga", "igor", "jade", "karl", "liv", "marek", "nadia", "olga", "pia",
)
SURNAMES = (
    "berg", "novak", "costa", "meyer", "silva", "janssen", "kowal", "moreau", "rossi", "lind",
    "horvat", "dubois", "peters", "nagy", "ferreira", "olsen", "weber", "marin", "kaya", "sato",
)
USERNAME_STYLES = ("{f}", "{f}_{s}", "{f}.photos", "{f}{d}", "{f}_shoots", "the{f}", "{f}_lens",
                   "{s}{f}", "{f}{s}")
BIOS = (
    "Amateur photographer. Mostly walks and whatever crosses my path.",
    "Cats, coffee and code.", "Weekend birder, weekday accountant.",
    "Film and digital. Based in a small town by the sea.", "I photograph my garden. A lot.",
    "Car nerd. Old Volvos forever.", "Dog person. Three of them.", "Just here for the pictures.",
    "Hobbyist with a second-hand camera.", "Teacher, hiker, occasional photographer.",
    "Street and nature, sometimes both.", "Photos from my commute.", "He/him. Lenses and bikes.",
    "Trying to post one photo a day.", "Flowers, bugs and the odd bird.", "",
)
OPT_OUT_BIOS = {
    "#nobot": "Hobby photographer. No bots, no scraping please. #nobot",
    "#noai": "My photos are not training data. #noai",
    "#noindex": "Small account, small audience, please keep it that way. #noindex",
}
CAPTIONS: dict[str, tuple[str, ...]] = {
    "cat": ("Sunday nap", "She owns the sofa now", "Caught mid-yawn", "Window watch duty",
            "The judge has entered the room", "Loaf mode", "Who needs a bed anyway"),
    "dog": ("Walkies!", "Best boy", "Muddy and proud", "Waiting for the ball", "Park day",
            "That face though", "Sleepy after the beach"),
    "bird": ("Spotted this one this morning", "Finally got the shot", "Visitor at the feeder",
             "Early light at the lake", "Perched and posing", "Migration season"),
    "flower": ("Spring is here", "From the garden today", "Macro Monday", "Bloom",
               "After the rain", "The tulips are out"),
    "car": ("Spotted downtown", "Classic beauty", "Car show finds", "Parked in the sun",
            "Not mine, sadly", "Saturday meet"),
}
GENERIC_CAPTIONS = ("Today's find", "Look at this", "Out and about", "Snapshot", "One more")
FILLER_CAPTIONS = ("Morning light", "Out for a walk", "Colours of the day", "Somewhere",
                   "Blurry but I like it", "Light and shadow", "Testing the new lens",
                   "Evening", "Abstract", "Textures")
TEXT_CAPTIONS = ("Does anyone know a good vet nearby?", "New lens arrived, photos soon!",
                 "Is it just me or is the light amazing today?", "Thinking about a photo walk",
                 "Which camera should I buy next?", "Posting more this week, promise")
SPOILERS = ("Vet visit", "Injury (healing well)", "Eye contact", "Food", "Sensitive content",
            "Dead bird, sorry")
ALT_TEXTS = ("Photo", "A photo I took", "", "Picture from my walk", "Close-up")


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


def class_tags_for(name: str) -> ClassTags:
    """Known spellings for the five demo classes; for others the name, plural, NameOfPixelfed."""
    base = re.sub(r"[^0-9a-z]", "", name.lower()) or "thing"
    if base in KNOWN_CLASS_TAGS:
        return KNOWN_CLASS_TAGS[base]
    camel = "".join(p.capitalize() for p in re.split(r"[^0-9A-Za-z]+", name) if p) or "Thing"
    return ClassTags(base, ((_plural(camel), 0.25), (f"{camel}OfPixelfed", 0.2)))


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def _to_ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _rand_chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def list_photos(photos: Path) -> dict[str, list[str]]:
    """``{class: [CLASS/NAME, ...]}`` for ``photos/CLASS/*.jpg`` (sorted names and classes)."""
    if not photos.is_dir():
        raise WorldError(f"photo folder {photos} does not exist (expected CLASS/*.jpg)")
    found = {
        d.name: sorted(f"{d.name}/{f.name}" for f in d.iterdir()
                       if f.is_file() and f.suffix.lower() in PHOTO_SUFFIXES)
        for d in sorted(photos.iterdir()) if d.is_dir() and not d.name.startswith(".")
    }
    found = {cls: files for cls, files in found.items() if files}
    if not found:
        raise WorldError(f"no photos under {photos}: expected sub-folders CLASS/*.jpg")
    return found


# ------------------------------------------------------------------------------- world ------
@dataclass
class World:
    """The instance's content plus the server-side selection rules of the Pixelfed API."""

    seed: int
    now: datetime
    photos: Path
    classes: list[str]
    class_tags: dict[str, list[str]]
    accounts: dict[int, Account]
    posts: list[Post]  # newest first
    media: dict[int, Media]
    hashtags: dict[str, Hashtag]  # by slug
    traps: list[Trap]
    clean_images: dict[str, list[str]]  # class -> photos (CLASS/NAME) in clean reachable posts
    clean_posts: dict[str, list[int]]  # class -> ids of clean posts
    trap_pool: dict[str, list[str]]  # class -> photos reserved for traps
    blobs: dict[str, bytes] = field(repr=False)
    admin_id: int = 0
    others: Path | None = None  # everyday photos SUBJECT/*.jpg (none of the classes)
    other_images: list[str] = field(default_factory=list)  # SUBJECT/NAME in clean public posts
    posts_by_id: dict[int, Post] = field(init=False, repr=False)
    media_by_path: dict[str, tuple[int, bool]] = field(init=False, repr=False)
    _tag_rows: dict[str, list[Post]] = field(init=False, repr=False)
    _public: dict[bool, list[Post]] = field(init=False, repr=False)
    _status_counts: Counter[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.posts_by_id = {p.id: p for p in self.posts}
        self._status_counts = Counter(p.account_id for p in self.posts)
        self.media_by_path = {}
        for m in self.media.values():
            self.media_by_path[m.path] = (m.id, False)
            if m.thumb_path != NO_PREVIEW_PATH:
                self.media_by_path[m.thumb_path] = (m.id, True)
        self._tag_rows = {}
        for post in self.posts:  # newest first, so every row list is sorted newest first
            if post.visibility in ("public", "unlisted", "private"):
                for slug in post.slugs:
                    self._tag_rows.setdefault(slug, []).append(post)
        self._public = {True: [], False: []}
        for post in self.posts:
            if post.visibility == "public" and post.media_ids:
                self._public[self.accounts[post.account_id].local].append(post)

    # ------------------------------------------------------------------------ lookups ------
    def account_of(self, post: Post) -> Account:
        return self.accounts[post.account_id]

    def media_of(self, post: Post) -> list[Media]:
        return [self.media[i] for i in post.media_ids]

    def statuses_count(self, account_id: int) -> int:
        return self._status_counts[account_id]

    def find_hashtag(self, name: str) -> Hashtag | None:
        """The hashtag whose name or slug equals ``name``, case-insensitively (pgsql ``ilike``)."""
        return self.hashtags.get(slugify(name))

    def photo_path(self, photo: str) -> Path:
        return self.photos / photo

    @property
    def tag_wall(self) -> datetime:
        return sub_months(self.now, TAG_WALL_MONTHS)

    # ------------------------------------------------------------------------ queries ------
    def tag_timeline(self, tag: str, *, max_id: int | None = None, min_id: int | None = None,
                     limit: int = 20, only_media: bool = True) -> list[Post]:
        """``GET /api/v1/timelines/tag/{tag}`` for a user who follows nobody (spec §1b).

        The 100 newest tag rows below ``max_id`` (or above ``min_id``) are scanned; unlisted,
        private and (with ``only_media``) media-less posts are dropped; then ``limit`` are
        kept, so pages can be short. A cursor older than the 6-month wall gives ``[]``.
        """
        hashtag = self.find_hashtag(tag)
        if hashtag is None:
            return []
        wall = snowflake(self.tag_wall)
        if (min_id and min_id < wall) or (max_id and max_id < wall):
            return []
        rows = self._tag_rows.get(hashtag.slug, [])
        if min_id:
            rows = [p for p in rows if p.id > min_id]
        elif max_id:
            rows = [p for p in rows if p.id < max_id]
        candidates = rows[:TAG_SCAN_ROWS]
        kept = [p for p in candidates
                if p.visibility == "public" and (p.media_ids or not only_media)]
        return kept[:max(1, min(limit, MAX_LIMIT))]

    def public_timeline(self, *, local: bool = True, remote: bool = False,
                        max_id: int | None = None, min_id: int | None = None,
                        limit: int = 20) -> list[Post]:
        """``GET /api/v1/timelines/public`` (spec §1a): top-level public media posts, newest
        first, no older than the 90-day falloff. ``local`` and ``remote`` are the resolved
        flags (no flag means local only)."""
        cutoff = snowflake(self.now - PUBLIC_FALLOFF)
        feeds = ([self._public[True]] if local or not remote else []) + \
                ([self._public[False]] if remote else [])
        feed = sorted((p for f in feeds for p in f if p.id > cutoff), key=lambda p: -p.id)
        if min_id:
            feed = [p for p in feed if p.id > min_id]
        elif max_id:
            feed = [p for p in feed if p.id < max_id]
        return feed[:max(1, min(limit, MAX_LIMIT))]

    def trending(self, limit: int = TRENDING_LIMIT) -> list[tuple[Hashtag, int]]:
        """Tags by number of uses over the last 14 days (NSFW tags excluded)."""
        since = self.now - TRENDING_WINDOW
        counts: Counter[str] = Counter()
        for post in self.posts:
            if post.created_at < since:
                break
            counts.update(post.slugs)
        ranked = sorted(((self.hashtags[s], n) for s, n in counts.items()
                         if not self.hashtags[s].nsfw), key=lambda x: (-x[1], x[0].id))
        return ranked[:limit]

    def tag_count(self, slug: str) -> int:
        """Public posts carrying a tag (``HashtagService::count``)."""
        return sum(1 for p in self._tag_rows.get(slug, []) if p.visibility == "public")

    # -------------------------------------------------------------------------- bytes ------
    def media_bytes(self, media: Media) -> bytes:
        """The stored file of an attachment (same bytes on every build)."""
        kind, _, key = media.source.partition(":")
        if kind == "file":
            return self.photo_path(key).read_bytes()
        if kind == "other" and self.others is not None:
            return (self.others / key).read_bytes()
        if kind == "blob":
            return self.blobs[key]
        if kind == "synthetic":
            number, size, fmt = key.split(":")
            width, height = (int(v) for v in size.split("x"))
            return synthetic_image(self.seed, int(number), width, height, fmt)
        raise ValueError(f"unknown media source {media.source!r}")

    def thumb_bytes(self, media: Media) -> bytes:
        """The preview: the original fitted into 640x640 (GIFs and small images unchanged)."""
        data = self.media_bytes(media)
        if media.kind != "image" or media.mime == "image/gif" or \
                max(media.width or 0, media.height or 0) <= 640:
            return data
        return _fit_jpeg(data, 640)

    # ------------------------------------------------------------------------ reports ------
    def trap_counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {class: count}}`` of the planted traps."""
        counts = Counter((t.kind, t.cls) for t in self.traps)
        return {k: {c: counts[k, c] for c in self.classes if counts[k, c]} for k in TRAP_KINDS}

    def summary(self) -> dict[str, Any]:
        local = [a for a in self.accounts.values() if a.local]
        return {
            "seed": self.seed,
            "now": self.now.isoformat().replace("+00:00", "Z"),
            "classes": self.classes,
            "class_tags": self.class_tags,
            "counts": {
                "accounts": len(self.accounts),
                "local_accounts": len(local),
                "remote_accounts": len(self.accounts) - len(local),
                "posts": len(self.posts),
                "public_posts": sum(1 for p in self.posts if p.visibility == "public"),
                "media": len(self.media),
                "hashtags": len(self.hashtags),
            },
            "clean_posts": {c: len(v) for c, v in self.clean_posts.items()},
            "clean_images": {c: len(v) for c, v in self.clean_images.items()},
            "other_images": len(self.other_images),
            "traps": self.trap_counts(),
            "oldest_post": self.posts[-1].created_at.isoformat() if self.posts else None,
            "newest_post": self.posts[0].created_at.isoformat() if self.posts else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything but the bytes, JSON-ready (for fingerprints and debugging)."""
        def plain(obj: Any) -> Any:
            return json.loads(json.dumps(asdict(obj), default=str))
        return {
            "summary": self.summary(),
            "accounts": [plain(a) for a in self.accounts.values()],
            "posts": [plain(p) for p in self.posts],
            "media": [plain(m) for m in self.media.values()],
            "hashtags": [plain(h) for h in self.hashtags.values()],
            "traps": [plain(t) for t in self.traps],
            "clean_images": self.clean_images,
            "blobs": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(self.blobs.items())},
        }

    def fingerprint(self) -> str:
        """sha256 of :meth:`to_dict`: equal for equal (photos, seed, now)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- images -------
@lru_cache(maxsize=512)
def synthetic_image(seed: int, number: int, width: int, height: int, fmt: str) -> bytes:
    """A deterministic abstract picture (soft colour field plus shapes) for off-topic posts."""
    rng = random.Random(f"synthetic:{seed}:{number}")
    grid = Image.new("RGB", (4, 3))
    grid.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(12)])
    img = grid.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(10, max(11, min(width, height) // 4))
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    return _encode(img, "PNG" if fmt == "png" else "JPEG", quality=82)


def _encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _fit_jpeg(data: bytes, side: int) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        return _encode(img, "JPEG", quality=80)


def _grayscale(path: Path, mode: str) -> Image.Image:
    with Image.open(path) as img:
        gray = ImageOps.exif_transpose(img).convert("L")
    return gray if mode == "L" else gray.convert("RGB")


def _near_duplicate(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        size = (max(1, round(img.width * 0.75)), max(1, round(img.height * 0.75)))
        return img.resize(size, Image.Resampling.LANCZOS)


def _animated_gif(path: Path) -> bytes:
    with Image.open(path) as img:
        base = ImageOps.exif_transpose(img).convert("RGB")
    base.thumbnail((320, 320))
    frames = [f.quantize(128, method=Image.Quantize.FASTOCTREE) for f in
              (base, ImageEnhance.Brightness(base).enhance(1.3), ImageOps.mirror(base))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=400,
                   loop=0)
    return buf.getvalue()


def _fake_mp4(rng: random.Random) -> bytes:
    """Bytes that start like an MP4 (an ``ftyp`` box) and are not an image."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + b"\x00\x00\x00\x08free" + bytes(rng.randrange(256) for _ in range(2048))


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


# --------------------------------------------------------------------------- builder -------
@dataclass
class _MediaDraft:
    source: str
    mime: str
    width: int | None
    height: int | None
    photo: str | None = None
    is_nsfw: bool = False
    other: str | None = None


@dataclass
class _PostDraft:
    account: Account
    created_at: datetime
    caption: str
    hashtags: list[str]
    media: list[_MediaDraft]
    kind: str = "clean"
    classes: tuple[str, ...] = ()
    visibility: str = "public"
    sensitive: bool = False
    spoiler_text: str = ""
    trap_detail: str | None = None


@dataclass
class _Cast:
    """The accounts, by role."""

    admin: Account
    regular: list[Account]  # local, unlocked, consenting
    locked: list[Account]
    opt_out: dict[str, Account]  # marker -> account
    remote: list[Account]  # consenting remote accounts
    not_indexable: list[Account]

    def all(self) -> list[Account]:
        return [self.admin, *self.regular, *self.locked, *self.opt_out.values(), *self.remote,
                *self.not_indexable]


class _Builder:
    """Builds a :class:`World`; one instance per build, every random draw from a named stream."""

    def __init__(self, photos: Path, seed: int, now: datetime, others: Path | None = None):
        self.photos, self.seed, self.now, self.others = photos, seed, now, others
        self.files = list_photos(photos)
        self.other_files = list_photos(others) if others is not None else {}
        self.classes = sorted(self.files)
        self.tags = {c: class_tags_for(c) for c in self.classes}
        self.blobs: dict[str, bytes] = {}
        self.drafts: list[_PostDraft] = []
        self._sizes: dict[str, tuple[int, int]] = {}
        self._synthetic = 0
        self.photo_author: dict[str, Account] = {}

    def rng(self, *purpose: object) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, *purpose))))

    # ------------------------------------------------------------------- accounts --------
    def cast(self) -> _Cast:
        rng = self.rng("accounts")
        names = self._usernames(rng, 90)
        make = self._account_factory(rng)
        admin = make("admin", bio="Runs this demo instance.", is_admin=True)
        regular = [make(n) for n in names[:75]]
        locked = [make(n, locked=True) for n in names[75:79]]
        opt_out = {m: make(n, bio=OPT_OUT_BIOS[m])
                   for m, n in zip(OPT_OUT_MARKERS, names[79:82], strict=True)}
        remote = [make(n, domain=REMOTE_DOMAINS[i % 2], indexable=True)
                  for i, n in enumerate(names[82:86])]
        hidden = [make(n, domain=REMOTE_DOMAINS[i % 2], indexable=False)
                  for i, n in enumerate(names[86:88])]
        return _Cast(admin, regular, locked, opt_out, remote, hidden)

    @staticmethod
    def _usernames(rng: random.Random, n: int) -> list[str]:
        seen: dict[str, None] = {}
        while len(seen) < n:
            style = rng.choice(USERNAME_STYLES)
            name = style.format(f=rng.choice(FIRST_NAMES), s=rng.choice(SURNAMES),
                                d=rng.randint(1, 99))
            seen.setdefault(name, None)
        return list(seen)

    def _account_factory(self, rng: random.Random) -> Callable[..., Account]:
        seqs: Counter[int] = Counter()

        def make(username: str, *, bio: str | None = None, **kw: Any) -> Account:
            first = re.split(r"[._\d]", username.removeprefix("the"))[0] or username
            created = _to_ms(self.now - timedelta(days=rng.uniform(200, 1500)))
            seqs[snowflake(created)] += 1  # profile ids are snowflakes too
            return Account(
                id=snowflake(created, 2048 + seqs[snowflake(created)]),
                username=username, created_at=created,
                display_name=rng.choice((first.capitalize(), f"{first.capitalize()} "
                                         f"{rng.choice(SURNAMES).capitalize()}", username)),
                bio=rng.choice(BIOS) if bio is None else bio,
                followers=rng.randint(0, 900), following=rng.randint(0, 400),
                website=rng.choice((None, None, f"https://{username.replace('.', '')}.example")),
                location=rng.choice((None, None, "Ghent", "Lisbon", "Tampere", "Graz")), **kw)
        return make

    # ------------------------------------------------------------------- drawing ---------
    def when(self, rng: random.Random, max_days: float, min_days: float = 0.01,
             skew: float = 1.6) -> datetime:
        """A moment ``min_days..max_days`` ago, skewed towards now (instances grow)."""
        days = min_days + (max_days - min_days) * rng.random() ** skew
        return _to_ms(self.now - timedelta(days=days))

    def class_hashtags(self, rng: random.Random, cls: str, *, base: bool = True) -> list[str]:
        spec = self.tags[cls]
        tags = []
        if base:
            tags.append(spec.base.capitalize() if rng.random() < BASE_CAPITALISED_RATE
                        else spec.base)
        tags += [v for v, p in spec.variants if rng.random() < p]
        if not tags:
            tags.append(rng.choice(spec.variants)[0])
        tags += [n for n, p in spec.nicknames if rng.random() < p]
        if spec.companion and rng.random() < COMPANION_RATE:
            tags.append(spec.companion)
        return tags

    @staticmethod
    def off_topic(rng: random.Random) -> list[str]:
        tags = []
        for tag, share in OFF_TOPIC:
            if rng.random() < share:
                tags.append(tag.capitalize() if tag.islower() and rng.random() < CAPITALISED_RATE
                            else tag)
        return tags

    def photo_media(self, photo: str) -> _MediaDraft:
        if photo not in self._sizes:
            self._sizes[photo] = _image_size(self.photos / photo)
        width, height = self._sizes[photo]
        mime = "image/png" if photo.lower().endswith(".png") else "image/jpeg"
        return _MediaDraft(f"file:{photo}", mime, width, height, photo=photo)

    def blob_media(self, key: str, data: bytes, mime: str, photo: str | None,
                   size: tuple[int, int] | None) -> _MediaDraft:
        self.blobs[key] = data
        width, height = size if size else (None, None)
        return _MediaDraft(f"blob:{key}", mime, width, height, photo=photo)

    def synthetic_media(self, rng: random.Random) -> _MediaDraft:
        self._synthetic += 1
        width, height = rng.choice(((480, 360), (400, 400), (360, 480), (640, 427)))
        fmt = "png" if rng.random() < 0.07 else "jpg"
        return _MediaDraft(f"synthetic:{self._synthetic}:{width}x{height}:{fmt}",
                           "image/png" if fmt == "png" else "image/jpeg", width, height)

    @staticmethod
    def author(rng: random.Random, accounts: list[Account]) -> Account:
        """Zipf-like: a few accounts post a lot."""
        weights = [1 / (i + 1) ** 0.8 for i in range(len(accounts))]
        return rng.choices(accounts, weights)[0]

    def caption(self, rng: random.Random, cls: str | None) -> str:
        return rng.choice(CAPTIONS.get(cls or "", GENERIC_CAPTIONS) if cls else FILLER_CAPTIONS)

    def add(self, draft: _PostDraft) -> _PostDraft:
        self.drafts.append(draft)
        return draft

    # --------------------------------------------------------------- clean posts ---------
    def split_pool(self, cls: str) -> tuple[list[str], list[str], dict[str, int]]:
        """Shuffle a class's photos; reserve the trap pool; return (clean, pool, counts)."""
        files = list(self.files[cls])
        self.rng("split", cls).shuffle(files)
        counts = trap_counts(len(files), len(self.classes))
        pool_size = sum(counts[k] for k in POOL_TRAPS)
        return files[pool_size:], files[:pool_size], counts

    def clean_posts(self, cls: str, photos: list[str], authors: list[Account]) -> None:
        rng = self.rng("clean", cls)
        variant_only = set(rng.sample(range(len(photos)), len(photos) // VARIANT_ONLY_EVERY))
        i = 0
        while i < len(photos):
            size = rng.choice((2, 3)) if len(photos) - i >= 3 and rng.random() < ALBUM_RATE \
                else 1
            group, with_base = photos[i:i + size], not (size == 1 and i in variant_only)
            i += size
            account = self.author(rng, authors)
            self.photo_author.update(dict.fromkeys(group, account))
            hashtags = self.class_hashtags(rng, cls, base=with_base) + self.off_topic(rng)
            self.add(_PostDraft(account, self.when(rng, CLEAN_MAX_DAYS), self.caption(rng, cls),
                                hashtags, [self.photo_media(p) for p in group], classes=(cls,)))

    # -------------------------------------------------------------------- traps ----------
    def trap_posts(self, cls: str, clean: list[str], pool: list[str], counts: dict[str, int],
                   cast: _Cast) -> None:
        rng = self.rng("traps", cls)
        pool_iter = iter(pool)
        at = self.classes.index(cls)  # the other classes, starting after this one, so that
        others = self.classes[at + 1:] + self.classes[:at]  # each class is someone's "other"
        for kind in POOL_TRAPS:
            for n in range(counts[kind]):
                self._pool_trap(rng, kind, n, cls, next(pool_iter), others, cast)
        sources = rng.sample(clean, min(len(clean), sum(counts[k] for k in DERIVED_TRAPS)))
        source_iter = iter(sources)
        for kind in DERIVED_TRAPS:
            for n in range(counts[kind]):
                photo = None if kind == "not_image" else next(source_iter)
                self._derived_trap(rng, kind, n, cls, photo, others, cast)

    def _trap_draft(self, rng: random.Random, kind: str, cls: str, media: _MediaDraft,
                    account: Account, **kw: Any) -> _PostDraft:
        hashtags = kw.pop("hashtags", None) or (self.class_hashtags(rng, cls) +
                                                self.off_topic(rng))
        return self.add(_PostDraft(
            account=account, created_at=kw.pop("created_at", None) or self.when(rng, 170),
            caption=self.caption(rng, cls), hashtags=hashtags, media=[media], kind=kind,
            classes=kw.pop("classes", (cls,)), **kw))

    def _pool_trap(self, rng: random.Random, kind: str, n: int, cls: str, photo: str,
                   others: list[str], cast: _Cast) -> None:
        media = self.photo_media(photo)
        regular = self.author(rng, cast.regular)
        if kind == "locked":
            self._trap_draft(rng, kind, cls, media, cast.locked[n % len(cast.locked)])
        elif kind in ("unlisted", "private"):
            account = cast.locked[(n + 1) % len(cast.locked)] if kind == "private" else regular
            self._trap_draft(rng, kind, cls, media, account, visibility=kind)
        elif kind in ("sensitive", "spoiler"):
            tags = self.class_hashtags(rng, cls) + (["nsfw"] if rng.random() < 0.3 else [])
            self._trap_draft(rng, kind, cls, media, regular, sensitive=True, hashtags=tags,
                             spoiler_text=rng.choice(SPOILERS) if kind == "spoiler" else "")
        elif kind == "media_nsfw":
            media.is_nsfw = True
            self._trap_draft(rng, kind, cls, media, regular)
        elif kind == "opt_out_bio":
            marker = OPT_OUT_MARKERS[n % len(OPT_OUT_MARKERS)]
            self._trap_draft(rng, kind, cls, media, cast.opt_out[marker], trap_detail=marker)
        elif kind == "not_indexable":
            account = cast.not_indexable[n % len(cast.not_indexable)]
            self._trap_draft(rng, kind, cls, media, account, trap_detail=account.acct)
        elif kind == "two_classes":
            other = others[n % len(others)]
            tags = self.class_hashtags(rng, cls) + self.class_hashtags(rng, other)
            self._trap_draft(rng, kind, cls, media, regular, hashtags=tags,
                             classes=(cls, other), trap_detail=other)
        elif kind == "too_old":
            self._trap_draft(rng, kind, cls, media, regular,
                             created_at=self.when(rng, 330, min_days=192, skew=1.0))
        elif kind == "animated":
            gif = _animated_gif(self.photos / photo)
            with Image.open(io.BytesIO(gif)) as img:
                size = img.size
            self._trap_draft(rng, kind, cls, self.blob_media(
                f"gif-{cls}-{n}", gif, "image/gif", photo, size), regular)

    def _derived_trap(self, rng: random.Random, kind: str, n: int, cls: str,
                      photo: str | None, others: list[str], cast: _Cast) -> None:
        regular = self.author(rng, cast.regular)
        if kind == "not_image":
            media = self.blob_media(f"video-{cls}-{n}", _fake_mp4(rng), "video/mp4", None, None)
            self._trap_draft(rng, kind, cls, media, regular)
            return
        assert photo is not None
        if kind == "grayscale":
            mode = "L" if n % 2 == 0 else "RGB"
            img = _grayscale(self.photos / photo, mode)
            media = self.blob_media(f"gray-{cls}-{n}", _encode(img, "JPEG", quality=85),
                                    "image/jpeg", photo, img.size)
            self._trap_draft(rng, kind, cls, media, regular, trap_detail=mode)
        elif kind == "duplicate_exact":  # same bytes, reposted by someone else
            original = self.photo_author[photo]
            other = self.author(rng, [a for a in cast.regular if a.id != original.id])
            self._trap_draft(rng, kind, cls, self.photo_media(photo), other)
        elif kind == "duplicate_near":
            img = _near_duplicate(self.photos / photo)
            media = self.blob_media(f"near-{cls}-{n}", _encode(img, "JPEG", quality=60),
                                    "image/jpeg", photo, img.size)
            self._trap_draft(rng, kind, cls, media, regular)
        elif kind == "duplicate_cross_class":
            target = others[n % len(others)]
            tags = self.class_hashtags(rng, target) + self.off_topic(rng)
            self._trap_draft(rng, kind, target, self.photo_media(photo), regular,
                             hashtags=tags, classes=(target,), trap_detail=cls)

    # ------------------------------------------------------------ everyday photos -------
    def other_posts(self, cast: _Cast) -> list[str]:
        """One post per everyday photo (``others``), recent, under that subject's own tags;
        a few carry a trap tag holding a class word, a few break a privacy rule. Returns the
        photos of the clean public posts."""
        rng = self.rng("others")
        clean: list[str] = []
        authors = [*cast.regular, *cast.remote]
        n = 0
        for subject, files in self.other_files.items():
            trap_tag, trap_count = OTHER_TRAPS.get(subject, ("", 0))
            pool = OTHER_TAGS.get(subject, ())
            for i, photo in enumerate(files):
                n += 1
                width, height = _image_size(self.others / photo)  # type: ignore[operator]
                mime = "image/png" if photo.lower().endswith(".png") else "image/jpeg"
                media = _MediaDraft(f"other:{photo}", mime, width, height, other=photo)
                tags = [t for t, p in pool if rng.random() < p] or \
                    [rng.choice(pool)[0] if pool else rng.choice(OTHER_FALLBACK_TAGS)]
                tags += [t for t in self.off_topic(rng) if t.lower() not in ("animal", "pet")]
                kind, account, extra = "other", self.author(rng, authors), {}
                if i < trap_count:
                    tags, kind = [trap_tag, *tags], "other_trap"
                else:
                    for privacy, every in OTHER_PRIVACY:
                        if n % every == 0:
                            kind = privacy
                    if kind == "other_sensitive":
                        extra = {"sensitive": True}
                    elif kind == "other_locked":
                        account = cast.locked[n % len(cast.locked)]
                    elif kind == "other_opt_out":
                        account = cast.opt_out[OPT_OUT_MARKERS[n % len(OPT_OUT_MARKERS)]]
                if kind == "other":
                    clean.append(photo)
                self.add(_PostDraft(account, self.when(rng, OTHER_MAX_DAYS), self.caption(rng, None),
                                    list(dict.fromkeys(tags)), [media], kind=kind, **extra))
        return sorted(clean)

    # ------------------------------------------------------------ background posts -------
    def background_posts(self, cast: _Cast, total_photos: int) -> None:
        """Off-topic posts (synthetic images), #nofilter noise, text-only and direct posts."""
        rng = self.rng("background")
        everyone = [cast.admin, *cast.regular]
        for _ in range(round(total_photos * FILLER_PER_PHOTO)):
            tags = self.off_topic(rng) or [rng.choice(FILLER_FALLBACK_TAGS)]
            self.add(_PostDraft(self.author(rng, everyone), self.when(rng, 365, skew=1.3),
                                self.caption(rng, None), tags, [self.synthetic_media(rng)],
                                kind="filler"))
        for _ in range(round(total_photos * NOISE_PER_PHOTO)):
            visibility = rng.choices(("public", "private", "unlisted"), (25, 45, 30))[0]
            account = rng.choice(cast.locked) if visibility == "private" and rng.random() < 0.5 \
                else self.author(rng, cast.regular)
            self.add(_PostDraft(account, self.when(rng, 60, skew=1.0), self.caption(rng, None),
                                ["nofilter", *self.off_topic(rng)],
                                [self.synthetic_media(rng)], kind="noise",
                                visibility=visibility))
        for _ in range(max(1, round(total_photos * TEXT_PER_PHOTO))):
            cls = rng.choice(self.classes)
            tags = [self.tags[cls].base] if rng.random() < 0.5 else self.off_topic(rng)
            self.add(_PostDraft(self.author(rng, cast.regular), self.when(rng, 200),
                                rng.choice(TEXT_CAPTIONS), tags or ["photography"], [],
                                kind="text"))
        for _ in range(DIRECT_POSTS):
            self.add(_PostDraft(self.author(rng, cast.regular), self.when(rng, 100),
                                "Sending you the picture I promised", [],
                                [self.synthetic_media(rng)], kind="direct",
                                visibility="direct"))


def trap_counts(photos: int, classes: int) -> dict[str, int]:
    """How many traps of each kind a class with ``photos`` photos gets."""
    counts = {}
    for kind, share in {**POOL_TRAPS, **DERIVED_TRAPS}.items():
        n = round(photos * share)
        if photos >= MIN_PHOTOS_FOR_ALL_TRAPS:
            n = max(n, 2 if kind == "grayscale" else 1)
        if kind in ("two_classes", "duplicate_cross_class") and classes < 2:
            n = 0
        counts[kind] = n
    pool_budget = photos // 3  # never let traps eat more than a third of a class
    for kind in reversed(POOL_TRAPS):
        while sum(counts[k] for k in POOL_TRAPS) > pool_budget and counts[kind]:
            counts[kind] -= 1
    derived_budget = max(0, photos - sum(counts[k] for k in POOL_TRAPS))
    for kind in reversed(DERIVED_TRAPS):
        while sum(counts[k] for k in DERIVED_TRAPS if k != "not_image") > derived_budget \
                and counts[kind] and kind != "not_image":
            counts[kind] -= 1
    return counts


# -------------------------------------------------------------------------- finalise -------
class _Finaliser:
    """Turns drafts into posts and media with snowflake ids, URL paths and quirks."""

    def __init__(self, builder: _Builder):
        self.b = builder
        self.rng = builder.rng("finalise")
        self.seqs: Counter[int] = Counter()
        self.posts: list[Post] = []
        self.media: dict[int, Media] = {}
        self.hashtags: dict[str, Hashtag] = {}
        self.traps: list[Trap] = []

    def unique_id(self, when: datetime, offset: int = 0) -> int:
        base = snowflake(when)
        self.seqs[base] += 1
        return base | (offset + self.seqs[base])

    def run(self) -> None:
        order = sorted(range(len(self.b.drafts)), key=lambda i: (self.b.drafts[i].created_at, i))
        for i in order:
            self.post(self.b.drafts[i])
        self.posts.reverse()  # newest first

    def post(self, d: _PostDraft) -> None:
        post_id = self.unique_id(d.created_at)
        media = [self.one_media(m, post_id, d) for m in d.media]
        for tag in d.hashtags:
            slug = slugify(tag)
            if slug not in self.hashtags:
                self.hashtags[slug] = Hashtag(len(self.hashtags) + 1, slug, slug,
                                              nsfw=slug in NSFW_TAGS)
        quirks = tuple(q for q, share in POST_QUIRKS.items() if self.rng.random() < share)
        self.posts.append(Post(
            id=post_id, account_id=d.account.id, created_at=d.created_at, caption=d.caption,
            hashtags=tuple(dict.fromkeys(d.hashtags)), media_ids=tuple(m.id for m in media),
            pf_type=pf_type([m.kind for m in media]), visibility=d.visibility,
            sensitive=d.sensitive, spoiler_text=d.spoiler_text,
            likes=self.rng.randint(0, 60), shares=self.rng.randint(0, 8), kind=d.kind,
            classes=d.classes, quirks=quirks))
        if d.kind in TRAP_KINDS:  # classes[0] is the tagged class (the photo's for two_classes)
            self.traps.append(Trap(post_id, media[0].id, d.kind, d.classes[0], media[0].photo,
                                   d.trap_detail))

    def one_media(self, m: _MediaDraft, post_id: int, d: _PostDraft) -> Media:
        rng = self.rng
        media_id = self.unique_id(d.created_at - timedelta(seconds=rng.randint(5, 900)), 1024)
        kind = "video" if m.mime.startswith("video/") else "image"
        ext = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
               "video/mp4": "mp4"}[m.mime]
        quirks = tuple(q for q, share in MEDIA_QUIRKS.items() if rng.random() < share)
        if kind == "video":
            quirks = tuple(q for q in quirks if q != "legacy_path")
        path, thumb = media_paths(rng, d.account.id, ext, legacy="legacy_path" in quirks)
        if kind == "video":
            thumb = NO_PREVIEW_PATH
        media = Media(
            id=media_id, post_id=post_id, account_id=d.account.id, kind=kind, mime=m.mime,
            source=m.source, path=path, thumb_path=thumb, width=m.width, height=m.height,
            description=None if "description_null" in quirks else rng.choice(ALT_TEXTS),
            is_nsfw=m.is_nsfw, license=rng.choice((None, None, None, *LICENSES)),
            photo=m.photo, quirks=quirks, other=m.other)
        self.media[media_id] = media
        return media


def media_paths(rng: random.Random, profile_id: int, ext: str, *, legacy: bool) -> tuple[str, str]:
    """Pixelfed storage paths of an original and its ``_thumb`` (v2 layout, or legacy v1)."""
    name = _rand_chars(rng, _ALNUM, 40)
    if legacy:
        folder = f"/storage/m/{_rand_chars(rng, _HEX, 40)}/{_rand_chars(rng, _HEX, 40)}"
    else:
        folder = (f"/storage/m/_v2/{profile_id}/{_rand_chars(rng, _HEX, 9)}-"
                  f"{_rand_chars(rng, _HEX, 6)}/{_rand_chars(rng, _ALNUM, 12)}")
    return f"{folder}/{name}.{ext}", f"{folder}/{name}_thumb.{ext}"


def pf_type(kinds: list[str]) -> str:
    """Pixelfed's status type from its attachments (app/Status.php)."""
    if not kinds:
        return "text"
    if len(kinds) == 1:
        return "photo" if kinds[0] == "image" else "video"
    if all(k == "image" for k in kinds):
        return "photo:album"
    if all(k == "video" for k in kinds):
        return "video:album"
    return "photo:video:album"


# ----------------------------------------------------------------------------- entry -------
def build_world(photos: Path, seed: int = 0, now: datetime = DEFAULT_NOW,
                others: Path | None = None) -> World:
    """Build the demo instance's content from ``photos/CLASS/*.jpg`` and, if given, everyday
    photos ``others/SUBJECT/*.jpg`` of none of the classes (pure and deterministic)."""
    photos = Path(photos)
    others = Path(others) if others is not None else None
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    now = _to_ms(now.astimezone(UTC))
    b = _Builder(photos, seed, now, others)
    cast = b.cast()
    clean_images: dict[str, list[str]] = {}
    trap_pool: dict[str, list[str]] = {}
    for cls in b.classes:
        clean, pool, counts = b.split_pool(cls)
        b.clean_posts(cls, clean, [*cast.regular, *cast.remote])
        b.trap_posts(cls, clean, pool, counts, cast)
        clean_images[cls], trap_pool[cls] = sorted(clean), sorted(pool)
    b.background_posts(cast, sum(len(f) for f in b.files.values()))
    other_images = b.other_posts(cast) if others is not None else []
    fin = _Finaliser(b)
    fin.run()
    accounts = {a.id: a for a in cast.all()}
    clean_posts = {c: [p.id for p in fin.posts if p.kind == "clean" and p.classes == (c,)]
                   for c in b.classes}
    return World(
        seed=seed, now=now, photos=photos, classes=b.classes,
        class_tags={c: b.tags[c].names for c in b.classes}, accounts=accounts, posts=fin.posts,
        media=fin.media, hashtags=fin.hashtags, traps=fin.traps, clean_images=clean_images,
        clean_posts=clean_posts, trap_pool=trap_pool, blobs=b.blobs, admin_id=cast.admin.id,
        others=others, other_images=other_images)
