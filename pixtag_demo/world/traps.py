"""The planted traps: how many of each kind a class gets, and the posts that carry them."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from pixtag_demo.world.drafts import Cast, MediaDraft, PostDraft
from pixtag_demo.world.entities import (
    DERIVED_TRAPS,
    MIN_PHOTOS_FOR_ALL_TRAPS,
    OPT_OUT_MARKERS,
    POOL_TRAPS,
    Account,
)
from pixtag_demo.world.images import animated_gif, encode, fake_mp4, grayscale, near_duplicate
from pixtag_demo.world.vocab import MIXED_ALBUM_BIG_RATE, MIXED_CAPTIONS, SPOILERS, ClassTags

if TYPE_CHECKING:
    from collections.abc import Callable


class TrapPosts:
    """The trap half of :class:`~pixtag_demo.world.builder.Builder` (a mixin: it uses the
    builder's drawing helpers and its ``photo_path``, ``classes``, ``tags``, ``photo_author``
    and ``album_queue``)."""

    classes: list[str]
    tags: dict[str, ClassTags]
    photo_author: dict[str, Account]
    album_queue: dict[str, list[str]]
    photo_path: Callable[[str], Path]
    rng: Callable[..., random.Random]
    photo_media: Callable[[str], MediaDraft]
    blob_media: Callable[..., MediaDraft]
    author: Callable[[random.Random, list[Account]], Account]
    class_hashtags: Callable[..., list[str]]
    off_topic: Callable[[random.Random], list[str]]
    caption: Callable[[random.Random, str | None], str]
    when: Callable[..., Any]
    add: Callable[[PostDraft], PostDraft]

    def trap_posts(self, cls: str, clean: list[str], pool: list[str], counts: dict[str, int],
                   cast: Cast) -> None:
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

    def _trap_draft(self, rng: random.Random, kind: str, cls: str, media: MediaDraft,
                    account: Account, **kw: Any) -> PostDraft:
        hashtags = kw.pop("hashtags", None) or (self.class_hashtags(rng, cls) +
                                                self.off_topic(rng))
        return self.add(PostDraft(
            account=account, created_at=kw.pop("created_at", None) or self.when(rng, 170),
            caption=self.caption(rng, cls), hashtags=hashtags, media=[media], kind=kind,
            classes=kw.pop("classes", (cls,)), **kw))

    def _pool_trap(self, rng: random.Random, kind: str, n: int, cls: str, photo: str,
                   others: list[str], cast: Cast) -> None:
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
        elif kind == "two_classes":  # every other one waits for an album of two classes
            if n % 2:
                self.album_queue.setdefault(cls, []).append(photo)
            else:
                self._habit_post(rng, cls, photo, others[n // 2 % len(others)], cast)
        elif kind == "too_old":
            self._trap_draft(rng, kind, cls, media, regular,
                             created_at=self.when(rng, 330, min_days=192, skew=1.0))
        elif kind == "animated":
            gif = animated_gif(self.photo_path(photo))
            with Image.open(io.BytesIO(gif)) as img:
                size = img.size
            self._trap_draft(rng, kind, cls, self.blob_media(
                f"gif-{cls}-{n}", gif, "image/gif", photo, size), regular)

    def _habit_post(self, rng: random.Random, cls: str, photo: str, other: str, cast: Cast) -> None:
        """One photo of ``cls`` whose author adds ``other``'s tag to every post out of habit
        (``#CatsOfPixelfed`` under a dog): each other class has one such author."""
        author = cast.regular[(self.classes.index(other) * 7 + 3) % len(cast.regular)]
        tags = [*self.class_hashtags(rng, cls), self.tags[other].habit, *self.off_topic(rng)]
        self._trap_draft(rng, "two_classes", cls, self.photo_media(photo), author,
                         hashtags=list(dict.fromkeys(tags)), classes=(cls, other),
                         trap_detail=other, mix="habit")

    def mixed_albums(self, cast: Cast) -> None:
        """Albums that mix two classes, from :attr:`album_queue`: one or two photos of a class
        next to one photo of the next class (sorted, wrapping round) that still has some, tagged
        with both; a photo left without a partner goes out as a habit post instead."""
        rng = self.rng("mixed-albums")
        left = {c: list(self.album_queue.get(c, ())) for c in self.classes}
        while sum(1 for c in self.classes if left[c]) >= 2:
            for at, cls in enumerate(self.classes):
                partner = next((c for c in self.classes[at + 1:] + self.classes[:at] if left[c]), None)
                if not left[cls] or partner is None:
                    continue
                take = 2 if len(left[cls]) >= 2 and rng.random() < MIXED_ALBUM_BIG_RATE else 1
                photos = [left[cls].pop(0) for _ in range(take)] + [left[partner].pop(0)]
                rng.shuffle(photos)
                tags = self.class_hashtags(rng, cls) + self.class_hashtags(rng, partner) + \
                    self.off_topic(rng)
                self.add(PostDraft(
                    self.author(rng, cast.regular), self.when(rng, 170), rng.choice(MIXED_CAPTIONS),
                    list(dict.fromkeys(tags)), [self.photo_media(p) for p in photos],
                    kind="two_classes", classes=(cls, partner), trap_detail=partner, mix="album"))
        for at, cls in enumerate(self.classes):
            for photo in left[cls]:
                others = self.classes[at + 1:] + self.classes[:at]
                self._habit_post(rng, cls, photo, others[0], cast)

    def _derived_trap(self, rng: random.Random, kind: str, n: int, cls: str,
                      photo: str | None, others: list[str], cast: Cast) -> None:
        regular = self.author(rng, cast.regular)
        if kind == "not_image":
            media = self.blob_media(f"video-{cls}-{n}", fake_mp4(rng), "video/mp4", None, None)
            self._trap_draft(rng, kind, cls, media, regular)
            return
        assert photo is not None
        if kind == "grayscale":
            mode = "L" if n % 2 == 0 else "RGB"
            img = grayscale(self.photo_path(photo), mode)
            media = self.blob_media(f"gray-{cls}-{n}", encode(img, "JPEG", quality=85),
                                    "image/jpeg", photo, img.size)
            self._trap_draft(rng, kind, cls, media, regular, trap_detail=mode)
        elif kind == "duplicate_exact":  # same bytes, reposted by someone else
            original = self.photo_author[photo]
            other = self.author(rng, [a for a in cast.regular if a.id != original.id])
            self._trap_draft(rng, kind, cls, self.photo_media(photo), other)
        elif kind == "duplicate_near":
            img = near_duplicate(self.photo_path(photo))
            media = self.blob_media(f"near-{cls}-{n}", encode(img, "JPEG", quality=60),
                                    "image/jpeg", photo, img.size)
            self._trap_draft(rng, kind, cls, media, regular)
        elif kind == "duplicate_cross_class":
            target = others[n % len(others)]
            tags = self.class_hashtags(rng, target) + self.off_topic(rng)
            self._trap_draft(rng, kind, target, self.photo_media(photo), regular,
                             hashtags=tags, classes=(target,), trap_detail=cls)


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
