"""Mastodon.py, a client people use against Pixelfed, uploads, replies and reads notifications on
the local instance; ``pixtag-demo --bot-token`` makes the bot account from the command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

from pixtag_demo.app import DemoInstance
from pixtag_demo.cli import main
from tests.demo.conftest import BOT_TOKEN, User

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _client(url: str, token: str) -> Mastodon:
    session = requests.Session()
    session.trust_env = False
    return Mastodon(access_token=token, api_base_url=url, session=session, request_timeout=10)


def test_mastodon_py_uploads_a_photo_and_replies_with_it(live_demo: DemoInstance, user: Callable[..., User],
                                                         photos: Path) -> None:
    alice = user("mpy_alice")
    photo = sorted((photos / "bird").iterdir())[0]
    posted = alice.status("@pixtag what is this?", **{
        "media_ids[]": [alice.upload(photo.read_bytes()).json()["id"]]}).json()
    bot = _client(live_demo.url, BOT_TOKEN)
    mention = next(n for n in bot.notifications(limit=40) if n.status.id == posted["id"])
    assert mention.type == "mention" and mention.account.acct == "mpy_alice"
    media = bot.media_post(str(photo), description="the photo again")
    assert media.url is None and media.preview_url  # v2: processed later, as on Pixelfed
    assert bot.media(media).url is not None
    reply = bot.status_post("@mpy_alice #bird #wildlife", media_ids=[media], in_reply_to_id=mention.status,
                            visibility="unlisted", idempotency_key="reply-1")
    assert (reply.in_reply_to_id, reply.visibility) == (posted["id"], "unlisted")
    assert [m.acct for m in reply.mentions] == ["mpy_alice"] and [t.name for t in reply.tags] == ["bird", "wildlife"]
    assert requests.get(reply.media_attachments[0].url, timeout=10).content == photo.read_bytes()
    with pytest.raises(MastodonAPIError, match="Duplicate idempotency key"):
        bot.status_post("@mpy_alice again", in_reply_to_id=posted["id"], idempotency_key="reply-1")
    with pytest.raises(MastodonAPIError) as refused:  # Laravel's 422 has no "error" for it to show
        bot.status_post("@mpy_alice psst", in_reply_to_id=posted["id"], visibility="direct")
    assert refused.value.args[1] == 422
    got = _client(live_demo.url, alice.token).notifications()
    assert got[0].type == "mention" and got[0].status.id == reply.id
    assert bot.status_context(posted["id"]).descendants[0].id == reply.id


def test_bot_token_option_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "0", "--token", "same", "--bot-token", "same"]) == 2
    assert "--bot-token" in capsys.readouterr().err


def test_pixtag_demo_bot_token_makes_the_bot_account(photos: Path) -> None:
    env = {**os.environ, "PIXTAG_PHOTOS": str(photos), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pixtag_demo", "--port", "0", "--no-others",
                             "--bot-token", "cli-bot-token"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        output, deadline = "", time.monotonic() + 60
        while "Ctrl-C" not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            output += line
        url = re.search(r"PIXTAG_INSTANCE_URL=(http://127\.0\.0\.1:\d+)", output)
        assert url, output
        me = requests.get(f"{url[1]}/api/v1/accounts/verify_credentials", timeout=10,
                          headers={"Authorization": "Bearer cli-bot-token", "Accept": "application/json"})
        assert me.status_code == 200 and (me.json()["username"], me.json()["bot"]) == ("pixtag", True)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0
