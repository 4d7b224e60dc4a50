"""`pixtag auth` runs the OAuth authorization-code flow against the local instance."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from pixtag.core.config import load_settings
from pixtag.sources.pixelfed import AuthError, Client
from pixtag_demo.app import DemoInstance

pytestmark = pytest.mark.slow


def test_auth_gets_checks_and_stores_a_user_token(demo: DemoInstance, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    env.update(PIXTAG_ALLOW_PRIVATE_HOSTS="127.0.0.1", PIXTAG_CREDENTIALS_FILE=str(creds))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pixtag"), "auth", "--instance", demo.url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    url = ""
    while not url:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if "/oauth/authorize?" in line:
            url = line.strip()
    page = requests.get(url, timeout=10).text
    code = re.search(r'<pre id="code">([^<]+)</pre>', page).group(1)
    out, err = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 0, err
    stored = yaml.safe_load(creds.read_text())
    token = stored[demo.url]
    assert token and token not in out + err
    assert creds.stat().st_mode & 0o077 == 0
    # the stored token is a working user token, found by the settings for that instance
    monkeypatch.setenv("PIXTAG_CREDENTIALS_FILE", str(creds))
    settings = load_settings(instance_url=demo.url, allow_private_hosts=["127.0.0.1"])
    with Client(settings) as client:
        assert client.hashtag_timeline("cat", limit=1)


def test_a_wrong_code_fails_clearly_and_stores_nothing(demo: DemoInstance, tmp_path: Path) -> None:
    creds = tmp_path / "creds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    env.update(PIXTAG_ALLOW_PRIVATE_HOSTS="127.0.0.1", PIXTAG_CREDENTIALS_FILE=str(creds))
    out = subprocess.run([str(Path(sys.executable).parent / "pixtag"), "auth", "--instance", demo.url],
                         input="not-a-real-code\n", capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "OAuth step failed" in out.stderr or "access token" in out.stderr
    assert not creds.exists()


def test_an_app_only_token_is_refused_with_a_clear_error(demo: DemoInstance) -> None:
    app = requests.post(f"{demo.url}/api/v1/apps", data={"client_name": "t", "redirect_uris":
                        "urn:ietf:wg:oauth:2.0:oob"}, timeout=10).json()
    grant = requests.post(f"{demo.url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"]}, timeout=10).json()
    settings = load_settings(instance_url=demo.url, token=grant["access_token"], allow_private_hosts=["127.0.0.1"])
    with Client(settings) as client, pytest.raises(AuthError) as err:
        client.hashtag_timeline("cat")
    assert grant["access_token"] not in str(err.value)
    assert "user token" in str(err.value)


def test_auth_bot_gets_a_read_write_token_and_keeps_it_apart(demo: DemoInstance, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``pixtag auth --bot``: the same flow with the read and write scopes, stored 0600 under the
    bot's own key, where ``pixtag bot`` finds it (and the reader's token stays as it was)."""
    from urllib.parse import parse_qs, urlsplit

    creds = tmp_path / "creds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}
    env.update(PIXTAG_ALLOW_PRIVATE_HOSTS="127.0.0.1", PIXTAG_CREDENTIALS_FILE=str(creds))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pixtag"), "auth", "--bot", "--instance", demo.url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    url, said = "", ""
    while not url:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        said += line
        if "/oauth/authorize?" in line:
            url = line.strip()
    assert parse_qs(urlsplit(url).query)["scope"] == ["read write"] and "log in AS THE BOT ACCOUNT" in said
    code = re.search(r'<pre id="code">([^<]+)</pre>', requests.get(url, timeout=10).text).group(1)
    out, err = proc.communicate(code + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "Bot token of @demo checked and stored" in out
    stored = yaml.safe_load(creds.read_text())
    assert set(stored) == {f"bot:{demo.url}"} and stored[f"bot:{demo.url}"] not in out + err
    assert creds.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("PIXTAG_CREDENTIALS_FILE", str(creds))
    settings = load_settings(instance_url=demo.url, allow_private_hosts=["127.0.0.1"])
    assert settings.token_value() is None and settings.bot_token_value() == stored[f"bot:{demo.url}"]
