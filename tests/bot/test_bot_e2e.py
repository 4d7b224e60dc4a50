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
