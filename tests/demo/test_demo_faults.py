"""Fault knobs: reproducible failures for the reliability work (each test owns its instance)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
import requests
from PIL import Image

from pixtag.sources.pixelfed import BadResponse, Client
from pixtag_demo.app import DemoInstance
from pixtag_demo.faults import Faults
from pixtag_demo.world.model import World

pytestmark = pytest.mark.slow

AUTH = {"Authorization": "Bearer test-demo-token", "Accept": "application/json"}


def _tag(demo: DemoInstance, **params: object) -> requests.Response:
    return requests.get(f"{demo.url}/api/v1/timelines/tag/cat", params=params, headers=AUTH,
                        timeout=10)


def _a_jpeg(world: World) -> str:
    return next(m.path for m in world.media.values()
                if m.mime == "image/jpeg" and m.source.startswith("file:"))


def test_faults_are_off_by_default_and_validated() -> None:
    faults = Faults()
    assert all(not v for k, v in faults.to_dict().items()
               if k not in ("retry_after", "slow_seconds"))
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)
    with pytest.raises(ValueError, match="unknown"):
        Faults.from_dict({"rate_42": 1})
    with pytest.raises(ValueError, match="endless_pages"):
        Faults.from_dict({"endless_pages": "yes"})
    assert Faults.from_dict({"rate_5xx": 1, "retry_after": None}).retry_after is None


def test_put_faults_replaces_the_knobs(fresh_demo: DemoInstance) -> None:
    url = f"{fresh_demo.url}/_demo/faults"
    assert requests.put(url, json={"rate_429": 1.0, "retry_after": 7}, timeout=10).ok
    assert requests.get(url, timeout=10).json()["rate_429"] == 1.0
    resp = _tag(fresh_demo)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "7"
    bad = requests.put(url, json={"rate_429": 2}, timeout=10)
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["message"]
    assert requests.put(url, json={}, timeout=10).json() == Faults().to_dict()
    assert _tag(fresh_demo).status_code == 200
    assert requests.get(f"{fresh_demo.url}/_demo/stats", timeout=10).json()["faults"]["429"] == 1


def test_429_without_retry_after(fresh_demo: DemoInstance) -> None:
    fresh_demo.faults = Faults(rate_429=1.0, retry_after=None)
    resp = _tag(fresh_demo)
    assert resp.status_code == 429 and "retry-after" not in resp.headers


def test_5xx_and_slow_responses(fresh_demo: DemoInstance) -> None:
    fresh_demo.faults = Faults(rate_5xx=1.0)
    codes = {_tag(fresh_demo).status_code for _ in range(12)}
    assert codes <= {500, 502, 503} and len(codes) >= 2
    fresh_demo.faults = Faults(slow_rate=1.0, slow_seconds=0.3)
    start = time.monotonic()
    assert _tag(fresh_demo).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_faults_repeat_with_the_same_seed(world: World) -> None:
    def run() -> list[int]:
        with DemoInstance(world=world, token="test-demo-token",
                          faults=Faults(seed=3, rate_429=0.3, rate_5xx=0.2)) as demo:
            return [_tag(demo).status_code for _ in range(25)]
    first = run()
    assert first == run()
    assert {200, 429} <= set(first)


def test_html_and_malformed_json_bodies(fresh_demo: DemoInstance,
                                        make_client: Callable[..., Client]) -> None:
    fresh_demo.faults = Faults(html_error_rate=1.0)
    resp = _tag(fresh_demo)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    with make_client(fresh_demo.url) as client, pytest.raises(BadResponse, match="expected JSON"):
        client.hashtag_timeline("cat")
    fresh_demo.faults = Faults(malformed_json_rate=1.0)
    resp = _tag(fresh_demo)
    assert resp.headers["content-type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        resp.json()
    with make_client(fresh_demo.url) as client, pytest.raises(BadResponse, match="malformed"):
        client.hashtag_timeline("cat")


def test_truncated_media_declares_more_than_it_sends(fresh_demo: DemoInstance,
                                                     world: World) -> None:
    fresh_demo.faults = Faults(truncate_media_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(fresh_demo.url + _a_jpeg(world), timeout=10)
    fresh_demo.faults = Faults()
    assert requests.get(fresh_demo.url + _a_jpeg(world), timeout=10).ok  # server still fine


def test_corrupt_media_keeps_the_length_but_not_the_image(fresh_demo: DemoInstance,
                                                          world: World) -> None:
    path = _a_jpeg(world)
    media = world.media[world.media_by_path[path][0]]
    fresh_demo.faults = Faults(corrupt_media_rate=1.0)
    resp = requests.get(fresh_demo.url + path, timeout=10)
    original = world.media_bytes(media)
    assert resp.status_code == 200 and len(resp.content) == len(original) != 0
    assert resp.content != original
    with pytest.raises(OSError):
        Image.open(io.BytesIO(resp.content)).load()


def test_repeat_page_serves_the_previous_page_again(fresh_demo: DemoInstance) -> None:
    fresh_demo.faults = Faults(repeat_page=1)
    first = [s["id"] for s in _tag(fresh_demo, limit=10).json()]
    again = [s["id"] for s in _tag(fresh_demo, limit=10, max_id=first[-1]).json()]
    assert again == first
    moved = [s["id"] for s in _tag(fresh_demo, limit=10, max_id=first[-1]).json()]
    assert moved and int(moved[0]) < int(first[-1])


def test_endless_pages_never_end(fresh_demo: DemoInstance) -> None:
    fresh_demo.faults = Faults(endless_pages=True)
    seen: set[str] = set()
    max_id = None
    for _ in range(12):  # the real timeline ends after about 5 pages of 40
        page = _tag(fresh_demo, limit=40, **({"max_id": max_id} if max_id else {})).json()
        assert page
        ids = [s["id"] for s in page]
        assert seen.isdisjoint(ids)
        seen |= set(ids)
        max_id = min(ids, key=int)
    assert requests.get(f"{fresh_demo.url}/_demo/stats", timeout=10).json()["faults"][
        "endless_pages"] >= 1


def test_the_client_rides_out_429s(fresh_demo: DemoInstance, world: World,
                                           make_client: Callable[..., Client]) -> None:
    fresh_demo.faults = Faults(seed=1, rate_429=0.3, retry_after=0)
    with make_client(fresh_demo.url, max_retries=8) as client:
        statuses = list(client.iter_hashtag("cat"))
        assert client.http.retries > 0
    expected = {p.id for p in world.tag_timeline("cat", limit=40)}
    assert expected <= {int(s.id) for s in statuses}
    stats = fresh_demo.stats()
    assert stats["faults"].get("429", 0) > 0
