"""pixtag.sources.pixelfed.Client, unchanged, against the demo instance (what every later stage does)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pixtag.sources.pixelfed import AuthError, Client
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.model import World

pytestmark = pytest.mark.slow


def test_instance_info(client: Client, world: World) -> None:
    info = client.instance()
    assert info.version.endswith("Pixelfed 0.12.5)")
    assert info.status_count == sum(1 for p in world.posts if world.account_of(p).local)
    assert info.image_size_limit and "image/jpeg" in info.supported_mime_types


def test_iter_hashtag_reaches_every_clean_image_of_each_class(client: Client,
                                                              world: World) -> None:
    for cls in world.classes:
        photos = set()
        for tag in world.class_tags[cls]:
            for status in client.iter_hashtag(tag):
                post = world.posts_by_id[int(status.id)]
                if post.kind == "clean":
                    photos |= {world.media[m].photo for m in post.media_ids}
        assert photos == set(world.clean_images[cls])
        assert len(photos) >= 160
    assert not client.unparseable


def test_statuses_parse_with_hashtags_from_tags_or_content(client: Client, world: World) -> None:
    statuses = list(client.iter_hashtag("cat"))
    assert len(statuses) == len({s.id for s in statuses})
    for status in statuses:
        post = world.posts_by_id[int(status.id)]
        assert {h.lower() for h in status.hashtags} == set(post.slugs)
        if "tags_empty" in post.quirks:
            assert status.tag_names == ()
        assert status.snowflake_time == post.created_at
        assert status.created_at is not None  # "+00:00" variants carry no milliseconds
        assert abs(status.created_at - post.created_at) < timedelta(seconds=1)
        for media in status.media_attachments:
            assert media.type in ("image", "video")
            assert media.mime and media.url and media.url.startswith(client.base_url)
    assert any("CatsOfPixelfed" in s.hashtags for s in statuses)
    assert any(s.sensitive for s in statuses)
    assert any(m.is_nsfw for s in statuses for m in s.media_attachments)


def test_iter_public_samples_recent_posts(client: Client, world: World) -> None:
    statuses = list(client.iter_public(1000, local=True, remote=True))
    assert 600 <= len(statuses) <= 1000
    assert len({s.id for s in statuses}) == len(statuses)
    assert not client.unparseable
    ids = [int(s.id) for s in statuses]
    assert ids == sorted(ids, reverse=True)


def test_status_trending_and_remote_accounts(client: Client, world: World) -> None:
    trap = next(t for t in world.traps if t.kind == "not_indexable")
    status = client.status(str(trap.post_id))
    assert status.account.indexable is False and "@" in status.account.acct
    assert status.pf_type == "photo"
    opted = next(t for t in world.traps if t.kind == "opt_out_bio")
    assert opted.detail in client.status(str(opted.post_id)).account.note
    trending = client.trending_hashtags()
    assert 5 <= len(trending) <= 20 and trending[0].total >= trending[-1].total


def test_auth_failures_are_auth_errors_without_retries(
        demo: DemoInstance, make_client: Callable[..., Client]) -> None:
    with make_client(demo.url, token="wrong-token", max_retries=3) as bad:
        with pytest.raises(AuthError, match="Unauthenticated"):
            bad.hashtag_timeline("cat")
        assert bad.http.retries == 0
