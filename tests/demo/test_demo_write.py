"""The instance's write path, checked against Pixelfed's (ApiV1Controller statusCreate,
mediaUpload, statusContext, statusDelete): scopes, uploads, statuses, visibility, replies,
mentions, the bot account, the control endpoints the bot's tests use, and a world left as
it was. One shared instance (``live_demo``); each test posts as accounts of its own."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from pixtag_demo.app import DemoInstance
from pixtag_demo.world.builder import build_world
from pixtag_demo.world.model import World
from tests.conftest import DEMO_TOKEN
from tests.demo.conftest import User

pytestmark = pytest.mark.slow

UserMaker = Callable[..., User]


@pytest.fixture(scope="module")
def jpeg(photos: Path) -> bytes:
    return sorted((photos / "cat").iterdir())[0].read_bytes()


def _photo_status(u: User, jpeg: bytes, text: str = "", **fields: object) -> dict:
    media = u.upload(jpeg)
    assert media.status_code == 202, media.text
    resp = u.status(text, **{"media_ids[]": [media.json()["id"]], **fields})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _served(url: str) -> requests.Response:
    return requests.get(url.split("?")[0], timeout=10)


# ----------------------------------------------------------------------------- scopes -----
def test_a_read_token_can_read_but_not_upload_or_post(user: UserMaker, jpeg: bytes) -> None:
    reader = user("scope_reader", scopes="read")
    writer = user("scope_writer")
    target = _photo_status(writer, jpeg)
    assert reader.upload(jpeg).status_code == 403
    refused = reader.status("hi", in_reply_to_id=target["id"])
    assert (refused.status_code, refused.json()) == (403, {"error": "This action is unauthorized."})
    assert reader.get("/api/v1/notifications").status_code == 200
    assert reader.get(f"/api/v1/statuses/{target['id']}/context").status_code == 200


def test_an_app_only_token_cannot_post(live_demo: DemoInstance) -> None:
    app = requests.post(f"{live_demo.url}/api/v1/apps", timeout=10,
                        data={"client_name": "t", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}).json()
    token = requests.post(f"{live_demo.url}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": "read write"}).json()["access_token"]
    resp = requests.post(f"{live_demo.url}/api/v1/statuses", data={"status": "x", "in_reply_to_id": "1"},
                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, timeout=10)
    assert resp.status_code == 403


def test_the_demo_token_may_upload_and_post(live_demo: DemoInstance, jpeg: bytes) -> None:
    demo_user = User(live_demo.url, DEMO_TOKEN, {"id": None})
    status = _photo_status(demo_user, jpeg, "from the demo user", visibility="unlisted")
    assert status["account"]["username"].startswith("demo")
    me = demo_user.get("/api/v1/accounts/verify_credentials").json()
    assert me["id"] == status["account"]["id"] and me["bot"] is False


# ----------------------------------------------------------------------------- uploads ----
def test_uploads_v1_and_v2_keep_the_bytes(user: UserMaker, jpeg: bytes) -> None:
    u, other = user("uploader"), user("uploader_other")
    v1 = u.upload(jpeg, version=1)
    assert v1.status_code == 200
    body = v1.json()
    assert body["type"] == "image" and body["url"].split("?")[0] == body["preview_url"].split("?")[0]
    assert body["meta"]["original"]["width"] > 0 and body["remote_url"] is None
    assert urlsplit(body["url"]).path.startswith(f"/storage/m/_v2/{u.id}/")
    assert _served(body["url"]).content == jpeg
    v2 = u.upload(jpeg)
    assert v2.status_code == 202 and v2.json()["url"] is None
    fetched = u.get(f"/api/v1/media/{v2.json()['id']}")
    assert fetched.status_code == 200 and _served(fetched.json()["url"]).content == jpeg
    assert other.get(f"/api/v1/media/{v2.json()['id']}").status_code == 404


def test_the_type_comes_from_the_bytes_not_the_name(user: UserMaker) -> None:
    u = user("sniffer")
    png = io.BytesIO()
    Image.new("RGB", (8, 6), (9, 9, 9)).save(png, format="PNG")
    as_jpg = u.upload(png.getvalue(), name="looks.jpg")
    assert as_jpg.status_code == 202
    assert _served(as_jpg.json()["preview_url"]).headers["content-type"] == "image/png"
    mp4 = u.upload(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(512), name="v.jpg")
    assert mp4.status_code == 202 and mp4.json()["type"] == "video"
    for data in (b"%PDF-1.7 not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>"):
        refused = u.upload(data)
        assert refused.status_code == 422
        assert refused.json()["errors"]["file"] == [
            "The file field must be a file of type: image/jpeg, image/png, image/gif, video/mp4."]
    assert u.upload(b"").status_code == 422
    assert u.post("/api/v2/media", data={"description": "no file"}).status_code == 422


def test_broken_and_hostile_images_upload_as_sent(user: UserMaker, jpeg: bytes) -> None:
    """A cut JPEG and a decompression bomb are kept byte for byte: the bot must face them."""
    u = user("hostile_uploader")
    cut = jpeg[: len(jpeg) // 3]
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # 400 Mpx in ~50 KB
    for data in (cut, bomb.getvalue()):
        resp = u.upload(data, version=1)
        assert resp.status_code == 200, resp.text
        assert _served(resp.json()["url"]).content == data
    assert resp.json()["meta"] is None  # the bomb's size is not read past Pillow's guard


def test_the_size_cap(user: UserMaker) -> None:
    big = b"\xff\xd8\xff" + bytes(15000 * 1024)
    resp = user("big_uploader").upload(big)
    assert resp.status_code == 422
    assert resp.json()["message"] == "The file field must not be greater than 15000 kilobytes."


# ---------------------------------------------------------------------------- statuses ----
def test_a_new_post_renders_and_shows_like_the_worlds(user: UserMaker, jpeg: bytes, live_demo: DemoInstance,
                                                       bot: User, world: World) -> None:
    u = user("poster")
    status = _photo_status(u, jpeg, "Morning walk #SunsetLive @pixtag", visibility="public")
    world_status = u.get(f"/api/v1/statuses/{world.public_timeline()[0].id}").json()
    assert set(status) == set(world_status)
    assert status["visibility"] == "public" and status["in_reply_to_id"] is None
    assert status["tags"] == [{"name": "sunsetlive", "url": f"{live_demo.url}/discover/tags/sunsetlive"}]
    assert 'title="#SunsetLive"' in status["content"] and 'class="u-url mention"' in status["content"]
    assert status["mentions"] == [{"id": bot.id, "username": "pixtag", "acct": "pixtag",
                                   "url": f"{live_demo.url}/pixtag"}]
    assert u.get("/api/v1/timelines/public").json()[0]["id"] == status["id"]
    assert [s["id"] for s in u.get("/api/v1/timelines/tag/SunsetLive").json()] == [status["id"]]
    assert u.get("/api/v1/tags/sunsetlive", _pe=1).json()["count"] == 1
    fetched = u.get(f"/api/v1/statuses/{status['id']}").json()
    assert fetched["content"] == status["content"] and fetched["media_attachments"] == status["media_attachments"]


def test_json_and_form_bodies_and_content_warnings(user: UserMaker, jpeg: bytes) -> None:
    u = user("cw_poster")
    media = u.upload(jpeg).json()["id"]
    as_json = u.post("/api/v1/statuses", json={"status": "cw #json", "media_ids": [media],
                                               "visibility": "unlisted", "sensitive": True,
                                               "spoiler_text": "spiders"})
    assert as_json.status_code == 200, as_json.text
    assert (as_json.json()["sensitive"], as_json.json()["spoiler_text"]) == (True, "spiders")
    media = u.upload(jpeg).json()["id"]
    no_cw = u.status("no cw", **{"media_ids[]": [media], "spoiler_text": "dropped", "sensitive": "0"})
    assert (no_cw.json()["sensitive"], no_cw.json()["spoiler_text"]) == (False, "")


@pytest.mark.parametrize(("visibility", "message"), [
    ("direct", "The selected visibility is invalid."),
    ("followers", "The selected visibility is invalid."),
    ("", "The visibility field must be a string."),
])
def test_visibility_is_private_unlisted_or_public(user: UserMaker, jpeg: bytes, visibility: str,
                                                  message: str) -> None:
    u = user("visibility_poster")
    resp = u.status("x", **{"media_ids[]": [u.upload(jpeg).json()["id"]], "visibility": visibility})
    assert resp.status_code == 422
    assert resp.json() == {"message": message, "errors": {"visibility": [message]}}


def test_what_pixelfed_refuses(user: UserMaker, jpeg: bytes) -> None:
    u, other = user("refused_poster"), user("refused_other")
    empty = u.status("text only")
    assert (empty.status_code, empty.json()) == (403, {"error": "Empty statuses are not allowed"})
    five = [u.upload(jpeg).json()["id"] for _ in range(5)]
    too_many = u.status("five", **{"media_ids[]": five})
    assert too_many.status_code == 422
    assert too_many.json()["errors"]["media_ids"] == ["The media ids field must not have more than 4 items."]
    assert u.status("scalar", media_ids=five[0]).status_code == 422
    foreign = u.status("not mine", **{"media_ids[]": [other.upload(jpeg).json()["id"]]})
    assert (foreign.status_code, foreign.json()) == (400, {"error": "Invalid media_ids"})
    assert u.status("ok", **{"media_ids[]": five[:1]}).status_code == 200
    reused = u.status("again", **{"media_ids[]": five[:1]})
    assert reused.status_code == 400
    assert u.status("reply to nothing", in_reply_to_id="123").status_code == 404
    assert u.status("x" * 501, **{"media_ids[]": five[1:2]}).status_code == 422


def test_idempotency_key(user: UserMaker, jpeg: bytes) -> None:
    u, other = user("idem_poster"), user("idem_other")
    first = u.post("/api/v1/statuses", headers={"Idempotency-Key": "k-1"},
                   data={"status": "once", "media_ids[]": [u.upload(jpeg).json()["id"]]})
    assert first.status_code == 200
    again = u.post("/api/v1/statuses", headers={"Idempotency-Key": "k-1"},
                   data={"status": "once", "media_ids[]": [u.upload(jpeg).json()["id"]]})
    assert (again.status_code, again.json()) == (400, {"error": "Duplicate idempotency key."})
    theirs = other.post("/api/v1/statuses", headers={"Idempotency-Key": "k-1"},
                        data={"status": "theirs", "media_ids[]": [other.upload(jpeg).json()["id"]]})
    assert theirs.status_code == 200
    assert u.get("/api/v1/accounts/verify_credentials").json()["statuses_count"] == 1


def test_unlisted_and_private_stay_off_the_public_timelines(user: UserMaker, jpeg: bytes,
                                                            live_demo: DemoInstance) -> None:
    u, stranger = user("quiet_poster"), user("quiet_stranger")
    unlisted = _photo_status(u, jpeg, "#quietlive", visibility="unlisted")
    locked = user("locked_poster", locked=True)
    private = _photo_status(locked, jpeg, "#quietlive", visibility="public")
    assert private["visibility"] == "private"  # a locked account's posts are private
    timeline = {s["id"] for s in stranger.get("/api/v1/timelines/public", limit=40).json()}
    assert not {unlisted["id"], private["id"]} & timeline
    assert stranger.get("/api/v1/timelines/tag/quietlive").json() == []
    assert stranger.get(f"/api/v1/statuses/{unlisted['id']}").status_code == 200
    assert stranger.get(f"/api/v1/statuses/{private['id']}").status_code == 403
    assert stranger.get(f"/api/v1/statuses/{private['id']}/context").status_code == 404
    assert stranger.status("nice", in_reply_to_id=private["id"]).status_code == 404
    requests.post(f"{live_demo.url}/_demo/follows", json={"follower": "quiet_stranger",
                                                         "following": "locked_poster"}, timeout=10)
    assert stranger.get(f"/api/v1/statuses/{private['id']}").status_code == 200
    reply = stranger.status("nice", in_reply_to_id=private["id"], visibility="public")
    assert reply.json()["visibility"] == "private"  # never more visible than its parent


def test_replies_and_their_context(user: UserMaker, jpeg: bytes) -> None:
    author, bob, carol = user("ctx_author"), user("ctx_bob"), user("ctx_carol")
    photo = _photo_status(author, jpeg, "a photo")
    reply = bob.status("what a view", in_reply_to_id=photo["id"], visibility="unlisted")
    assert reply.status_code == 200
    reply = reply.json()
    assert (reply["in_reply_to_id"], reply["in_reply_to_account_id"]) == (photo["id"], author.id)
    assert reply["media_attachments"] == [] and reply["visibility"] == "unlisted"
    nested = carol.status("agreed", in_reply_to_id=reply["id"]).json()
    assert nested["visibility"] == "unlisted"
    context = carol.get(f"/api/v1/statuses/{photo['id']}/context").json()
    assert context["ancestors"] == [] and [s["id"] for s in context["descendants"]] == [reply["id"]]
    up = carol.get(f"/api/v1/statuses/{nested['id']}/context").json()
    assert [s["id"] for s in up["ancestors"]] == [reply["id"]]  # the parent only, as on Pixelfed
    assert carol.get(f"/api/v1/statuses/{photo['id']}").json()["replies_count"] == 1
    public_ids = {s["id"] for s in carol.get("/api/v1/timelines/public", limit=40).json()}
    assert photo["id"] in public_ids and reply["id"] not in public_ids


def test_delete_by_the_author_only(user: UserMaker, jpeg: bytes) -> None:
    u, other = user("deleter"), user("deleter_other")
    status = _photo_status(u, jpeg, "short lived #gonelive")
    assert other.session.delete(f"{u.url}/api/v1/statuses/{status['id']}").status_code == 404
    gone = u.session.delete(f"{u.url}/api/v1/statuses/{status['id']}")
    assert gone.status_code == 200 and "text" in gone.json() and "content" not in gone.json()
    assert u.get(f"/api/v1/statuses/{status['id']}").status_code == 404
    assert _served(status["media_attachments"][0]["url"]).status_code == 404
    assert u.get("/api/v1/timelines/tag/gonelive").json() == []


def test_mentions_are_read_as_pixelfed_reads_them(user: UserMaker, jpeg: bytes, live_demo: DemoInstance) -> None:
    u = user("mentioner")
    host = urlsplit(live_demo.url).hostname
    cases = {f"hi @pixtag@{host}": ["pixtag"], "hi @PixTag": ["pixtag"], "thanks @pixtag.": [],
             "mail me at me@pixtag": [], "@nobody_here hi": [], "@mentioner self": ["mentioner"]}
    for text, accts in cases.items():
        status = _photo_status(u, jpeg, text)
        assert [m["acct"] for m in status["mentions"]] == accts, text


# -------------------------------------------------------------------- bot and control -----
def test_the_bot_account(bot: User, live_demo: DemoInstance, world: World) -> None:
    assert bot.account["username"] == "pixtag" and bot.account["bot"] is True
    assert bot.get(f"/api/v1/accounts/{bot.id}").json()["bot"] is True
    someone = next(a for a in world.accounts.values() if a.local)
    assert bot.get(f"/api/v1/accounts/{someone.id}").json()["bot"] is False
    assert int(bot.id) not in world.accounts
    listed = requests.get(f"{live_demo.url}/_demo/accounts", timeout=10).json()
    assert [a["username"] for a in listed if a["bot"]] == ["pixtag"]
    assert {"#nobot", "#noai", "#noindex"} <= {a["opt_out"] for a in listed}
    assert any(a["locked"] for a in listed)


def test_tokens_for_new_and_existing_accounts(user: UserMaker, live_demo: DemoInstance, world: World) -> None:
    nobot = user("nobot_fan", bio="Film only. #nobot")
    assert "#nobot" in nobot.account["note"] and nobot.account["locked"] is False
    assert user("nobot_fan").id == nobot.id
    assert user("hidden_fan", locked=True).account["locked"] is True
    opted_out = next(a for a in world.accounts.values() if a.local and a.opt_out == "#nobot")
    assert user(opted_out.username).id == str(opted_out.id)
    bad = requests.post(f"{live_demo.url}/_demo/tokens", json={"username": "x@remote.example"}, timeout=10)
    assert bad.status_code == 422


def test_a_remote_status_keeps_its_media_urls(live_demo: DemoInstance, bot: User) -> None:
    url = "http://metadata.internal.example/latest/cat.jpg"
    resp = requests.post(f"{live_demo.url}/_demo/remote_statuses", timeout=10, json={
        "acct": "mallory@evil.example", "status": "@pixtag tags please", "media_urls": [url]})
    assert resp.status_code == 200, resp.text
    status = resp.json()
    assert status["account"]["acct"] == "mallory@evil.example"
    assert status["media_attachments"][0]["url"] == url and status["mentions"][0]["acct"] == "pixtag"
    mine = [n for n in bot.get("/api/v1/notifications", limit=40).json() if n["status"]["id"] == status["id"]]
    assert [n["account"]["acct"] for n in mine] == ["mallory@evil.example"]


def test_the_instance_reports_the_attachment_limit(live_demo: DemoInstance) -> None:
    for version in ("v1", "v2"):
        info = requests.get(f"{live_demo.url}/api/{version}/instance", timeout=10).json()
        assert info["configuration"]["statuses"]["max_media_attachments"] == 4


def test_faults_for_chosen_routes_only(fresh_demo: DemoInstance, jpeg: bytes) -> None:
    demo_user = User(fresh_demo.url, DEMO_TOKEN, {"id": None})
    knobs = f"{fresh_demo.url}/_demo/faults"
    assert requests.put(knobs, json={"rate_429": 1, "retry_after": 3,
                                     "routes": ["POST /api/v1/statuses"]}, timeout=10).ok
    refused = demo_user.status("x", in_reply_to_id="1")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
    assert demo_user.get("/api/v1/notifications").status_code == 200
    assert demo_user.upload(jpeg).status_code == 202
    assert requests.put(knobs, json={"rate_5xx": 1, "routes": ["GET /api/v1/notifications"]}, timeout=10).ok
    assert demo_user.get("/api/v1/notifications").status_code >= 500
    assert demo_user.status("x", in_reply_to_id="1").status_code == 404
    bad = requests.put(knobs, json={"rate_5xx": 1, "routes": ["statuses"]}, timeout=10)
    assert bad.status_code == 422 and "METHOD /path" in bad.json()["message"]


def test_writes_leave_the_world_and_the_read_only_instance_as_they_were(
        user: UserMaker, jpeg: bytes, demo: DemoInstance, world: World, photos: Path,
        http: requests.Session) -> None:
    _photo_status(user("world_keeper"), jpeg, "a write #keeper")
    assert world.fingerprint() == build_world(photos).fingerprint()
    first = http.get(f"{demo.url}/api/v1/timelines/public", timeout=10).json()[0]
    assert first["id"] == str(world.public_timeline()[0].id)
