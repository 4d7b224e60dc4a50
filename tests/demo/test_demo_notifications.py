"""Notifications and direct messages as Pixelfed serves them (accountNotifications,
NotificationService, DirectMessageController): entity shape, comment reported as mention,
paging by ``max_id`` without gaps or repeats, the newest-first ``min_id``, ``limit`` and
``types[]``, a concurrent burst of mentions, and message requests."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from pixtag_demo.app import DemoInstance
from tests.demo.conftest import User

pytestmark = pytest.mark.slow

UserMaker = Callable[..., User]
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def jpeg(photos: Path) -> bytes:
    return sorted((photos / "dog").iterdir())[0].read_bytes()


def _photo(u: User, jpeg: bytes, text: str = "") -> dict:
    media = u.upload(jpeg).json()["id"]
    resp = u.status(text, **{"media_ids[]": [media]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _link(resp: object, rel: str) -> str | None:
    header = resp.headers.get("link", "")  # type: ignore[attr-defined]
    match = re.search(rf'<([^>]+)>; rel="{rel}"', header)
    return match[1] if match else None


@pytest.fixture(scope="module")
def inbox(live_demo: DemoInstance) -> dict:
    """``pager`` with 45 notifications: 40 comments (replies) on its photo and 5 mentions."""
    def make(name: str) -> User:
        body = requests.post(f"{live_demo.url}/_demo/tokens", json={"username": name}, timeout=10).json()
        return User(live_demo.url, body["token"], body["account"])

    pager, fans = make("pager"), [make(f"pager_fan{i}") for i in range(3)]
    photo_bytes = b"\x89PNG\r\n\x1a\n" + bytes(64)
    photo = pager.status("my photo", **{"media_ids[]": [pager.upload(photo_bytes).json()["id"]]}).json()
    statuses = []
    for i in range(40):
        statuses.append(fans[i % 3].status(f"nice {i}", in_reply_to_id=photo["id"]).json()["id"])
    for i in range(5):
        media = fans[i % 3].upload(photo_bytes).json()["id"]
        statuses.append(fans[i % 3].status(f"look @pager {i}", **{"media_ids[]": [media]}).json()["id"])
    return {"pager": pager, "statuses": statuses[::-1], "fans": fans}


def test_a_notification_is_pixelfeds_entity(inbox: dict) -> None:
    newest = inbox["pager"].get("/api/v1/notifications", limit=1).json()[0]
    assert list(newest) == ["id", "type", "created_at", "account", "status"]
    assert newest["type"] == "mention" and ISO_MS.match(newest["created_at"])
    assert newest["status"]["id"] == inbox["statuses"][0]
    assert newest["account"]["id"] == newest["status"]["account"]["id"]
    assert "local" not in newest["account"] and "pf_type" not in newest["status"]


def test_a_comment_is_reported_as_a_mention_without_pe(inbox: dict) -> None:
    pager = inbox["pager"]
    plain = pager.get("/api/v1/notifications", limit=40).json()
    pe = pager.get("/api/v1/notifications", limit=40, _pe=1).json()
    assert {n["type"] for n in plain} == {"mention"}
    assert [n["type"] for n in pe[:6]] == ["mention"] * 5 + ["comment"]
    assert "pf_type" in pe[0]["status"]


def test_paging_by_link_has_no_gaps_or_repeats(inbox: dict) -> None:
    pager, seen = inbox["pager"], []
    resp = pager.get("/api/v1/notifications", limit=10)
    while resp.json():
        seen += [n["status"]["id"] for n in resp.json()]
        assert _link(resp, "prev") is not None
        resp = pager.session.get(_link(resp, "next"), timeout=10)
    assert seen == inbox["statuses"]
    assert "link" not in resp.headers


def test_min_id_gives_the_newest_page_above_it(inbox: dict) -> None:
    pager = inbox["pager"]
    ids = [int(n["id"]) for n in pager.get("/api/v1/notifications", limit=40).json()]
    above = pager.get("/api/v1/notifications", min_id=ids[30], limit=10).json()
    assert [int(n["id"]) for n in above] == ids[:10]  # not ids[20:30]: page down with max_id
    assert pager.get("/api/v1/notifications", since_id=ids[30], limit=10).json() == above
    assert pager.get("/api/v1/notifications", min_id=ids[0]).json() == []
    below = pager.get("/api/v1/notifications", max_id=ids[30], limit=5).json()
    assert [int(n["id"]) for n in below] == ids[31:36]


def test_limit_and_parameter_checks(inbox: dict) -> None:
    pager = inbox["pager"]
    assert len(pager.get("/api/v1/notifications").json()) == 20
    assert len(pager.get("/api/v1/notifications", limit=100).json()) == 40
    one = pager.get("/api/v1/notifications", limit=1)
    assert one.headers["link"].endswith('max_id=>; rel="next"')  # Pixelfed's one-item page
    for params in ({"limit": 0}, {"max_id": "abc"}, {"min_id": 0}, {"types[]": "poll"}):
        assert pager.get("/api/v1/notifications", **params).status_code == 422
    assert pager.get("/api/v1/notifications", **{"types[]": "follow"}).json() == []
    assert len(pager.get("/api/v1/notifications", **{"types[]": "mention"}).json()) == 20


def test_who_is_notified(user: UserMaker, jpeg: bytes) -> None:
    author, fan = user("notify_author"), user("notify_fan")
    photo = _photo(author, jpeg, "@notify_author self mention")
    assert author.get("/api/v1/notifications").json() == []  # never oneself
    fan.status("@notify_author lovely", in_reply_to_id=photo["id"])  # comment + mention: one
    fan.status("@notify_author @notify_author twice", in_reply_to_id=photo["id"])
    got = author.get("/api/v1/notifications").json()
    assert [n["account"]["username"] for n in got] == ["notify_fan", "notify_fan"]
    deleted = got[0]["status"]["id"]
    assert fan.session.delete(f"{fan.url}/api/v1/statuses/{deleted}").status_code == 200
    assert [n["status"]["id"] for n in author.get("/api/v1/notifications").json()] == [got[1]["status"]["id"]]


def test_a_burst_of_mentions_while_polling(user: UserMaker, jpeg: bytes) -> None:
    """100 mentions from 20 accounts posted at once while a poller follows min_id and pages down
    with max_id: every mention arrives once, none is lost."""
    target, host = user("burst_target"), user("burst_host")
    photo = _photo(host, jpeg, "meet here")
    senders = [user(f"burst_sender{i}") for i in range(20)]
    seen: list[str] = []
    done = threading.Event()

    def poll() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            page = target.get("/api/v1/notifications", min_id=cursor or None, limit=40).json()
            batch = list(page)
            while len(page) == 40 and int(page[-1]["id"]) > cursor:  # the rest sits below it
                page = target.get("/api/v1/notifications", max_id=batch[-1]["id"], limit=40).json()
                batch += [n for n in page if int(n["id"]) > cursor]
            seen.extend(n["id"] for n in batch)
            cursor = max([cursor, *(int(n["id"]) for n in batch)])
            if finished:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    def send(i: int) -> int:  # a request of its own per call: sessions are not shared across threads
        sender = senders[i % 20]
        return requests.post(f"{sender.url}/api/v1/statuses", timeout=30,
                             headers={"Authorization": f"Bearer {sender.token}"},
                             data={"status": f"@burst_target look {i}", "in_reply_to_id": photo["id"]}).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(send, range(100)))
    done.set()
    poller.join(60)
    assert codes == [200] * 100
    assert len(seen) == len(set(seen)) == 100
    assert len(host.get("/api/v1/notifications", limit=40).json()) == 40  # comments on its photo


# -------------------------------------------------------------------- direct messages -----
def test_a_direct_message_to_a_non_follower_is_a_message_request(user: UserMaker, bot: User,
                                                                 live_demo: DemoInstance) -> None:
    stranger = user("dm_stranger")
    sent = bot.post("/api/v1.1/direct/thread/send", data={"to_id": stranger.id, "message": "Hello", "type": "text"})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert (body["hidden"], body["isAuthor"], body["text"], body["type"]) == (True, True, "Hello", "text")
    thread = stranger.get("/api/v1.1/direct/thread", pid=bot.id).json()
    assert thread["username"] == "pixtag"
    assert [(m["text"], m["hidden"], m["isAuthor"]) for m in thread["messages"]] == [("Hello", True, False)]
    assert bot.get(f"/api/v1/statuses/{body['reportId']}").status_code == 400  # a direct status
    assert stranger.get("/api/v1/notifications").json() == []  # DMs never show there
    requests.post(f"{live_demo.url}/_demo/follows", json={"follower": "dm_stranger", "following": "pixtag"},
                  timeout=10)
    again = bot.post("/api/v1.1/direct/thread/send", json={"to_id": stranger.id, "message": "https://x.example/a",
                                                           "type": "text"}).json()
    assert (again["hidden"], again["type"]) == (False, "link")
    assert [m["text"] for m in stranger.get("/api/v1.1/direct/thread", pid=bot.id).json()["messages"]] == [
        "https://x.example/a", "Hello"]


def test_direct_message_checks(bot: User, user: UserMaker) -> None:
    other = user("dm_checks")
    send = "/api/v1.1/direct/thread/send"
    cases = [({"to_id": other.id, "message": "", "type": "text"}, 422),
             ({"to_id": other.id, "message": "x" * 501, "type": "text"}, 422),
             ({"to_id": other.id, "message": "hi", "type": "video"}, 422),
             ({"message": "hi", "type": "text"}, 422),
             ({"to_id": bot.id, "message": "hi", "type": "text"}, 404),
             ({"to_id": "999", "message": "hi", "type": "emoji"}, 404)]
    for data, code in cases:
        assert bot.post(send, data=data).status_code == code, data
    assert bot.get("/api/v1.1/direct/thread").status_code == 422
    mention = bot.post(send, data={"to_id": other.id, "message": "@dm_checks hi", "type": "text"})
    assert mention.status_code == 200 and other.get("/api/v1/notifications").json() == []
