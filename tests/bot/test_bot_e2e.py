"""The bot end to end on the local instance: a real photo posted as a Pixelfed client posts it,
mentioning ``@pixtag``; ``pixtag bot --once`` answers with one unlisted comment carrying the
right hashtag; a second run posts nothing more. Then the other ways of asking: a mention in a
reply to one's own post, on someone else's post, direct messages, several photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixtag.data import ledger
from pixtag.data.images import prepare
from pixtag_demo.app import DemoInstance
from tests.bot.conftest import BOT_TOKEN, bot_env, bot_replies, photo_bytes, pixtag_bot, post_photos
from tests.demo.conftest import User

pytestmark = pytest.mark.slow


def test_pixtag_bot_once_answers_a_mention_once(instance: DemoInstance, champion_uri: str, store: Path,
                                                 person: Callable[..., User], photos: Path) -> None:
    alice = person("e2e_alice")
    cat = photo_bytes(photos, "cat")
    post = post_photos(alice, [cat], "Sunday on the sofa @pixtag what would you tag this?", visibility="public")
    env = bot_env(instance, champion_uri, store)
    first = pixtag_bot(env, "--once")
    assert first.returncode == 0, first.stderr
    replies = bot_replies(alice, post["id"])
    assert len(replies) == 1, replies
    reply = replies[0]
    assert reply["visibility"] == "unlisted" and reply["in_reply_to_id"] == post["id"]
    assert reply["account"]["bot"] is True
    assert "#cat" in reply["content"] and "likely" in reply["content"], reply["content"]
    assert [m["acct"] for m in reply["mentions"]] == ["e2e_alice"]
    assert "sofa" not in reply["content"] and "http" not in reply["content"].replace(instance.url, "")
    assert prepare(cat).phash in ledger.read_phashes(str(store))  # never trained on
    assert BOT_TOKEN not in first.stdout + first.stderr
    again = pixtag_bot(env, "--once")
    assert again.returncode == 0, again.stderr
    assert len(bot_replies(alice, post["id"])) == 1
    me = alice.get("/api/v1/accounts/verify_credentials").json()
    assert me["followers_count"] == 0  # the bot follows nobody


def media_served(instance: DemoInstance) -> int:
    return instance.stats()["requests"].get("media", 0)


def test_a_mention_in_a_reply_to_ones_own_post_answers_for_its_photos(
        person: Callable[..., User], photos: Path, run_bot: Callable[..., dict]) -> None:
    bob = person("e2e_bob")
    post = post_photos(bob, [photo_bytes(photos, "dog")], "Walk in the park")
    ask = bob.status("@pixtag tags for this one?", in_reply_to_id=post["id"]).json()
    run_bot()
    replies = bot_replies(bob, ask["id"])
    assert len(replies) == 1 and "#dog" in replies[0]["content"]
    assert bot_replies(bob, post["id"]) == []  # the answer sits under the question


def test_on_someone_elses_post_only_the_author_may_ask(instance: DemoInstance, person: Callable[..., User],
                                                       photos: Path, run_bot: Callable[..., dict]) -> None:
    owner, nosy = person("e2e_owner"), person("e2e_nosy")
    post = post_photos(owner, [photo_bytes(photos, "bird")], "my bird")
    ask = nosy.status("@pixtag what is this?", in_reply_to_id=post["id"]).json()
    before = media_served(instance)
    run_bot()
    (reply,) = bot_replies(nosy, ask["id"])
    assert "Only the person who posted a photo can ask me" in reply["content"]
    assert [m["acct"] for m in reply["mentions"]] == ["e2e_nosy"]
    assert media_served(instance) == before  # the photo was never fetched


def test_several_photos_one_line_each(person: Callable[..., User], photos: Path,
                                      run_bot: Callable[..., dict]) -> None:
    carol = person("e2e_carol")
    post = post_photos(carol, [photo_bytes(photos, "car"), photo_bytes(photos, "flower")], "@pixtag two of mine")
    run_bot()
    (reply,) = bot_replies(carol, post["id"])
    text = reply["content"]
    assert "Photo 1: " in text and "Photo 2: " in text
    assert text.index("#car") < text.index("Photo 2") < text.index("#flower")


def test_direct_messages_when_asked_for_and_for_a_locked_account(
        instance: DemoInstance, person: Callable[..., User], photos: Path, run_bot: Callable[..., dict]) -> None:
    dora = person("e2e_dora")
    post = post_photos(dora, [photo_bytes(photos, "cat", 1)], "@pixtag please, privately")
    run_bot(bot_reply="dm")
    assert bot_replies(dora, post["id"]) == []
    thread = dora.get("/api/v1.1/direct/thread", pid=_bot_id(instance, dora)).json()["messages"]
    assert len(thread) == 1 and thread[0]["hidden"] is True  # a message request: dora does not follow the bot
    assert thread[0]["text"].startswith(f"About your post {post['id']}:") and "#cat" in thread[0]["text"]
    erin = person("e2e_erin", locked=True)
    private = post_photos(erin, [photo_bytes(photos, "bird", 1)], "@pixtag only for my followers")
    assert private["visibility"] == "private"
    run_bot()
    assert bot_replies(erin, private["id"]) == []
    (message,) = erin.get("/api/v1.1/direct/thread", pid=_bot_id(instance, erin)).json()["messages"]
    assert "#bird" in message["text"]


def _bot_id(instance: DemoInstance, u: User) -> str:
    accounts = u.session.get(f"{instance.url}/_demo/accounts", timeout=10).json()
    return next(a["id"] for a in accounts if a["bot"])


def test_a_new_champion_is_served_without_a_restart(bot_settings: object, champion_uri: str,
                                                    tmp_path: Path) -> None:
    import shutil

    from pixtag.bot.champion import Champion
    from pixtag.core.config import load_settings
    from pixtag.model.tracking import connect

    db = Path(champion_uri.removeprefix("sqlite:///"))
    shutil.copy(db, tmp_path / "mlflow.db")  # the artifacts stay where they are (absolute URIs)
    settings = load_settings(mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", storage=str(tmp_path / "store"))
    champ = Champion(settings, interval=0)
    first = champ.get()
    assert champ.version == "1" and first is not None
    client = connect(settings)
    v1 = client.get_model_version("pixtag", "1")
    v2 = client.create_model_version("pixtag", v1.source, run_id=v1.run_id)
    client.set_registered_model_alias("pixtag", "champion", v2.version)
    second = champ.get()
    assert champ.version == "2" and second is not first
