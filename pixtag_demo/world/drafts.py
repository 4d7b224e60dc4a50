"""Posts and media as the builder drafts them, before ids, paths and quirks are assigned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pixtag_demo.world.entities import Account


@dataclass
class MediaDraft:
    source: str
    mime: str
    width: int | None
    height: int | None
    photo: str | None = None
    is_nsfw: bool = False
    other: str | None = None


@dataclass
class PostDraft:
    account: Account
    created_at: datetime
    caption: str
    hashtags: list[str]
    media: list[MediaDraft]
    kind: str = "clean"
    classes: tuple[str, ...] = ()
    visibility: str = "public"
    sensitive: bool = False
    spoiler_text: str = ""
    trap_detail: str | None = None
    mix: str | None = None  # two classes: "album" (photos of both) or "habit" (a second tag)


@dataclass
class Cast:
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
