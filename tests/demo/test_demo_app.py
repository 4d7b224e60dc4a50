"""The demo instance over real HTTP on 127.0.0.1 (app, errors, entities, media, control), checked
against ../shared/pixelfed-api.md."""

from __future__ import annotations

import re
import socket
import threading
from urllib.parse import urlsplit

import pytest
import requests

from pixtag_demo.app import DemoInstance
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


def test_per_media_nsfw_is_only_visible_with_pe(http: requests.Session, demo: DemoInstance,
                                                world: World) -> None:
    trap = next(t for t in world.traps if t.kind == "media_nsfw")
    path = f"/api/v1/statuses/{trap.post_id}"
    plain = _get(http, demo, path).json()
    rich = _get(http, demo, path, _pe=1).json()
    assert plain["sensitive"] is False and "is_nsfw" not in plain["media_attachments"][0]
    assert rich["media_attachments"][0]["is_nsfw"] in (True, 1)


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
