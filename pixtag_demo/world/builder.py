"""``build_world(photos, seed, now)``: the demo instance's content from folders of labelled photos.

It turns ``photos/CLASS/*.jpg`` (one folder or several, see :func:`merge_photos`) into what a
real Pixelfed instance holds: ~80 local and a few remote accounts, posts spread over a year,
hashtags in several spellings, off-topic tags, albums, text posts and, per class, a set of
**traps** (posts a careful collector must drop: locked/unlisted/private, sensitive, opted-out
authors, two classes, too old, GIF/video, grayscale copies, duplicates...). Every trap is
recorded in :attr:`World.traps` so later stages can compare what they dropped against what was
planted; :attr:`World.clean_images` lists the photos in clean, reachable posts. Posts tagged
with two classes (albums that mix two classes, single photos with a second class tag added out
of habit) are traps for the study's ``multiple_classes`` rule and are also listed photo by
photo, with the class each photo really shows, in :attr:`World.two_class_photos`.

Everything is a pure function of (photo folders, seed, now). The only I/O is reading the
photos and encoding derived images with Pillow.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pixtag_demo.world.drafts import Cast, MediaDraft, PostDraft
from pixtag_demo.world.entities import (
    DEFAULT_NOW,
    OPT_OUT_MARKERS,
    PHOTO_SUFFIXES,
    POOL_TRAPS,
    REMOTE_DOMAINS,
    Account,
    WorldError,
    snowflake,
)
from pixtag_demo.world.finalise import Finaliser
from pixtag_demo.world.images import image_size
from pixtag_demo.world.model import World
from pixtag_demo.world.traps import TrapPosts, trap_counts
from pixtag_demo.world.vocab import (
    ALBUM_RATE,
    BASE_CAPITALISED_RATE,
    BIOS,
    CAPITALISED_RATE,
    CAPTIONS,
    CLEAN_MAX_DAYS,
    CLEAN_SKEW,
    COMPANION_RATE,
    DIRECT_POSTS,
    FILLER_CAPTIONS,
    FILLER_FALLBACK_TAGS,
    FILLER_PER_PHOTO,
    FIRST_NAMES,
    GENERIC_CAPTIONS,
    NOISE_PER_PHOTO,
    OFF_TOPIC,
    OPT_OUT_BIOS,
    OTHER_FALLBACK_TAGS,
    OTHER_MAX_DAYS,
    OTHER_PRIVACY,
    OTHER_TAGS,
    OTHER_TRAPS,
    SURNAMES,
    TEXT_CAPTIONS,
    TEXT_PER_PHOTO,
    USERNAME_STYLES,
    VARIANT_ONLY_EVERY,
    class_tags_for,
)


def to_ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)



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


def merge_photos(folders: Sequence[Path]) -> tuple[dict[str, list[str]], dict[str, Path]]:
    """The labelled photos of one or more folders ``DIR/CLASS/*.jpg``: ``({class: [key, ...]},
    {key: file})``, classes sorted.

    The classes are the union of the folders' CLASS sub-folders. A class found in several
    folders gets the photos of all of them, folder by folder in the order given (by name inside
    a folder). A photo's key is ``CLASS/NAME``; when an earlier folder already gave that class a
    photo of that name, it is ``CLASS/<i>/NAME`` (``i``: the folder's 1-based position), so no
    photo hides another. Every folder must exist and hold photos.
    """
    if not folders:
        raise WorldError("no photo folder given (expected one or more folders of CLASS/*.jpg)")
    files: dict[str, list[str]] = {}
    paths: dict[str, Path] = {}
    for i, folder in enumerate(folders, 1):
        for cls, names in list_photos(folder).items():
            for name in names:
                key = name if name not in paths else f"{cls}/{i}/{name.split('/', 1)[1]}"
                paths[key] = folder / name
                files.setdefault(cls, []).append(key)
    return dict(sorted(files.items())), paths



class Builder(TrapPosts):
    """Builds a :class:`World`; one instance per build, every random draw from a named stream."""

    def __init__(self, photos: Sequence[Path], seed: int, now: datetime, others: Path | None = None):
        self.seed, self.now, self.others = seed, now, others
        self.files, self.photo_files = merge_photos(photos)
        self.other_files = list_photos(others) if others is not None else {}
        self.classes = sorted(self.files)
        self.tags = {c: class_tags_for(c) for c in self.classes}
        self.blobs: dict[str, bytes] = {}
        self.drafts: list[PostDraft] = []
        self._sizes: dict[str, tuple[int, int]] = {}
        self._synthetic = 0
        self.photo_author: dict[str, Account] = {}
        self.album_queue: dict[str, list[str]] = {}  # class -> photos for albums mixing two classes

    def rng(self, *purpose: object) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, *purpose))))

    # ------------------------------------------------------------------- accounts --------
    def cast(self) -> Cast:
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
        return Cast(admin, regular, locked, opt_out, remote, hidden)

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
            created = to_ms(self.now - timedelta(days=rng.uniform(200, 1500)))
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
             skew: float = CLEAN_SKEW, u: float | None = None) -> datetime:
        """A moment ``min_days..max_days`` ago, skewed towards now (instances grow); ``u``: the
        uniform draw to use (see :meth:`spread`)."""
        u = rng.random() if u is None else u
        days = min_days + (max_days - min_days) * u ** skew
        return to_ms(self.now - timedelta(days=days))

    @staticmethod
    def spread(rng: random.Random, n: int) -> list[float]:
        """``n`` uniform draws, one in each n-th of [0, 1), shuffled: random moments that fill the
        time evenly, so that every recent window holds its expected share of a class's posts."""
        draws = [(k + rng.random()) / n for k in range(n)]
        rng.shuffle(draws)
        return draws

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

    def photo_path(self, photo: str) -> Path:
        return self.photo_files[photo]

    def photo_media(self, photo: str) -> MediaDraft:
        if photo not in self._sizes:
            self._sizes[photo] = image_size(self.photo_path(photo))
        width, height = self._sizes[photo]
        mime = "image/png" if photo.lower().endswith(".png") else "image/jpeg"
        return MediaDraft(f"file:{photo}", mime, width, height, photo=photo)

    def blob_media(self, key: str, data: bytes, mime: str, photo: str | None,
                   size: tuple[int, int] | None) -> MediaDraft:
        self.blobs[key] = data
        width, height = size if size else (None, None)
        return MediaDraft(f"blob:{key}", mime, width, height, photo=photo)

    def synthetic_media(self, rng: random.Random) -> MediaDraft:
        self._synthetic += 1
        width, height = rng.choice(((480, 360), (400, 400), (360, 480), (640, 427)))
        fmt = "png" if rng.random() < 0.07 else "jpg"
        return MediaDraft(f"synthetic:{self._synthetic}:{width}x{height}:{fmt}",
                           "image/png" if fmt == "png" else "image/jpeg", width, height)

    @staticmethod
    def author(rng: random.Random, accounts: list[Account]) -> Account:
        """Zipf-like: a few accounts post a lot."""
        weights = [1 / (i + 1) ** 0.8 for i in range(len(accounts))]
        return rng.choices(accounts, weights)[0]

    def caption(self, rng: random.Random, cls: str | None) -> str:
        return rng.choice(CAPTIONS.get(cls or "", GENERIC_CAPTIONS) if cls else FILLER_CAPTIONS)

    def add(self, draft: PostDraft) -> PostDraft:
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

    def clean_days(self, cls: str) -> float:
        """How far back a class's clean posts go: :data:`CLEAN_MAX_DAYS` for the largest class,
        less for a smaller one (fox: 109 photos), so that every class is posted at the same rate
        in recent days and trends alike (``n ~ days ** (1 / skew)`` for the skewed dates of
        :meth:`when`; at least 60 days)."""
        largest = max(len(f) for f in self.files.values())
        return max(60.0, CLEAN_MAX_DAYS * (len(self.files[cls]) / largest) ** CLEAN_SKEW)

    def clean_posts(self, cls: str, photos: list[str], authors: list[Account]) -> None:
        rng = self.rng("clean", cls)
        max_days = self.clean_days(cls)
        variant_only = set(rng.sample(range(len(photos)), len(photos) // VARIANT_ONLY_EVERY))
        groups: list[tuple[list[str], bool]] = []  # (photos, with the base tag)
        i = 0
        while i < len(photos):
            size = rng.choice((2, 3)) if len(photos) - i >= 3 and rng.random() < ALBUM_RATE \
                else 1
            groups.append((photos[i:i + size], not (size == 1 and i in variant_only)))
            i += size
        for (group, with_base), u in zip(groups, self.spread(rng, len(groups)), strict=True):
            account = self.author(rng, authors)
            self.photo_author.update(dict.fromkeys(group, account))
            hashtags = self.class_hashtags(rng, cls, base=with_base) + self.off_topic(rng)
            self.add(PostDraft(account, self.when(rng, max_days, u=u), self.caption(rng, cls),
                                hashtags, [self.photo_media(p) for p in group], classes=(cls,)))

    # ------------------------------------------------------------ everyday photos -------
    def other_posts(self, cast: Cast) -> list[str]:
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
                width, height = image_size(self.others / photo)  # type: ignore[operator]
                mime = "image/png" if photo.lower().endswith(".png") else "image/jpeg"
                media = MediaDraft(f"other:{photo}", mime, width, height, other=photo)
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
                self.add(PostDraft(account, self.when(rng, OTHER_MAX_DAYS), self.caption(rng, None),
                                    list(dict.fromkeys(tags)), [media], kind=kind, **extra))
        return sorted(clean)

    # ------------------------------------------------------------ background posts -------
    def background_posts(self, cast: Cast, total_photos: int) -> None:
        """Off-topic posts (synthetic images), #nofilter noise, text-only and direct posts."""
        rng = self.rng("background")
        everyone = [cast.admin, *cast.regular]
        for _ in range(round(total_photos * FILLER_PER_PHOTO)):
            tags = self.off_topic(rng) or [rng.choice(FILLER_FALLBACK_TAGS)]
            self.add(PostDraft(self.author(rng, everyone), self.when(rng, 365, skew=1.3),
                                self.caption(rng, None), tags, [self.synthetic_media(rng)],
                                kind="filler"))
        for _ in range(round(total_photos * NOISE_PER_PHOTO)):
            visibility = rng.choices(("public", "private", "unlisted"), (25, 45, 30))[0]
            account = rng.choice(cast.locked) if visibility == "private" and rng.random() < 0.5 \
                else self.author(rng, cast.regular)
            self.add(PostDraft(account, self.when(rng, 60, skew=1.0), self.caption(rng, None),
                                ["nofilter", *self.off_topic(rng)],
                                [self.synthetic_media(rng)], kind="noise",
                                visibility=visibility))
        for _ in range(max(1, round(total_photos * TEXT_PER_PHOTO))):
            cls = rng.choice(self.classes)
            tags = [self.tags[cls].base] if rng.random() < 0.5 else self.off_topic(rng)
            self.add(PostDraft(self.author(rng, cast.regular), self.when(rng, 200),
                                rng.choice(TEXT_CAPTIONS), tags or ["photography"], [],
                                kind="text"))
        for _ in range(DIRECT_POSTS):
            self.add(PostDraft(self.author(rng, cast.regular), self.when(rng, 100),
                                "Sending you the picture I promised", [],
                                [self.synthetic_media(rng)], kind="direct",
                                visibility="direct"))



# ----------------------------------------------------------------------------- entry -------
def build_world(photos: Path | Sequence[Path], seed: int = 0, now: datetime = DEFAULT_NOW,
                others: Path | None = None) -> World:
    """Build the demo instance's content from ``photos/CLASS/*.jpg`` (one folder, or several:
    see :func:`merge_photos`) and, if given, everyday photos ``others/SUBJECT/*.jpg`` of none of
    the classes (pure and deterministic)."""
    folders = [Path(photos)] if isinstance(photos, str | Path) else [Path(p) for p in photos]
    others = Path(others) if others is not None else None
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    now = to_ms(now.astimezone(UTC))
    b = Builder(folders, seed, now, others)
    cast = b.cast()
    clean_images: dict[str, list[str]] = {}
    trap_pool: dict[str, list[str]] = {}
    for cls in b.classes:
        clean, pool, counts = b.split_pool(cls)
        b.clean_posts(cls, clean, [*cast.regular, *cast.remote])
        b.trap_posts(cls, clean, pool, counts, cast)
        clean_images[cls], trap_pool[cls] = sorted(clean), sorted(pool)
    b.mixed_albums(cast)
    b.background_posts(cast, sum(len(f) for f in b.files.values()))
    other_images = b.other_posts(cast) if others is not None else []
    fin = Finaliser(b.drafts, b.rng("finalise"))
    fin.run()
    accounts = {a.id: a for a in cast.all()}
    clean_posts = {c: [p.id for p in fin.posts if p.kind == "clean" and p.classes == (c,)]
                   for c in b.classes}
    return World(
        seed=seed, now=now, photos=folders[0], classes=b.classes,
        class_tags={c: b.tags[c].names for c in b.classes}, accounts=accounts, posts=fin.posts,
        media=fin.media, hashtags=fin.hashtags, traps=fin.traps, clean_images=clean_images,
        clean_posts=clean_posts, trap_pool=trap_pool, blobs=b.blobs, admin_id=cast.admin.id,
        others=others, other_images=other_images, photo_files=b.photo_files,
        two_class_photos=fin.two_class_photos)
