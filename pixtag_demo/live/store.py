"""The instance's writable state: :class:`Live`, a layer over the read-only :class:`World`.

Everything made while the instance runs (accounts, uploads, statuses, replies, notifications,
direct messages, follows, deletions) lives here, per app; the world itself is never changed, so
an instance nobody writes to answers exactly as before and tests can share one built world.

Clock and ids: the live clock is the world's ``now`` plus the time since the app started, so
new statuses are newer than every world post; status and media ids are snowflakes of that clock
(strictly increasing), notification and direct-message ids count up from 1 (autoincrement
columns on Pixelfed). Every write takes :attr:`Live.lock`, so concurrent requests are safe.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from pixtag_demo.errors import ApiError
from pixtag_demo.live import text
from pixtag_demo.live.entities import DirectMessage, LiveAccount, LiveMedia, LivePost, Notification
from pixtag_demo.live.feeds import Feeds
from pixtag_demo.live.uploads import EXTENSIONS, header_size, mime_from_url
from pixtag_demo.world.entities import NSFW_TAGS, Account, Hashtag, Media, Post, slugify, snowflake
from pixtag_demo.world.finalise import media_paths, pf_type
from pixtag_demo.world.model import World

IDEMPOTENCY_TTL_S = 3600
ACCOUNT_AGE = timedelta(days=30)  # live accounts are this old at the world's ``now``
DEMO_SEQ, BOT_SEQ, FIRST_SEQ = 0, 1, 2  # account id sequence numbers (demo user, bot, others)
VISIBILITY_RANK = {"public": 0, "unlisted": 1, "private": 2, "direct": 3}
BOT_BIO = ("I suggest hashtags for your photos when you mention me. I never post on my own. "
           "Put #nobot in your bio and I leave you alone.")


class Live(Feeds):
    """Writable state over ``world``; also the catalogue the renderers read (accounts, media,
    counts of any status, world's or live)."""

    def __init__(self, world: World, clock: Callable[[], float] = time.monotonic):
        self.world = world
        self.lock = threading.RLock()
        self._clock, self._start = clock, clock()
        self._last_id = 0
        self.accounts: dict[int, LiveAccount] = {}
        self.posts: dict[int, LivePost] = {}  # id order (ids only grow)
        self.media: dict[int, LiveMedia] = {}
        self.blobs: dict[int, bytes] = {}
        self.media_by_path: dict[str, int] = {}
        self.hashtags: dict[str, Hashtag] = {}
        self.notifications: dict[int, list[Notification]] = {}  # profile -> oldest first
        self.dms: list[DirectMessage] = []
        self.follows: set[tuple[int, int]] = set()  # (follower, following)
        self.deleted: set[int] = set()
        self.replies: dict[int, list[int]] = {}
        self._counts: Counter[int] = Counter()
        self._idempotency: dict[tuple[int, str], float] = {}
        self._seq = FIRST_SEQ
        self._notification_id = 0
        self._demo_id: int | None = None

    # ------------------------------------------------------------------ clock and ids -----
    def now(self) -> datetime:
        """The live clock: the world's ``now`` plus the time since the app started (ms)."""
        elapsed = timedelta(seconds=self._clock() - self._start)
        when = self.world.now + elapsed
        return when.replace(microsecond=when.microsecond // 1000 * 1000)

    def _next_id(self, when: datetime) -> int:
        self._last_id = max(snowflake(when), self._last_id + 1)
        return self._last_id

    # ------------------------------------------------------------------- catalogue --------
    def account(self, account_id: int) -> Account | None:
        return self.accounts.get(account_id) or self.world.accounts.get(account_id)

    def account_of(self, post: Post) -> Account:
        account = self.account(post.account_id)
        if account is None:
            raise KeyError(post.account_id)
        return account

    def media_of(self, post: Post) -> list[Media]:
        return [self.media.get(i) or self.world.media[i] for i in post.media_ids]

    def statuses_count(self, account_id: int) -> int:
        return self.world.statuses_count(account_id) + self._counts[account_id]

    def replies_count(self, post_id: int) -> int:
        return sum(1 for i in self.replies.get(post_id, ()) if i not in self.deleted)

    def post(self, post_id: int) -> Post | None:
        """A status by id (world's or live), None when missing or deleted."""
        if post_id in self.deleted:
            return None
        return self.posts.get(post_id) or self.world.posts_by_id.get(post_id)

    def all_accounts(self) -> list[Account]:
        return [*self.world.accounts.values(), *self.accounts.values()]

    # -------------------------------------------------------------------- accounts --------
    def find_local(self, username: str) -> Account | None:
        """The local account with this username (case-insensitive)."""
        low = username.lower()
        return next((a for a in self.all_accounts() if a.local and a.username.lower() == low), None)

    def find_acct(self, acct: str) -> Account | None:
        """An account by ``username`` (local) or ``username@domain`` (remote)."""
        name, _, domain = acct.lstrip("@").partition("@")
        if not domain:
            return self.find_local(name)
        low = (name.lower(), domain.lower())
        return next((a for a in self.all_accounts()
                     if a.domain and (a.username.lower(), a.domain.lower()) == low), None)

    def add_account(self, username: str, *, domain: str | None = None, bio: str = "",
                    locked: bool = False, bot: bool = False, display_name: str | None = None,
                    seq: int | None = None) -> LiveAccount:
        """A new account (local unless ``domain``); its id is a snowflake of the world's ``now``
        minus :data:`ACCOUNT_AGE`, so it never meets a world id."""
        with self.lock:
            if self.find_acct(f"{username}@{domain}" if domain else username) is not None:
                raise ApiError(422, f"The username {username} has already been taken.")
            created = self.world.now - ACCOUNT_AGE
            if seq is None:
                seq, self._seq = self._seq, self._seq + 1
            account_id = snowflake(created, 3072 + seq)
            while self.account(account_id) is not None:
                account_id += 1
            account = LiveAccount(
                id=account_id, username=username, display_name=display_name or username, bio=bio,
                created_at=created, domain=domain, locked=locked, bot=bot,
                indexable=True if domain else None)
            self.accounts[account.id] = account
            return account

    @property
    def demo_id(self) -> int | None:
        return self._demo_id

    def demo_account(self) -> Account:
        """The demo user's account (``demo``), made on first use: a read-only session never
        sees it, so the world's answers stay as they were."""
        with self.lock:
            if self._demo_id is None:
                name = "demo"
                while self.find_local(name) is not None:
                    name += "_"
                self._demo_id = self.add_account(name, display_name="Demo user", seq=DEMO_SEQ).id
            return self.accounts[self._demo_id]

    def is_following(self, follower_id: int, following_id: int) -> bool:
        return (follower_id, following_id) in self.follows

    def follow(self, follower_id: int, following_id: int, on: bool = True) -> None:
        with self.lock:
            (self.follows.add if on else self.follows.discard)((follower_id, following_id))

    def visible_to(self, post: Post, viewer_id: int) -> bool:
        """StatusService::isVisibleTo: public and unlisted for all, private for the author and
        followers, direct for the author only."""
        if post.visibility in ("public", "unlisted"):
            return True
        if post.visibility == "private":
            return viewer_id == post.account_id or self.is_following(viewer_id, post.account_id)
        return viewer_id == post.account_id

    # ---------------------------------------------------------------------- media ---------
    def upload(self, owner: Account, data: bytes, mime: str, description: str | None) -> LiveMedia:
        """Stores an upload as sent and gives it a storage path like the world's media."""
        with self.lock:
            media_id = self._next_id(self.now())
            rng = random.Random(f"upload:{media_id}")
            path, _ = media_paths(rng, owner.id, EXTENSIONS[mime], legacy=False)
            width, height = header_size(data) if mime.startswith("image/") else (None, None)
            media = LiveMedia(
                id=media_id, post_id=0, account_id=owner.id,
                kind="video" if mime.startswith("video/") else "image", mime=mime,
                source=f"upload:{hashlib.sha256(data).hexdigest()}", path=path, thumb_path=path,
                width=width, height=height, description=description, size=len(data))
            self.media[media_id], self.blobs[media_id] = media, data
            self.media_by_path[path] = media_id
            return media

    def remote_media(self, owner: Account, url: str, description: str | None = None) -> LiveMedia:
        """A remote attachment: ``url`` is served as is (Pixelfed keeps the origin's URL)."""
        with self.lock:
            media_id = self._next_id(self.now())
            media = LiveMedia(id=media_id, post_id=0, account_id=owner.id, kind="image",
                              mime=mime_from_url(url), source=f"remote:{url}", path=url,
                              thumb_path=url, width=None, height=None, description=description,
                              remote=True)
            self.media[media_id] = media
            return media

    def unattached(self, owner_id: int, media_id: int) -> LiveMedia | None:
        """The owner's upload not yet in a status (what ``GET /api/v1/media/{id}`` may see)."""
        media = self.media.get(media_id)
        ok = media is not None and media.account_id == owner_id and not media.post_id
        return media if ok else None

    def describe(self, media: LiveMedia, description: str | None) -> LiveMedia:
        with self.lock:
            media = self.media[media.id] = replace(media, description=description)
            return media

    def _attach(self, owner: Account, media_ids: list[int], post_id: int) -> list[LiveMedia]:
        """ApiV1Controller::statusCreate's checks: none of the ids an unattached upload of the
        owner: 400; any one of them not: 404."""
        mine = [self.unattached(owner.id, i) for i in media_ids]
        if not any(mine):
            raise ApiError(400, "Invalid media_ids")
        if not all(mine):
            raise ApiError(404, "Record not found")
        return [replace(m, post_id=post_id) for m in mine if m is not None]

    # -------------------------------------------------------------------- statuses --------
    def claim_idempotency_key(self, account_id: int, key: str) -> bool:
        """False when the same user sent the same key within the hour (then the post is refused)."""
        with self.lock:
            now = self._clock()
            digest = (account_id, hashlib.sha1(key.encode()).hexdigest())
            if self._idempotency.get(digest, 0.0) > now:
                return False
            self._idempotency[digest] = now + IDEMPOTENCY_TTL_S
            return True

    def resolver(self, host: str) -> Callable[[text.Mention], Account | None]:
        """Resolves a mention: ``@name`` and ``@name@<this host>`` to local accounts, other
        domains to the remote accounts the instance knows."""
        def resolve(mention: text.Mention) -> Account | None:
            if mention.domain is None or mention.domain in (host.lower(), "localhost"):
                return self.find_local(mention.name)
            return self.find_acct(f"{mention.name}@{mention.domain}")
        return resolve

    def create_status(self, author: Account, *, status: str, host: str, media_ids: Sequence[int] = (),
                      parent: Post | None = None, visibility: str = "public",
                      sensitive: bool = False, spoiler_text: str | None = None,
                      comments_disabled: bool = False, remote_media: Sequence[str] = (),
                      kind: str = "live") -> LivePost:
        """A new status (reply when ``parent``) with its hashtags, mentions and notifications
        (StatusEntityLexer, CommentPipeline, MentionPipeline)."""
        with self.lock:
            created = self.now()
            post_id = self._next_id(created)
            media = self._attach(author, list(media_ids), post_id) if media_ids else []
            media += [replace(self.remote_media(author, url), post_id=post_id) for url in remote_media]
            resolve = self.resolver(host)
            mentioned = list(dict.fromkeys(a.id for a in map(resolve, text.mentions(status)) if a))
            tags = text.hashtags(status)
            post = LivePost(
                id=post_id, account_id=author.id, created_at=created, caption=status,
                hashtags=tuple(tags), media_ids=tuple(m.id for m in media),
                pf_type=pf_type([m.kind for m in media]) if media else ("reply" if parent else "text"),
                visibility=visibility, sensitive=sensitive, spoiler_text=spoiler_text or "",
                kind=kind, text=status, in_reply_to_id=parent.id if parent else None,
                in_reply_to_account_id=parent.account_id if parent else None,
                mention_ids=tuple(mentioned), comments_disabled=comments_disabled)
            for m in media:
                self.media[m.id] = m
            self._register_tags(tags)
            self.posts[post_id] = post
            self._counts[author.id] += 1
            if parent is not None:
                self.replies.setdefault(parent.id, []).append(post_id)
                self._notify(parent.account_id, author.id, "comment", post_id, created)
            for target in mentioned:
                self._notify(target, author.id, "mention", post_id, created)
            return post

    def _register_tags(self, tags: list[str]) -> None:
        for tag in tags:
            slug = slugify(tag)
            if self.world.hashtags.get(slug) is None and slug not in self.hashtags:
                next_id = len(self.world.hashtags) + len(self.hashtags) + 1
                self.hashtags[slug] = Hashtag(next_id, slug, slug, nsfw=slug in NSFW_TAGS)

    def delete_status(self, post: Post) -> None:
        """StatusDelete: the status, its uploads and the notifications about it go."""
        with self.lock:
            self.deleted.add(post.id)
            if post.visibility != "direct":
                self._counts[post.account_id] -= 1
            for media_id in post.media_ids:
                media = self.media.get(media_id)
                if media is not None and not media.remote:
                    self.media_by_path.pop(media.path, None)
                    self.blobs.pop(media_id, None)
            for rows in self.notifications.values():
                rows[:] = [n for n in rows if n.item_id != post.id or n.action == "dm"]

    # --------------------------------------------------------------- notifications --------
    def _notify(self, target_id: int, actor_id: int, action: str, item_id: int,
                when: datetime) -> None:
        """CommentPipeline / MentionPipeline: local targets only, never oneself, one mention or
        comment per (target, actor, status)."""
        target = self.account(target_id)
        if target is None or not target.local or target_id == actor_id:
            return
        rows = self.notifications.setdefault(target_id, [])
        if action in ("mention", "comment") and any(
                n.actor_id == actor_id and n.item_id == item_id and n.action in ("mention", "comment")
                for n in rows):
            return
        self._notification_id += 1
        rows.append(Notification(self._notification_id, target_id, actor_id, action, item_id, when))

    def notifications_of(self, profile_id: int) -> list[Notification]:
        """A profile's notifications, newest first (a snapshot)."""
        with self.lock:
            return list(reversed(self.notifications.get(profile_id, [])))

    # ------------------------------------------------------------- direct messages --------
    def send_dm(self, sender: Account, recipient: Account, message: str, kind: str,
                host: str) -> DirectMessage:
        """DirectMessageController::create: a ``direct`` status plus the message, hidden (a
        message request) when the recipient is local (``public_dm`` is off by default) or
        locked and does not follow the sender."""
        with self.lock:
            hidden = (recipient.local or recipient.locked) and not self.is_following(recipient.id, sender.id)
            created = self.now()
            status = LivePost(  # no lexer runs on a direct message: no tags, no mentions
                id=self._next_id(created), account_id=sender.id, created_at=created,
                caption=message, hashtags=(), media_ids=(), pf_type="text", visibility="direct",
                kind="direct", text=message, in_reply_to_account_id=recipient.id)
            self.posts[status.id] = status
            meta = None
            if text.is_url(message):
                kind = "link"
                domain = text.url_host(message)
                meta = {"domain": domain, "local": domain == host}
            dm = DirectMessage(len(self.dms) + 1, sender.id, recipient.id, status.id, hidden, kind,
                               status.created_at, meta)
            self.dms.append(dm)
            if not hidden:
                self._notify(recipient.id, sender.id, "dm", dm.id, status.created_at)
            return dm

    def thread(self, viewer_id: int, other_id: int, *, max_id: int | None = None,
               min_id: int | None = None, take: int = 8) -> list[DirectMessage]:
        """The latest ``take`` messages between two accounts (newest first)."""
        with self.lock:
            pair = {viewer_id, other_id}
            rows = [d for d in reversed(self.dms) if {d.from_id, d.to_id} == pair
                    and d.status_id not in self.deleted]
        if min_id:
            rows = [d for d in rows if d.id > min_id]
        elif max_id:
            rows = [d for d in rows if d.id < max_id]
        return rows[:take]
