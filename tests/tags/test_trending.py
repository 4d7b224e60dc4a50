"""`trending` against a small scripted Pixelfed timeline on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.tags.trending import latest_run, list_runs, trending
from tests.scripted_server import Reply, scripted

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

TOKEN = "tok-9f8e7d6c5b4a"
TAG_CYCLE = [
    ["CatsOfPixelfed", "caturday"],
    ["DogsOfMastodon"],
    ["cats", "BirdPhotography"],
    ["FlowerPower", "ThrowbackThursday"],
    [],
]
POSTS = 100


def status(i: int) -> dict[str, object]:
    tags = TAG_CYCLE[i % len(TAG_CYCLE)]
    links = " ".join(f'<a href="/discover/tags/{t.lower()}" class="u-url hashtag">#{t}</a>' for t in tags)
    return {
        "id": str(50_000 - i), "created_at": "2026-11-01T10:00:00.000Z", "visibility": "public",
        "content": f"<p>{links}</p>", "account": {"id": str(i % 7), "username": f"user{i % 7}"},
        "tags": [{"name": t.lower()} for t in tags], "media_attachments": [],
    }


TIMELINE = [status(i) for i in range(POSTS)]


def timeline(path: str, n: int) -> Reply:
    url = urlsplit(path)
    if url.path != "/api/v1/timelines/public":
        return Reply(404, b'{"error": "not found"}')
    query = parse_qs(url.query)
    limit = int(query.get("limit", ["20"])[0])
    max_id = int(query.get("max_id", ["999999"])[0])
    page = [s for s in TIMELINE if int(s["id"]) < max_id][:min(limit, 40)]
    return Reply(body=json.dumps(page).encode())


def settings_for(url: str, store: Path):
    return load_settings(instance_url=url, token=TOKEN, allow_private_hosts=["127.0.0.1"],
                         storage=str(store), request_rate=100)


def test_trending_counts_and_records_the_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with scripted(timeline) as (url, seen):
        counts = trending(settings_for(url, store), posts=90)
    assert counts.posts == 90
    assert counts.tagged_posts == 72
    assert counts.raw["CatsOfPixelfed"] == 18
    assert counts.words["cat"] == 36  # CatsOfPixelfed posts + cats posts, once per post
    assert counts.words["pixelfed"] == 18
    assert "caturday" in counts.words and "thursday" in counts.words
    pages = [s for s in seen if urlsplit(s.path).path == "/api/v1/timelines/public"]
    assert [parse_qs(urlsplit(s.path).query)["local"] for s in pages] == [["1"]] * 3
    assert "instance_trending" not in counts.extra  # this instance has no trending list (404)
    assert all(s.headers.get("Authorization") == f"Bearer {TOKEN}" for s in seen)

    storage = LocalStorage(store)
    (key,) = list_runs(storage)
    assert key == counts.extra["key"]
    text = storage.read_text(key)
    assert TOKEN not in text
    record = json.loads(text)
    host = urlsplit(url).netloc
    assert record["instance"] == host
    assert record["posts_sampled"] == 90 and record["posts_requested"] == 90
    assert record["normalized"]["cat"] == 36
    assert latest_run(storage).words == counts.words


def test_trending_command_with_plots_and_drift(tmp_path: Path) -> None:
    store, plots = tmp_path / "store", tmp_path / "plots"
    runner = CliRunner()
    with scripted(timeline) as (url, _seen):
        # No PIXTAG_ALLOW_PRIVATE_HOSTS: the instance named with --instance is trusted as named.
        env = {"PIXTAG_TOKEN": TOKEN, "PIXTAG_STORAGE": str(store), "PIXTAG_REQUEST_RATE": "100"}
        first = runner.invoke(cli, ["trending", "--posts", "10", "--instance", url], env=env)
        assert first.exit_code == 0, first.output
        assert "top 20 words (normalised):" in first.stdout
        second = runner.invoke(cli, ["trending", "--posts", "100", "--instance", url, "--json",
                                     "--plots", str(plots)], env=env)
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert data["posts_sampled"] == POSTS
    assert data["drift"] is not None and set(data["drift"]) == {"entered", "left"}
    assert TOKEN not in second.stdout
    for name in ("tags_before_after.png", "tags_top100.png"):
        assert (plots / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert len(list_runs(LocalStorage(store))) == 2
