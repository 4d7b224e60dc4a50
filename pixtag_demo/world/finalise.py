"""Drafts into posts and media: snowflake ids, Pixelfed storage paths, quirks, the trap list."""

from __future__ import annotations

import random
import string
from collections import Counter
from datetime import datetime, timedelta

from pixtag_demo.world.drafts import MediaDraft, PostDraft
from pixtag_demo.world.entities import (
    NO_PREVIEW_PATH,
    NSFW_TAGS,
    TRAP_KINDS,
    Hashtag,
    Media,
    Post,
    Trap,
    TwoClassPhoto,
    slugify,
    snowflake,
)
from pixtag_demo.world.vocab import ALT_TEXTS, LICENSES, MEDIA_QUIRKS, POST_QUIRKS


class Finaliser:
    """Turns drafts into posts and media with snowflake ids, URL paths and quirks."""

    def __init__(self, drafts: list[PostDraft], rng: random.Random):
        self.drafts = drafts
        self.rng = rng
        self.seqs: Counter[int] = Counter()
        self.posts: list[Post] = []
        self.media: dict[int, Media] = {}
        self.hashtags: dict[str, Hashtag] = {}
        self.traps: list[Trap] = []
        self.two_class_photos: list[TwoClassPhoto] = []

    def unique_id(self, when: datetime, offset: int = 0) -> int:
        base = snowflake(when)
        self.seqs[base] += 1
        return base | (offset + self.seqs[base])

    def run(self) -> None:
        order = sorted(range(len(self.drafts)), key=lambda i: (self.drafts[i].created_at, i))
        for i in order:
            self.post(self.drafts[i])
        self.posts.reverse()  # newest first

    def post(self, d: PostDraft) -> None:
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
        if d.mix:  # two class tags: one trap per photo, for the class it shows
            self.two_classes(post_id, media, d.classes, d.mix)
        elif d.kind in TRAP_KINDS:  # classes[0] is the tagged class
            self.traps.append(Trap(post_id, media[0].id, d.kind, d.classes[0], media[0].photo,
                                   d.trap_detail))

    def two_classes(self, post_id: int, media: list[Media], tagged: tuple[str, ...],
                    how: str) -> None:
        for m in media:
            assert m.photo is not None
            shows = m.photo.split("/", 1)[0]
            other = next(c for c in tagged if c != shows)
            self.traps.append(Trap(post_id, m.id, "two_classes", shows, m.photo, other))
            self.two_class_photos.append(TwoClassPhoto(post_id, m.id, m.photo, shows, tagged, how))

    def one_media(self, m: MediaDraft, post_id: int, d: PostDraft) -> Media:
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



def _rand_chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"
