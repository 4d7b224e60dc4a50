"""Where statuses show, world's and live together: the public and hashtag timelines (the
world's selection rules, :mod:`pixtag_demo.world.model`, plus the live statuses that pass the
same rules), hashtag lookups and a status's context.

Live statuses are newer than every world post, so they come first; a page holds at most
``limit`` of both. The hashtag timeline's 100-row scan window counts world rows only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixtag_demo.world.entities import MAX_LIMIT, Hashtag, Post, slugify, snowflake

if TYPE_CHECKING:
    from pixtag_demo.live.entities import LivePost
    from pixtag_demo.world.model import World

CONTEXT_DESCENDANTS = 20


class Feeds:
    """Read queries of :class:`~pixtag_demo.live.store.Live` (a mixin)."""

    world: World
    posts: dict[int, LivePost]
    deleted: set[int]
    hashtags: dict[str, Hashtag]
    replies: dict[int, list[int]]

    def post(self, post_id: int) -> Post | None:
        raise NotImplementedError

    def _live(self) -> list[LivePost]:
        """Live statuses, newest first, deleted ones left out."""
        return [p for p in reversed(list(self.posts.values())) if p.id not in self.deleted]

    @staticmethod
    def _window(posts: list[Post], max_id: int | None, min_id: int | None) -> list[Post]:
        if min_id:
            return [p for p in posts if p.id > min_id]
        if max_id:
            return [p for p in posts if p.id < max_id]
        return posts

    def _merge(self, world: list[Post], live: list[Post], limit: int) -> list[Post]:
        kept = [p for p in world if p.id not in self.deleted]
        return sorted([*live, *kept], key=lambda p: -p.id)[:max(1, min(limit, MAX_LIMIT))]

    def public_timeline(self, *, local: bool = True, remote: bool = False,
                        max_id: int | None = None, min_id: int | None = None,
                        limit: int = 20) -> list[Post]:
        """:meth:`World.public_timeline` plus live top-level public statuses with media."""
        world = self.world.public_timeline(local=local, remote=remote, max_id=max_id,
                                           min_id=min_id, limit=limit)
        want = {True: local or not remote, False: remote}  # by the author being local
        live = [p for p in self._live() if p.visibility == "public" and p.media_ids
                and p.in_reply_to_id is None and want[self._is_local(p)]]
        return self._merge(world, self._window(live, max_id, min_id), limit)

    def _is_local(self, post: Post) -> bool:
        account = self.account_of(post)  # type: ignore[attr-defined]
        return bool(account.local)

    def tag_timeline(self, tag: str, *, max_id: int | None = None, min_id: int | None = None,
                     limit: int = 20, only_media: bool = True) -> list[Post]:
        """:meth:`World.tag_timeline` plus live public statuses carrying the tag."""
        hashtag = self.find_hashtag(tag)
        if hashtag is None:
            return []
        wall = snowflake(self.world.tag_wall)
        if (min_id and min_id < wall) or (max_id and max_id < wall):
            return []
        world = self.world.tag_timeline(tag, max_id=max_id, min_id=min_id, limit=limit,
                                        only_media=only_media)
        live = [p for p in self._live() if hashtag.slug in p.slugs and p.visibility == "public"
                and (p.media_ids or not only_media)]
        return self._merge(world, self._window(live, max_id, min_id), limit)

    def find_hashtag(self, name: str) -> Hashtag | None:
        return self.world.find_hashtag(name) or self.hashtags.get(slugify(name))

    def tag_count(self, slug: str) -> int:
        """Public statuses carrying a tag (``HashtagService::count``)."""
        live = sum(1 for p in self._live() if slug in p.slugs and p.visibility == "public")
        return self.world.tag_count(slug) + live

    def context(self, post: Post) -> tuple[list[Post], list[Post]]:
        """``statusContext``: the parent only (Pixelfed does not walk further up) and at most
        :data:`CONTEXT_DESCENDANTS` direct replies, oldest first."""
        parent_id = getattr(post, "in_reply_to_id", None)
        parent = self.post(parent_id) if parent_id else None
        children = [self.post(i) for i in self.replies.get(post.id, [])]
        kept = [c for c in children if c is not None][:CONTEXT_DESCENDANTS]
        return ([parent] if parent else []), kept
