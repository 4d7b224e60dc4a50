"""The bot under trouble: instance errors (429, 5xx, timeouts) while it polls and while it posts;
SIGKILLs at seeded points between reading a notification and recording its answer; mentions no
bot should trust. Every mention gets exactly one answer (or a logged refusal), none is lost,
none answered twice, and the bot keeps running."""

from __future__ import annotations

import io
import logging
import random
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from pixtag.bot.state import BotState
from pixtag.core.storage import LocalStorage
from pixtag_demo.app import DemoInstance
from pixtag_demo.faults import Faults
from tests.bot.conftest import bot_env, bot_replies, photo_bytes, post_photos, text_of
from tests.conftest import DEMO_TOKEN, REPO
from tests.demo.conftest import User
from tests.reliability.cases import BOT_FAULTS, BOT_HOSTILE, BOT_KILLS, FAST_RETRIES, KILL_SEED

pytestmark = pytest.mark.slow


@pytest.fixture
def set_faults(instance: DemoInstance) -> Iterator[Callable[[Faults], None]]:
    def put(faults: Faults) -> None:
        resp = requests.put(f"{instance.url}/_demo/faults", json=faults.to_dict(), timeout=10)
        assert resp.ok, resp.text
    yield put
    put(Faults())


@pytest.fixture
def run_until(bot_settings: Any, champion: Any) -> Callable[..., dict[str, Any]]:
    """``run_until(done, timeout, **settings)``: the bot's foreground loop (``pixtag bot``) in a thread
    until ``done()`` holds, then one more pass; its summary."""
    from pixtag.bot.run import Bot

    def run(done: Callable[[], bool], timeout: float = 90, **overrides: Any) -> dict[str, Any]:
        settings = bot_settings.model_copy(update={"bot_poll_interval": 0.2, **overrides})
        bot = Bot(settings, champion=champion)
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.update(bot.run()), daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        try:
            while not done():
                assert thread.is_alive(), "the bot stopped"
                assert time.monotonic() < deadline, f"not done after {timeout} s: {bot.summary()}"
                time.sleep(0.2)
            polls = bot.counts["polls"]
            while bot.counts["polls"] < polls + 2 and thread.is_alive():  # the bot looks again: nothing more
                time.sleep(0.1)
        finally:
            bot.stop.set()
            thread.join(30)
            bot.close()
        assert not thread.is_alive()
        return result
    return run


def replies_of(u: User, posts: list[dict[str, Any]]) -> list[int]:
    return [len(bot_replies(u, p["id"])) for p in posts]


# --- instance errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(BOT_FAULTS))
def test_instance_errors_while_polling_and_posting(case: str, instance: DemoInstance, person: Callable[..., User],
                                                   photos: Path, set_faults: Callable[[Faults], None],
                                                   run_until: Callable[..., dict]) -> None:
    people = [person(f"fault_{case}_{i}") for i in range(2)]
    posts = [post_photos(u, [photo_bytes(photos, "cat", i)], f"@pixtag {case} {i}") for i, u in enumerate(people)]
    fired = sum(instance.stats()["faults"].values())
    set_faults(BOT_FAULTS[case])
    lifted = threading.Timer(3.0, set_faults, [Faults()]) if case == "post_down" else None
    if lifted:
        lifted.start()  # down for 3 s: the bot defers the mention, then answers it
    try:
        summary = run_until(lambda: all(len(bot_replies(u, p["id"])) for u, p in zip(people, posts, strict=True)),
                            **FAST_RETRIES)
    finally:
        if lifted:
            lifted.join()
    assert [len(bot_replies(u, p["id"])) for u, p in zip(people, posts, strict=True)] == [1, 1], summary
    assert sum(instance.stats()["faults"].values()) > fired  # the faults did fire
    if case == "post_down":
        assert summary.get("deferred", 0) >= 1


def test_retry_after_is_honoured(instance: DemoInstance, person: Callable[..., User], photos: Path,
                                 set_faults: Callable[[Faults], None], run_until: Callable[..., dict]) -> None:
    u = person("fault_retry_after")
    post = post_photos(u, [photo_bytes(photos, "dog", 2)], "@pixtag patience")
    before = instance.stats()["faults"].get("429", 0)
    set_faults(Faults(seed=11, rate_429=0.5, retry_after=1, routes=("POST /api/v1/statuses",
                                                                      "GET /api/v1/notifications")))
    start = time.monotonic()
    run_until(lambda: bool(bot_replies(u, post["id"])), max_retry_after=5.0)
    limited = instance.stats()["faults"].get("429", 0) - before
    assert limited >= 1 and time.monotonic() - start >= limited * 1.0  # waited Retry-After each time
    assert len(bot_replies(u, post["id"])) == 1


# --- killed at seeded points -------------------------------------------------------------------
CRASHPOINT = [sys.executable, "-m", "tests.reliability.bot_crashpoint"]


def test_killed_between_reading_and_recording_loses_nothing_and_repeats_nothing(
        world: Any, champion_uri: str, photos: Path, tmp_path: Path) -> None:
    rng = random.Random(f"{KILL_SEED}:bot")
    # Each run's count starts again at 1: points 1-4 are its first mention's (the state write before
    # the post, just before the post, just after it, the write that records it), later ones reach
    # further. One kill just after a post (posted, not recorded: what the Idempotency-Key and the
    # look into the thread are for), one at a state write, the rest seeded.
    points = [3, 1, *rng.sample(range(1, 13), BOT_KILLS - 2)]
    with DemoInstance(world=world, token=DEMO_TOKEN, bot_token="bot-crash-Xr57Ka1q") as inst:
        people = [_user(inst, f"crash_{i}") for i in range(10)]
        posts = [post_photos(u, [photo_bytes(photos, ("cat", "dog", "bird")[i % 3], i)], f"@pixtag {i}")
                 for i, u in enumerate(people)]
        env = bot_env(inst, champion_uri, tmp_path / "store", PIXTAG_BOT_TOKEN="bot-crash-Xr57Ka1q")
        seen = []
        for point in points:
            run = subprocess.run([*CRASHPOINT, str(point), "bot", "--once"], env=env, cwd=REPO,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == -9, (point, run.returncode, run.stderr[-2000:])
            seen.append(run.stderr.split("botcrash: SIGKILL at point ")[1].split("\n")[0])
        final = subprocess.run([*CRASHPOINT, "0", "bot", "--once"], env=env, cwd=REPO, capture_output=True,
                               text=True, timeout=300)
        assert final.returncode == 0, final.stderr[-2000:]
        assert replies_of(people[0], posts) == [1] * len(posts), seen
        state = BotState.load(LocalStorage(tmp_path / "store"), inst.url)
        assert not state.pending and all(state.done(p["id"]) for p in posts)
    kinds = {s.split("(")[1].rstrip(")") for s in seen}
    assert {"after post", "state write"} <= kinds, seen


def _user(inst: DemoInstance, name: str) -> User:
    body = requests.post(f"{inst.url}/_demo/tokens", json={"username": name}, timeout=10).json()
    return User(inst.url, body["token"], body["account"])


# --- hostile mentions --------------------------------------------------------------------------
def _png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def _gif(photos: Path) -> bytes:
    frames = [Image.open(sorted((photos / "cat").glob("*.jpg"))[i]).convert("RGB").resize((64, 64)) for i in (0, 1)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(512)


def _remote(inst: DemoInstance, acct: str, text: str, urls: list[str]) -> dict[str, Any]:
    resp = requests.post(f"{inst.url}/_demo/remote_statuses", json={"acct": acct, "status": text,
                                                                    "media_urls": urls}, timeout=10)
    assert resp.ok, resp.text
    return resp.json()


def _uploaded(u: User, data: bytes) -> str:
    """The URL the instance serves an upload at (as a remote server would serve its media)."""
    return u.get(f"/api/v1/media/{u.upload(data).json()['id']}").json()["url"].split("?")[0]


def test_hostile_mentions_get_the_right_answer_or_a_logged_refusal(
        instance: DemoInstance, person: Callable[..., User], photos: Path, run_until: Callable[..., dict],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import pixtag.bot.run as bot_run

    caplog.set_level(logging.INFO, logger="pixtag")
    cat, dog = photo_bytes(photos, "cat", 3), photo_bytes(photos, "dog", 3)
    p = {name: person(f"h{name[:12]}") for name in BOT_HOSTILE}  # Pixelfed mentions names of <= 20 characters
    expect: dict[str, tuple[User, dict[str, Any], list[str]]] = {}  # case -> (who, post, words in the answer)

    def case(name: str, post: dict[str, Any], *words: str, who: User | None = None) -> None:
        expect[name] = (who or p[name], post, list(words))

    # Pixelfed refuses a post with neither media nor a parent; a Mastodon user can mention the bot in one
    case("no_media", _remote(instance, "texter@remote.example", "@pixtag any tags for me?", []),
         "I found no photo", who=p["no_media"])
    helper = person("hostile_media_host")
    many = [_uploaded(helper, photo_bytes(photos, "flower", i)) for i in range(6)]
    served = instance.stats()["requests"].get("media", 0)
    case("too_many_media", _remote(instance, "far@remote.example", "@pixtag six at once", many),
         "Photo 4: #flower", "first 4 photos only", who=p["too_many_media"])
    case("video", post_photos(p["video"], [MP4, cat], "@pixtag a clip and a cat"), "Photo 1: a video, skipped",
         "Photo 2: #cat")
    case("animation", post_photos(p["animation"], [_gif(photos)], "@pixtag gif"), "an animation, skipped")
    case("decompression_bomb", post_photos(p["decompression_bomb"], [_png_bomb()], "@pixtag big"),
         "too many pixels for me")
    case("truncated_jpeg", post_photos(p["truncated_jpeg"], [cat[: len(cat) // 3]], "@pixtag cut"),
         "could not read")
    local_url = _uploaded(helper, cat)
    port = local_url.split(":")[2].split("/")[0]
    case("ssrf_remote_media", _remote(instance, "mallory@evil.example", "@pixtag look",
                                      [local_url.replace(f"127.0.0.1:{port}", f"localhost:{port}")]),
         "somewhere I may not fetch from", who=p["ssrf_remote_media"])
    case("sensitive", post_photos(p["sensitive"], [cat], "@pixtag nsfw?", sensitive="true"), "marked sensitive")
    case("content_warning", post_photos(p["content_warning"], [cat], "@pixtag cw", sensitive="true",
                                        spoiler_text="spiders"), "content warning")
    owner = person("hostile_owner")
    owned = post_photos(owner, [dog], "mine")
    case("someone_elses_post", p["someone_elses_post"].status("@pixtag whose?", in_reply_to_id=owned["id"]).json(),
         "Only the person who posted")
    nobot = person("hostile_nobot", bio="Film photos only. #nobot")
    case("nobot_author", post_photos(nobot, [cat], "@pixtag hm"), "#nobot", who=nobot)
    flood = [post_photos(p["flood"], [cat], f"@pixtag flood {i}") for i in range(8)]
    gone = post_photos(p["deleted_before_answer"], [cat], "@pixtag then gone")
    parent = post_photos(p["parent_deleted"], [dog], "soon deleted")
    ask = p["parent_deleted"].status("@pixtag this one?", in_reply_to_id=parent["id"]).json()
    assert p["parent_deleted"].session.delete(f"{instance.url}/api/v1/statuses/{parent['id']}").ok

    real_deliver = bot_run.deliver

    def delete_first(api: Any, state: Any, mention: Any, *args: Any, **kwargs: Any) -> Any:
        if mention.id == gone["id"]:  # the author deletes the post while the bot is looking at it
            p["deleted_before_answer"].session.delete(f"{instance.url}/api/v1/statuses/{gone['id']}")
        return real_deliver(api, state, mention, *args, **kwargs)

    monkeypatch.setattr(bot_run, "deliver", delete_first)
    after = person("hostile_after")
    later = post_photos(after, [dog], "@pixtag still there?")

    def finished() -> bool:
        return bool(bot_replies(after, later["id"]))

    summary = run_until(finished, bot_answers_per_hour=5)
    for name, (who, post, words) in expect.items():
        (reply,) = bot_replies(who, post["id"])
        for word in words:
            assert word in text_of(reply), (name, text_of(reply))
        assert [m["acct"] for m in reply["mentions"]] == [post["account"]["acct"]], name
    assert [len(bot_replies(p["flood"], f["id"])) for f in flood] == [1] * 6 + [0] * 2
    assert "asked me 5 times in the last hour" in text_of(bot_replies(p["flood"], flood[5]["id"])[0])
    assert bot_replies(p["parent_deleted"], ask["id"]) == []
    log = caplog.text
    assert f"mention {gone['id']} by @{p['deleted_before_answer'].account['acct']}: gone" in log
    assert "parent_gone" in log and "over_hourly_limit" in log
    assert "not fetched (blocked host 'localhost'" in log
    # six remote photos: four fetched (the limit), plus the local photos of the other cases; none from localhost
    assert summary["answered"] >= 8 and summary.get("failed", 0) == 0
    assert instance.stats()["requests"].get("media", 0) - served >= 4
