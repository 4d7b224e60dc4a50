"""The timelines (pixtag_demo.routes.timelines) over real HTTP, checked against ../shared/pixelfed-api.md §1."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pixtag_demo.app import DemoInstance
from pixtag_demo.routes.timelines import public_link
from pixtag_demo.world.entities import PUBLIC_FALLOFF, snowflake
from pixtag_demo.world.model import World

pytestmark = pytest.mark.slow



def _get(http: requests.Session, demo: DemoInstance, path: str,
         **params: object) -> requests.Response:
    return http.get(demo.url + path, params=params, timeout=10)


def _status_path(world: World, visibility: str) -> str:
    post = next(p for p in world.posts if p.visibility == visibility and p.media_ids)
    return f"/api/v1/statuses/{post.id}"


# --------------------------------------------------------------------- public timeline ----
def test_public_timeline_limit_defaults_to_20_and_is_capped_at_40(http: requests.Session,
                                                                  demo: DemoInstance) -> None:
    assert len(_get(http, demo, "/api/v1/timelines/public").json()) == 20
    assert len(_get(http, demo, "/api/v1/timelines/public", limit=80).json()) == 40
    assert len(_get(http, demo, "/api/v1/timelines/public", limit=7).json()) == 7
    bad = _get(http, demo, "/api/v1/timelines/public", limit=0)
    assert bad.status_code == 422 and "limit" in bad.json()["errors"]
    bad = _get(http, demo, "/api/v1/timelines/public", max_id="abc")
    assert bad.status_code == 422
    assert bad.json()["message"] == "The max id field must be an integer."


def _page_public(http: requests.Session, demo: DemoInstance, **flags: object) -> list[dict]:
    out, max_id = [], None
    while True:
        params = {"limit": 40, **flags, **({"max_id": max_id} if max_id else {})}
        page = _get(http, demo, "/api/v1/timelines/public", **params).json()
        if not page:
            return out
        out += page
        max_id = min(int(s["id"]) for s in page)


def test_public_timeline_flags_select_local_remote_or_both(http: requests.Session,
                                                           demo: DemoInstance,
                                                           world: World) -> None:
    cutoff = snowflake(world.now - PUBLIC_FALLOFF)

    def expected(local: bool) -> set[str]:
        return {str(p.id) for p in world.posts if p.visibility == "public" and p.media_ids
                and p.id > cutoff and world.account_of(p).local == local}

    default = {s["id"] for s in _page_public(http, demo)}
    local = {s["id"] for s in _page_public(http, demo, local=1)}
    remote = {s["id"] for s in _page_public(http, demo, remote=1)}
    both = _page_public(http, demo, local=1, remote="true")
    assert default == local == expected(True)
    assert remote == expected(False) and remote
    assert {s["id"] for s in both} == local | remote
    assert len(both) == len({s["id"] for s in both})  # no post twice
    ids = [int(s["id"]) for s in both]
    assert ids == sorted(ids, reverse=True)


def test_public_timeline_has_only_recent_top_level_public_media_posts(http: requests.Session,
                                                                      demo: DemoInstance,
                                                                      world: World) -> None:
    posts = _page_public(http, demo, local=1, remote=1)
    oldest = world.now - PUBLIC_FALLOFF
    for status in posts:
        post = world.posts_by_id[int(status["id"])]
        assert status["visibility"] == "public" and status["media_attachments"]
        assert status["in_reply_to_id"] is None and status["reblog"] is None
        assert post.created_at > oldest
    assert any(s["sensitive"] for s in posts)  # sensitive posts are not hidden
    assert any(world.account_of(world.posts_by_id[int(s["id"])]).locked for s in posts)


def test_public_timeline_link_header_pages_like_pixelfed(http: requests.Session,
                                                         demo: DemoInstance) -> None:
    resp = _get(http, demo, "/api/v1/timelines/public", limit=5, _pe=1)
    ids = [int(s["id"]) for s in resp.json()]
    links = requests.utils.parse_header_links(resp.headers["link"])
    rels = {link["rel"]: link["url"] for link in links}
    assert parse_qs(urlsplit(rels["next"]).query) == {"limit": ["5"], "_pe": ["1"],
                                                      "max_id": [str(min(ids))]}
    assert parse_qs(urlsplit(rels["prev"]).query)["min_id"] == [str(max(ids))]
    following = http.get(rels["next"], timeout=10).json()
    assert max(int(s["id"]) for s in following) < min(ids)
    flags = _get(http, demo, "/api/v1/timelines/public", limit=3, remote=1, local=1)
    assert "limit=3&remote=1&local=1&max_id=" in flags.headers["link"]


def test_a_one_item_page_links_an_empty_max_id(http: requests.Session, demo: DemoInstance) -> None:
    resp = _get(http, demo, "/api/v1/timelines/public", limit=1)
    assert len(resp.json()) == 1
    assert resp.headers["link"] == (f'<{demo.url}/api/v1/timelines/public?limit=1&max_id=>; '
                                    'rel="next"')
    # following it naively starts over (max_id= is empty, i.e. absent)
    again = http.get(f"{demo.url}/api/v1/timelines/public?limit=1&max_id=", timeout=10).json()
    assert again == resp.json()


def test_public_link_builder_matches_the_php_rules(world: World) -> None:
    posts = world.posts[:3]
    assert public_link("B", [], limit=3, pe=False, remote=False, local=False) is None
    short = public_link("B", posts[:2], limit=3, pe=False, remote=False, local=False)
    assert short is not None and 'rel="next"' in short and 'rel="prev"' in short
    assert public_link("B", posts[:1], limit=3, pe=False, remote=False, local=False) is None


# ----------------------------------------------------------------------- tag timeline -----
def _page_tag(http: requests.Session, demo: DemoInstance, tag: str,
              **params: object) -> list[list[dict]]:
    pages, max_id = [], None
    while True:
        query = {"limit": 40, **params, **({"max_id": max_id} if max_id else {})}
        resp = _get(http, demo, f"/api/v1/timelines/tag/{tag}", **query)
        assert resp.status_code == 200 and "link" not in resp.headers
        page = resp.json()
        if not page:
            return pages
        pages.append(page)
        max_id = min(int(s["id"]) for s in page)


@pytest.mark.parametrize("tag", ["cat", "BirdPhotography"])
def test_tag_timeline_pages_to_the_end_with_every_post_once(http: requests.Session,
                                                            demo: DemoInstance, world: World,
                                                            tag: str) -> None:
    ids = [int(s["id"]) for page in _page_tag(http, demo, tag) for s in page]
    assert len(ids) == len(set(ids))
    wall = world.tag_wall
    slug = tag.lower()
    expected = {p.id for p in world.posts if slug in p.slugs and p.visibility == "public"
                and p.media_ids and p.created_at >= wall}
    assert expected <= set(ids)  # none missing
    for extra in set(ids) - expected:  # only posts just past the wall can slip in
        assert world.posts_by_id[extra].created_at < wall
    for i in ids:
        post = world.posts_by_id[i]
        assert post.visibility == "public" and post.media_ids


def test_tag_timeline_limit_defaults_to_20_and_is_capped_at_40(http: requests.Session,
                                                               demo: DemoInstance) -> None:
    assert len(_get(http, demo, "/api/v1/timelines/tag/cat").json()) == 20
    assert len(_get(http, demo, "/api/v1/timelines/tag/cat", limit=80).json()) == 40
    assert _get(http, demo, "/api/v1/timelines/tag/cat", limit=0).status_code == 422


def test_tag_timeline_scans_100_rows_so_pages_can_be_short(http: requests.Session,
                                                           demo: DemoInstance,
                                                           world: World) -> None:
    pages = _page_tag(http, demo, "nofilter")
    sizes = [len(p) for p in pages]
    assert sizes[0] < 40 and len(pages) >= 2  # a short page is not the end
    rows = [p for p in world.posts if "nofilter" in p.slugs and p.visibility != "direct"]
    first_100 = rows[:100]
    assert sizes[0] == sum(p.visibility == "public" for p in first_100)


def test_tag_timeline_matches_name_or_slug_case_insensitively(http: requests.Session,
                                                              demo: DemoInstance) -> None:
    lower = _get(http, demo, "/api/v1/timelines/tag/catsofpixelfed").json()
    camel = _get(http, demo, "/api/v1/timelines/tag/CatsOfPixelfed").json()
    assert lower and [s["id"] for s in lower] == [s["id"] for s in camel]
    assert _get(http, demo, "/api/v1/timelines/tag/nosuchtagatall").json() == []


def test_tag_timeline_stops_at_the_six_month_wall(http: requests.Session, demo: DemoInstance,
                                                  world: World) -> None:
    past_wall = snowflake(world.tag_wall - timedelta(days=1))
    assert _get(http, demo, "/api/v1/timelines/tag/cat", max_id=past_wall).json() == []
    assert _get(http, demo, "/api/v1/timelines/tag/cat", min_id=past_wall).json() == []
    inside = snowflake(world.tag_wall + timedelta(days=5))
    page = _get(http, demo, "/api/v1/timelines/tag/cat", max_id=inside, limit=40).json()
    assert page and all(int(s["id"]) < inside for s in page)


def test_tag_timeline_only_media_and_sensitive(http: requests.Session, demo: DemoInstance,
                                               world: World) -> None:
    text_posts = {str(p.id) for p in world.posts
                  if not p.media_ids and "cat" in p.slugs and p.visibility == "public"}
    assert text_posts
    with_media = {s["id"] for page in _page_tag(http, demo, "cat") for s in page}
    everything = {s["id"] for page in _page_tag(http, demo, "cat", only_media=0) for s in page}
    assert text_posts.isdisjoint(with_media) and text_posts <= everything
    statuses = [s for page in _page_tag(http, demo, "cat") for s in page]
    assert any(s["sensitive"] and s["spoiler_text"] for s in statuses)
    assert any(s["sensitive"] and not s["spoiler_text"] for s in statuses)


def test_min_id_gives_the_newest_posts_above_it(http: requests.Session, demo: DemoInstance,
                                                world: World) -> None:
    newest = _get(http, demo, "/api/v1/timelines/tag/dog", limit=40).json()
    floor = int(newest[-1]["id"])
    above = _get(http, demo, "/api/v1/timelines/tag/dog", min_id=floor - 1, limit=5).json()
    assert [s["id"] for s in above] == [s["id"] for s in newest[:5]]


# ------------------------------------------------------------- entities in the timelines ---
def test_hashtags_are_lowercased_in_tags_but_keep_their_case_in_content(http: requests.Session,
                                                                        demo: DemoInstance,
                                                                        world: World) -> None:
    statuses = [s for page in _page_tag(http, demo, "CatsOfPixelfed") for s in page]
    linked = [s for s in statuses if 'title="#CatsOfPixelfed"' in s["content"]]
    assert linked
    for status in linked:
        names = [t["name"] for t in status["tags"]]
        assert not names or "catsofpixelfed" in names
        assert all(n == n.lower() for n in names)
    assert any(s["tags"] == [] for s in statuses)  # tags: [] while the content has the links


def test_real_world_variance_reaches_the_json(http: requests.Session, demo: DemoInstance,
                                              world: World) -> None:
    statuses = _page_public(http, demo, local=1, remote=1, _pe=1)
    media = [m for s in statuses for m in s["media_attachments"]]
    assert any(m["type"] == "Image" for m in media)
    assert any(m["meta"] is None for m in media)
    assert any(m["is_nsfw"] in (0, 1) and not isinstance(m["is_nsfw"], bool) for m in media)
    assert any(re.search(r"/storage/m/[0-9a-f]{40}/[0-9a-f]{40}/", m["url"]) for m in media)
    assert any(isinstance(s["favourites_count"], str) for s in statuses)
    assert any(s["created_at"].endswith("000Z") and len(s["created_at"]) == 27 for s in statuses)
    assert any(s["favourited"] is None for s in statuses)
