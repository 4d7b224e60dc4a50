"""The demo instance over real HTTP on 127.0.0.1, checked against ../shared/pixelfed-api.md."""

from __future__ import annotations

import re
import socket
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pixtag_demo.app import DemoInstance
from pixtag_demo.routes.timelines import public_link
from pixtag_demo.world.entities import PUBLIC_FALLOFF, snowflake
from pixtag_demo.world.model import World

pytestmark = pytest.mark.slow

API_PATHS = (
    "/api/v1/timelines/public",
    "/api/v1/timelines/tag/cat",
    "/api/v1.1/discover/posts/hashtags",
    "/api/pixelfed/v1/discover/posts/hashtags",
    "/api/v1/tags/cat",
)


def _get(http: requests.Session, demo: DemoInstance, path: str,
         **params: object) -> requests.Response:
    return http.get(demo.url + path, params=params, timeout=10)


def _status_path(world: World, visibility: str) -> str:
    post = next(p for p in world.posts if p.visibility == visibility and p.media_ids)
    return f"/api/v1/statuses/{post.id}"


# ------------------------------------------------------------------------------- auth -----
@pytest.mark.parametrize("path", API_PATHS)
def test_no_token_with_json_accept_is_a_500_unauthenticated(demo: DemoInstance, path: str) -> None:
    resp = requests.get(demo.url + path, headers={"Accept": "application/json"}, timeout=10)
    assert resp.status_code == 500
    assert resp.json() == {"error": "Unauthenticated."}


@pytest.mark.parametrize("path", API_PATHS)
def test_no_token_without_json_accept_redirects_to_login(demo: DemoInstance, path: str) -> None:
    resp = requests.get(demo.url + path, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["location"] == f"{demo.url}/login"
    assert requests.get(demo.url + path, timeout=10).url == f"{demo.url}/login"


def test_a_wrong_token_is_unauthenticated_too(demo: DemoInstance, world: World) -> None:
    for path in (*API_PATHS, _status_path(world, "public")):
        resp = requests.get(demo.url + path, timeout=10, headers={
            "Authorization": "Bearer nope", "Accept": "application/json"})
        assert (resp.status_code, resp.json()) == (500, {"error": "Unauthenticated."})


def test_instance_info_needs_no_token(demo: DemoInstance, world: World) -> None:
    v1 = requests.get(demo.url + "/api/v1/instance", timeout=10).json()
    assert v1["version"] == "3.5.3 (compatible; Pixelfed 0.12.5)"
    assert v1["uri"] == urlsplit(demo.url).netloc
    assert isinstance(v1["stats"]["status_count"], str) and int(v1["stats"]["status_count"]) > 0
    media = v1["configuration"]["media_attachments"]
    assert "image/jpeg" in media["supported_mime_types"] and media["image_size_limit"] > 0
    v2 = requests.get(demo.url + "/api/v2/instance", timeout=10).json()
    assert v2["domain"] == v1["uri"]
    assert v2["configuration"]["media_attachments"]["image_size_limit"] != media["image_size_limit"]
    links = requests.get(demo.url + "/.well-known/nodeinfo", timeout=10).json()["links"]
    nodeinfo = requests.get(links[0]["href"], timeout=10).json()
    assert nodeinfo["software"]["name"] == "pixelfed"
    assert nodeinfo["usage"]["users"]["total"] == v1["stats"]["user_count"]


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


# ------------------------------------------------------------------------- entities -------
def test_statuses_have_mastodon_shape_and_pe_adds_pixelfed_fields(http: requests.Session,
                                                                  demo: DemoInstance) -> None:
    plain = _get(http, demo, "/api/v1/timelines/tag/cat", limit=40).json()
    rich = _get(http, demo, "/api/v1/timelines/tag/cat", limit=40, _pe=1).json()
    assert [s["id"] for s in plain] == [s["id"] for s in rich]
    for status in plain:
        assert isinstance(status["id"], str) and status["id"].isdigit()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}Z|\.\d{6}Z|\+00:00)",
                            status["created_at"])
        assert "pf_type" not in status and "content_text" not in status
        assert "is_nsfw" not in status["media_attachments"][0]
        assert 'class="u-url hashtag"' in status["content"]
        assert status["account"]["discoverable"] is True
    for status in rich:
        assert status["pf_type"] in ("photo", "photo:album", "video")
        assert status["content_text"].startswith(status["content_text"].split(" #")[0])
        for media in status["media_attachments"]:
            assert {"mime", "license", "is_nsfw", "orientation", "optimized_url"} <= set(media)
            assert media["license"] is None or {"id", "title", "url"} <= set(media["license"])
        assert {"local", "note_text", "is_admin"} <= set(status["account"])


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


def test_per_media_nsfw_is_only_visible_with_pe(http: requests.Session, demo: DemoInstance,
                                                world: World) -> None:
    trap = next(t for t in world.traps if t.kind == "media_nsfw")
    path = f"/api/v1/statuses/{trap.post_id}"
    plain = _get(http, demo, path).json()
    rich = _get(http, demo, path, _pe=1).json()
    assert plain["sensitive"] is False and "is_nsfw" not in plain["media_attachments"][0]
    assert rich["media_attachments"][0]["is_nsfw"] in (True, 1)


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


def test_status_by_id(http: requests.Session, demo: DemoInstance, world: World) -> None:
    public = _get(http, demo, _status_path(world, "public"), _pe=1)
    assert public.status_code == 200 and public.json()["pf_type"]
    assert _get(http, demo, _status_path(world, "unlisted")).status_code == 200
    private = _get(http, demo, _status_path(world, "private"))
    assert private.status_code == 403 and "error" in private.json()
    assert _get(http, demo, _status_path(world, "direct")).status_code == 400
    assert _get(http, demo, "/api/v1/statuses/1").status_code == 404
    assert _get(http, demo, "/api/v1/statuses/not-a-number").status_code == 404


def test_trending_hashtags(http: requests.Session, demo: DemoInstance, world: World) -> None:
    for path in ("/api/v1.1/discover/posts/hashtags", "/api/pixelfed/v1/discover/posts/hashtags"):
        items = _get(http, demo, path).json()
        assert 5 <= len(items) <= 20
        totals = [i["total"] for i in items]
        assert totals == sorted(totals, reverse=True)
        for item in items:
            assert set(item) == {"id", "total", "name", "hashtag", "url"}
            assert item["name"] == "#" + item["hashtag"]
            assert item["hashtag"] != "nsfw"
        assert {c for c in world.classes} & {i["hashtag"] for i in items}
    assert _get(http, demo, "/api/v1/trends").json() == []


def test_tag_info(http: requests.Session, demo: DemoInstance, world: World) -> None:
    info = _get(http, demo, "/api/v1/tags/Cats", _pe=1).json()
    assert info["name"] == "cats" and info["history"] == [] and info["following"] is False
    assert info["count"] == world.tag_count("cats") > 0
    assert "count" not in _get(http, demo, "/api/v1/tags/cats").json()
    unknown = _get(http, demo, "/api/v1/tags/nosuchtag").json()
    assert unknown["name"] == "nosuchtag" and unknown["history"] == []


# ---------------------------------------------------------------------------- media -------
def test_media_is_served_with_type_and_length_and_no_auth(demo: DemoInstance, world: World) -> None:
    wanted = {"image/jpeg", "image/png", "image/gif", "video/mp4"}
    for mime in sorted(wanted):
        media = next(m for m in world.media.values() if m.mime == mime)
        resp = requests.get(demo.url + media.path, timeout=10)
        assert resp.status_code == 200, media.path
        assert resp.headers["content-type"] == mime
        assert int(resp.headers["content-length"]) == len(resp.content)
        assert resp.content == world.media_bytes(media)
        thumb = requests.get(demo.url + media.thumb_path, timeout=10)
        assert thumb.status_code == 200 and thumb.content
    legacy = next(m for m in world.media.values() if "legacy_path" in m.quirks)
    assert requests.get(demo.url + legacy.path, timeout=10).status_code == 200
    assert requests.get(demo.url + "/storage/m/_v2/1/nothing.jpg", timeout=10).status_code == 404


# -------------------------------------------------------------------------- control -------
def test_control_endpoints(fresh_demo: DemoInstance, world: World) -> None:
    url = fresh_demo.url
    summary = requests.get(url + "/_demo/world", timeout=10).json()
    assert summary["classes"] == world.classes
    assert summary["traps"]["duplicate_near"]["cat"] >= 1
    requests.delete(url + "/_demo/stats", timeout=10)
    for _ in range(3):
        requests.get(url + "/api/v1/instance", timeout=10)
    requests.get(url + world.media[next(iter(world.media))].path, timeout=10)
    stats = requests.get(url + "/_demo/stats", timeout=10).json()
    assert stats["requests"]["instance"] == 3 and stats["requests"]["media"] == 1
    assert stats["api_requests"] == len(stats["api_times"]) == 3
    assert stats["api_times"] == sorted(stats["api_times"])
    assert stats["since"] <= stats["api_times"][0] <= stats["now"]
    assert stats["statuses"]["200"] >= 4


def test_demo_instance_frees_its_port_and_thread(world: World) -> None:
    before = {t.name for t in threading.enumerate()}
    with DemoInstance(world=world) as instance:
        port = instance.port
        assert requests.get(instance.url + "/api/v1/instance", timeout=10).ok
    assert {t.name for t in threading.enumerate()} <= before
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    with DemoInstance(world=world, port=port) as again:  # the port can be reused at once
        assert again.port == port


# ---------------------------------------------------------------------------- OAuth -------
OOB = "urn:ietf:wg:oauth:2.0:oob"


def _register(demo: DemoInstance, redirect: str = OOB) -> dict:
    resp = requests.post(f"{demo.url}/api/v1/apps", timeout=10,
                         data={"client_name": "pixtag", "redirect_uris": redirect,
                               "scopes": "read"})
    assert resp.status_code == 200
    return resp.json()


def _code(demo: DemoInstance, app: dict, scope: str = "read") -> str:
    page = requests.get(f"{demo.url}/oauth/authorize", timeout=10, params={
        "client_id": app["client_id"], "redirect_uri": OOB, "response_type": "code",
        "scope": scope})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    return re.search(r'<pre id="code">([^<]+)</pre>', page.text)[1]


def _exchange(demo: DemoInstance, app: dict, code: str, **extra: str) -> requests.Response:
    return requests.post(f"{demo.url}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
        "client_secret": app["client_secret"], "redirect_uri": OOB, **extra})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def test_oauth_code_flow_issues_a_working_user_token(demo: DemoInstance) -> None:
    app = _register(demo)
    assert {"id", "name", "client_id", "client_secret", "redirect_uri"} <= set(app)
    code = _code(demo, app)
    resp = _exchange(demo, app, code)
    body = resp.json()
    assert resp.status_code == 200 and body["token_type"] == "Bearer"
    assert body["scope"] == "read" and body["expires_in"] > 0 and body["access_token"]
    timeline = requests.get(f"{demo.url}/api/v1/timelines/tag/cat", timeout=10,
                            headers=_bearer(body["access_token"]))
    assert timeline.status_code == 200 and timeline.json()
    reused = _exchange(demo, app, code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_oauth_redirects_with_the_code_and_state(demo: DemoInstance) -> None:
    app = _register(demo, "http://127.0.0.1:9/callback")
    resp = requests.get(f"{demo.url}/oauth/authorize", allow_redirects=False, timeout=10,
                        params={"client_id": app["client_id"], "response_type": "code",
                                "redirect_uri": "http://127.0.0.1:9/callback", "state": "xyz"})
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert resp.headers["location"].startswith("http://127.0.0.1:9/callback?")
    assert query["state"] == ["xyz"] and query["code"][0] in resp.text
    token = requests.post(f"{demo.url}/oauth/token", timeout=10, json={
        "grant_type": "authorization_code", "code": query["code"][0],
        "client_id": app["client_id"], "client_secret": app["client_secret"],
        "redirect_uri": "http://127.0.0.1:9/callback"})
    assert token.status_code == 200 and token.json()["scope"] == "follow read write"


def test_oauth_errors(demo: DemoInstance) -> None:
    app = _register(demo)
    wrong = _exchange(demo, app, _code(demo, app), client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    params = {"client_id": "999", "redirect_uri": OOB, "response_type": "code"}
    unknown = requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10)
    assert unknown.status_code == 401
    params = {"client_id": app["client_id"], "redirect_uri": OOB, "response_type": "token"}
    assert requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10).status_code \
        == 400
    params = {**params, "response_type": "code", "redirect_uri": "https://evil.example/"}
    assert requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10).status_code \
        == 401
    bad_grant = requests.post(f"{demo.url}/oauth/token", data={"grant_type": "password"},
                              timeout=10)
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    missing = requests.post(f"{demo.url}/api/v1/apps", data={"client_name": "x"}, timeout=10)
    assert missing.status_code == 422 and "redirect_uris" in missing.json()["errors"]


def test_app_only_and_scope_less_tokens_get_403(demo: DemoInstance, world: World) -> None:
    app = _register(demo)
    app_token = requests.post(f"{demo.url}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": "read"}).json()["access_token"]
    for path in ("/api/v1/timelines/tag/cat", "/api/v1.1/discover/posts/hashtags",
                 _status_path(world, "public"), "/api/v1/timelines/public"):
        resp = requests.get(demo.url + path, headers=_bearer(app_token), timeout=10)
        assert resp.status_code == 403, path
    trends = requests.get(f"{demo.url}/api/v1/trends", headers=_bearer(app_token), timeout=10)
    assert trends.json() == []
    write_only = _exchange(demo, app, _code(demo, app, scope="write")).json()["access_token"]
    resp = requests.get(f"{demo.url}/api/v1/timelines/tag/cat", headers=_bearer(write_only),
                        timeout=10)
    assert resp.status_code == 403
