"""Faults from the instance: every fault knob of the local instance, at a rate retries absorb
(the scrape gives exactly the clean run's dataset) and always on (one clear error naming the
endpoint, or counted drops, in bounded time); connection resets and unexpected JSON from a
scripted instance; the trending sample under mixed faults."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.scrape import scrape
from pixtag.model.classifier import openset
from pixtag.sources.http import HTTPError, TransientError
from pixtag.sources.pixelfed import BadResponse, Client
from pixtag_demo.app import DemoInstance
from pixtag_demo.faults import Faults
from tests.conftest import demo_settings
from tests.reliability.cases import (
    ABSORBED,
    ABSORBED_RETRIES,
    FAST_RETRIES,
    FAULT_KINDS,
    PERSISTENT_API,
    PERSISTENT_MEDIA,
    PERSISTENT_RETRIES,
)
from tests.scripted_server import Reply, scripted

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

CLASSES = ["cat"]
PER_CLASS = 45  # more than the first page of #cat holds: paging matters
BACKGROUND_IMAGES = 20  # background images page the public timeline: its faults must be absorbed too
# Which stats()["faults"] key shows that a knob really fired.
FIRED = {"429_retry_after": "429", "429_no_retry_after": "429", "slow": "slow", "truncated": "truncate_media",
         "html": "html", "malformed_json": "malformed_json", "repeat_page": "repeat_page",
         "corrupt_media": "corrupt_media", "endless_pages": "endless_pages"}


def run_scrape(url: str, root: Path, classes: list[str] = CLASSES, per_class: int = PER_CLASS,
               **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("background", BACKGROUND_IMAGES)
    # a dataset of whatever the scrape kept, however few (no class is left out for its size)
    settings = load_settings(**demo_settings(url, storage=str(root / "store"), **{"min_per_class": 1, **overrides}))
    summary = scrape(settings, classes, per_class=per_class, out=str(root / "ds"), progress=False)
    store = LocalStorage(root / "ds")
    return {"summary": summary, "store": store, "manifest": portless(store.read_parquet(dataset.MANIFEST), url),
            "dropped": portless(store.read_parquet(dataset.DROPPED), url)}


def portless(frame: pd.DataFrame, url: str) -> pd.DataFrame:
    """The frame with the instance's address taken out (each test instance has its own port)."""
    for column in ("media_url", "detail"):
        if column in frame:
            frame[column] = frame[column].str.replace(url, "", regex=False)
    return frame


def assert_whole(result: dict[str, Any]) -> None:
    """No duplicate row; every row's stored image is there and complete."""
    from PIL import Image

    manifest, store = result["manifest"], result["store"]
    assert manifest["sha256"].is_unique
    assert not manifest.duplicated(["post_id", "media_id"]).any()
    for key in manifest["path"]:
        with Image.open(store.local_path(key)) as img:
            img.load()
    assert not [k for k in store.list() if k.endswith(".part")]


@pytest.fixture(scope="module")
def clean(demo: DemoInstance, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_scrape(demo.url, tmp_path_factory.mktemp("clean"))


def fired(instance: DemoInstance, name: str) -> int:
    faults = instance.stats()["faults"]
    if name == "5xx":
        return sum(faults.get(code, 0) for code in ("500", "502", "503"))
    if name == "mixed":
        return sum(faults.values())
    return faults.get(FIRED[name], 0)


# --- absorbed: the same dataset as a clean run -------------------------------------------------
@pytest.mark.parametrize("name", list(ABSORBED))
def test_faults_retries_absorb_give_the_clean_dataset(name: str, clean: dict[str, Any], fresh_demo: DemoInstance,
                                                      tmp_path: Path) -> None:
    fresh_demo.faults = ABSORBED[name]
    result = run_scrape(fresh_demo.url, tmp_path, max_retries=ABSORBED_RETRIES, **FAST_RETRIES)
    assert fired(fresh_demo, name) > 0, f"the {name} fault never fired"
    assert (clean["manifest"]["label"] == openset.BACKGROUND).sum() == BACKGROUND_IMAGES
    pd.testing.assert_frame_equal(result["manifest"], clean["manifest"])
    pd.testing.assert_frame_equal(result["dropped"], clean["dropped"])
    assert_whole(result)


# --- persistent: one clear error, in bounded time ------------------------------------------------
@pytest.mark.parametrize("name", list(PERSISTENT_API))
def test_a_persistent_api_fault_is_one_clear_error_in_bounded_time(name: str, fresh_demo: DemoInstance,
                                                                    tmp_path: Path) -> None:
    faults, message = PERSISTENT_API[name]
    fresh_demo.faults = faults
    started = time.monotonic()
    with pytest.raises(HTTPError, match=message) as err:
        run_scrape(fresh_demo.url, tmp_path, max_retries=PERSISTENT_RETRIES, **FAST_RETRIES)
    assert time.monotonic() - started < 30
    assert "/api/v1/timelines/tag/" in str(err.value)  # names the endpoint
    assert fired(fresh_demo, name) > 0
    # bounded: the optional trending list and the first tag timeline, each tried 1 + retries times
    requests = fresh_demo.stats()["requests"]
    assert requests.get("tag_timeline", 0) == PERSISTENT_RETRIES + 1, requests
    assert not (tmp_path / "ds" / dataset.MANIFEST).exists()
    assert not list((tmp_path / "ds").glob("parts/*"))


@pytest.mark.parametrize("name", list(PERSISTENT_MEDIA))
def test_persistently_broken_media_are_counted_drops(name: str, fresh_demo: DemoInstance, tmp_path: Path) -> None:
    faults, reasons = PERSISTENT_MEDIA[name]
    fresh_demo.faults = faults
    started = time.monotonic()
    result = run_scrape(fresh_demo.url, tmp_path, classes=["cat"], per_class=10,
                        max_retries=PERSISTENT_RETRIES, **FAST_RETRIES)
    assert time.monotonic() - started < 60
    assert fired(fresh_demo, name) > 0
    assert result["manifest"].empty  # nothing corrupt or partial was kept
    dropped = result["dropped"]
    media_drops = dropped[dropped["media_id"] != ""]
    broken = media_drops[media_drops["reason"].isin(reasons)]
    assert len(broken) >= 10 and set(broken["reason"]) <= reasons
    assert result["summary"].dropped == dropped["reason"].value_counts().to_dict()
    if name == "truncated":
        assert broken["detail"].str.contains("cut short").all()
        # each image was tried 1 + retries times, no more
        assert fresh_demo.stats()["requests"]["media"] <= (PERSISTENT_RETRIES + 1) * len(media_drops)


# --- pagination -------------------------------------------------------------------------------
def test_pagination_that_repeats_forever_stops(fresh_demo: DemoInstance, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    fresh_demo.faults = Faults(repeat_page=10_000)
    with caplog.at_level(logging.WARNING, logger="pixtag"):
        result = run_scrape(fresh_demo.url, tmp_path, **FAST_RETRIES)
    assert "pagination repeats itself" in caplog.text
    assert fired(fresh_demo, "repeat_page") > 0
    # per tag: the first page, then the repeated page asked 1 + max_repeats (2) times
    requests = fresh_demo.stats()["requests"]["tag_timeline"]
    tags = len(result["summary"].by_class)
    assert requests <= 4 * 12 * tags, requests
    assert_whole(result)


def test_pagination_that_never_ends_is_bounded(world: Any, fresh_demo: DemoInstance, tmp_path: Path) -> None:
    """Exhaustive for one class: past the real end of a timeline the instance makes up pages of
    real posts under new ids; paging stops at the 6-month wall or the post budget, and the
    made-up posts (same images) never reach the dataset."""
    fresh_demo.faults = Faults(endless_pages=True)
    started = time.monotonic()
    result = run_scrape(fresh_demo.url, tmp_path, classes=["dog"], per_class=400)
    assert time.monotonic() - started < 60
    assert fired(fresh_demo, "endless_pages") > 0
    assert result["summary"].by_class["dog"]["posts_seen"] <= 800  # posts_factor x per_class
    real = {str(p.id) for p in world.posts}
    assert set(result["manifest"]["post_id"]) <= real
    clean_dog = {str(i) for i in world.clean_posts["dog"]}
    assert len(set(result["manifest"]["post_id"]) & clean_dog) >= 150
    assert_whole(result)


# --- connection resets and unexpected JSON (a scripted instance) -------------------------------
def status(i: int, url: str, **over: Any) -> dict[str, Any]:
    data = {"id": str(1000 - i), "created_at": "2026-10-01T10:00:00.000Z", "visibility": "public",
            "sensitive": False, "spoiler_text": "", "content": "", "tags": [{"name": "cat"}],
            "account": {"id": str(i), "username": f"u{i}", "acct": f"u{i}", "locked": False, "note": ""},
            "media_attachments": [{"id": str(i), "type": "image", "url": url}]}
    data.update(over)
    return data


def client_for(url: str, **overrides: Any) -> Client:
    return Client(load_settings(**demo_settings(url, **{**FAST_RETRIES, **overrides})))


def test_connection_resets_are_retried_then_a_clear_error() -> None:
    tries: dict[str, int] = {}

    def every_first_try_resets(path: str, n: int) -> Reply:
        tries[path] = tries.get(path, 0) + 1
        if tries[path] == 1:
            return Reply(reset=True)
        return Reply(200, json.dumps([status(1, "http://x/m.jpg")]).encode())

    with scripted(every_first_try_resets) as (url, seen):
        with client_for(url, max_retries=3) as client:
            page = client.hashtag_timeline("cat")
            assert [s.id for s in page] == ["999"] and client.http.retries == 1
    with scripted(lambda p, n: Reply(reset=True)) as (url, seen):
        with client_for(url, max_retries=3) as client, pytest.raises(TransientError) as err:
            client.hashtag_timeline("cat")
    assert len(seen) == 4
    assert "GET" in str(err.value) and "/api/v1/timelines/tag/cat" in str(err.value)


def test_unexpected_json_is_counted_and_fails_closed(photos: Path, tmp_path: Path) -> None:
    """Statuses with missing fields or wrong types are counted (``unparseable``), never guessed:
    a consent field that cannot be read drops the post; the good posts still make the dataset."""
    good = sorted((photos / "cat").glob("*.jpg"))[:3]
    broken = [
        {"id": None},  # no id
        {"id": "abc", "account": "alice"},  # account not an object
        {"media_attachments": {"id": "1"}},  # not a list
        {"created_at": "yesterday"},  # not a date
        {"sensitive": "maybe"},  # a consent flag of the wrong type
        {"account": {"id": "7", "username": "u7", "locked": "perhaps"}},
        "just a string",
        17,
    ]

    def handler(path: str, n: int) -> Reply:
        parts = urlsplit(path)
        if parts.path == "/api/v1/timelines/tag/cat" and "max_id" not in parse_qs(parts.query):
            page: list[Any] = [status(i, f"{base}/m/{i}") for i in range(len(good))]
            for j, change in enumerate(broken):
                page.append(status(100 + j, f"{base}/m/0", **change) if isinstance(change, dict) else change)
            return Reply(200, json.dumps(page).encode())
        if parts.path == "/api/v1/timelines/tag/dog":
            return Reply(200, b'{"data": []}')  # a well-formed object where a list belongs
        if parts.path.startswith("/m/"):
            return Reply(200, good[int(parts.path[3:])].read_bytes(), {"Content-Type": "image/jpeg"})
        return Reply(200, b"[]")

    with scripted(handler) as (base, _):
        settings = load_settings(**demo_settings(base, storage=str(tmp_path / "store"), min_per_class=1,
                                                 **FAST_RETRIES))
        summary = scrape(settings, ["cat"], per_class=10, out=str(tmp_path / "ds"), progress=False)
        with client_for(base) as client, pytest.raises(BadResponse, match="expected a JSON list"):
            client.hashtag_timeline("dog")
    manifest = LocalStorage(tmp_path / "ds").read_parquet(dataset.MANIFEST)
    assert sorted(manifest["post_id"]) == sorted(str(1000 - i) for i in range(len(good)))
    dropped = LocalStorage(tmp_path / "ds").read_parquet(dataset.DROPPED)
    unparseable = dropped[dropped["reason"] == "unparseable"]
    assert sum(int(d.split("x ", 1)[0]) for d in unparseable["detail"]) == len(broken)
    assert summary.counts == {"cat": len(good)}


# --- trending ---------------------------------------------------------------------------------
def test_trending_under_mixed_faults_counts_what_a_clean_sample_counts(demo: DemoInstance, fresh_demo: DemoInstance,
                                                                       tmp_path: Path) -> None:
    from pixtag.tags.trending import trending

    clean = trending(load_settings(**demo_settings(demo.url, storage=str(tmp_path / "a"))), posts=300)
    fresh_demo.faults = ABSORBED["mixed"]
    faulty = trending(load_settings(**demo_settings(fresh_demo.url, storage=str(tmp_path / "b"),
                                                    max_retries=ABSORBED_RETRIES, **FAST_RETRIES)), posts=300)
    assert fired(fresh_demo, "mixed") > 0
    assert (faulty.posts, faulty.raw, faulty.words) == (clean.posts, clean.raw, clean.words)


def test_every_fault_kind_is_tried() -> None:
    """The README's fault count is the number of kinds these tests exercise."""
    tried = set(ABSORBED) | set(PERSISTENT_API) | set(PERSISTENT_MEDIA) | {"reset", "unexpected_json",
                                                                            "endless_pages"}
    assert set(FAULT_KINDS) <= tried
