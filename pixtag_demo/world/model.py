"""The demo world: :class:`World` (the instance's content) and the server-side selection rules.

The query methods (:meth:`World.tag_timeline`, :meth:`World.public_timeline`,
:meth:`World.trending`) implement the server-side selection rules of
``../shared/pixelfed-api.md`` §1; the routes in :mod:`pixtag_demo.routes` only add HTTP and JSON.
The world is built by :func:`pixtag_demo.world.builder.build_world`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pixtag_demo.world.entities import (
    MAX_LIMIT,
    NO_PREVIEW_PATH,
    PUBLIC_FALLOFF,
    TAG_SCAN_ROWS,
    TAG_WALL_MONTHS,
    TRAP_KINDS,
    TRENDING_LIMIT,
    TRENDING_WINDOW,
    Account,
    Hashtag,
    Media,
    Post,
    Trap,
    TwoClassPhoto,
    slugify,
    snowflake,
    sub_months,
)
from pixtag_demo.world.images import fit_jpeg, synthetic_image


@dataclass
class World:
    """The instance's content plus the server-side selection rules of the Pixelfed API."""

    seed: int
    now: datetime
    photos: Path  # the (first) photo folder
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
    # photo key (CLASS/NAME) -> file, when the photos come from several folders (else photos/KEY)
    photo_files: dict[str, Path] = field(default_factory=dict, repr=False)
    two_class_photos: list[TwoClassPhoto] = field(default_factory=list)  # photos of 2-class posts
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
        return self.photo_files.get(photo) or self.photos / photo

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
        return fit_jpeg(data, 640)

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
            "two_class_photos": [plain(t) for t in self.two_class_photos],
            "clean_images": self.clean_images,
            "blobs": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(self.blobs.items())},
        }

    def fingerprint(self) -> str:
        """sha256 of :meth:`to_dict`: equal for equal (photos, seed, now)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
