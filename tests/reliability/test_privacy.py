"""Privacy: every kind of non-consenting post is planted in the local instance (on the newest
clean posts of two classes, whose photos nothing else shows, so the scraper meets them first
and would keep them if a rule failed), then scrape → features → train runs; none of their
images reaches the manifest, the feature cache or the model's training/test split. A scripted
instance adds what only a misbehaving server sends (non-public posts on a tag timeline, unknown
flags): those are never even downloaded."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pixtag.core import dataset
from pixtag.core.config import load_settings
from pixtag.core.storage import LocalStorage
from pixtag.data.scrape import scrape
from pixtag.model.features.cache import read_cache
from pixtag.model.features.compute import features
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.entities import Post
from pixtag_demo.world.model import World
from tests.conftest import DEMO_TOKEN, demo_settings
from tests.helpers import random_weights
from tests.reliability.cases import PLANTED_DEMO, PLANTED_SCRIPTED
from tests.scripted_server import Reply, scripted

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

CLASSES = ["cat", "dog"]
TINY = "mobilenetv3_small_050"  # random weights: privacy does not need a good model, only its data
HIDDEN = {"unlisted", "private", "direct"}  # the instance never shows these on a tag timeline
REASON = {"locked": "locked_account", "sensitive": "sensitive", "spoiler": "spoiler", "media_nsfw": "media_nsfw",
          "not_indexable": "opted_out", **{k: "opted_out" for k in PLANTED_DEMO if k.startswith("bio_")}}
# The world's own planted posts that are about consent (not about image quality or labels).
WORLD_CONSENT_TRAPS = {"locked", "unlisted", "private", "sensitive", "spoiler", "media_nsfw", "opt_out_bio",
                       "not_indexable"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plant(world: World) -> tuple[World, dict[int, str]]:
    """A copy of ``world`` where the newest clean single-photo posts (of photos no other post
    shows) are made non-consenting, one kind each; returns it and {post id: kind}."""
    uses = Counter(m.photo for m in world.media.values() if m.photo)
    accounts, media = dict(world.accounts), dict(world.media)
    next_id = max(accounts) + 1
    planted: dict[int, str] = {}
    changed: dict[int, Post] = {}
    candidates = {c: [world.posts_by_id[i] for i in world.clean_posts[c]] for c in CLASSES}
    for n, kind in enumerate(PLANTED_DEMO):
        pool = candidates[CLASSES[n % len(CLASSES)]]
        post = next(p for p in pool if len(p.media_ids) == 1 and uses[world.media[p.media_ids[0]].photo] == 1
                    and p.id not in changed)
        author = world.accounts[post.account_id]
        if kind == "locked" or kind.startswith("bio_") or kind == "not_indexable":
            account = replace(author, id=next_id, username=f"planted{next_id}", locked=kind == "locked",
                              bio=f"Photos, mostly. #{kind[4:]}" if kind.startswith("bio_") else author.bio,
                              domain="remote.example" if kind == "not_indexable" else author.domain,
                              indexable=False if kind == "not_indexable" else author.indexable)
            accounts[next_id] = account
            post = replace(post, account_id=next_id)
            next_id += 1
        elif kind in HIDDEN:
            post = replace(post, visibility=kind)
        elif kind == "sensitive":
            post = replace(post, sensitive=True)
        elif kind == "spoiler":
            post = replace(post, spoiler_text="Vet visit")
        elif kind == "media_nsfw":
            media[post.media_ids[0]] = replace(media[post.media_ids[0]], is_nsfw=True)
        changed[post.id] = post
        planted[post.id] = kind
    posts = [changed.get(p.id, p) for p in world.posts]
    return replace(world, posts=posts, accounts=accounts, media=media), planted


@pytest.fixture(scope="module")
def pipeline(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """scrape → features → train on the planted instance; what each stage kept."""
    import mlflow

    from pixtag.model.training.train import train

    root = tmp_path_factory.mktemp("privacy")
    planted_world, planted = plant(world)
    weights = random_weights(TINY, root / "tiny.pth")
    with DemoInstance(world=planted_world, token=DEMO_TOKEN) as instance:
        settings = load_settings(**demo_settings(
            instance.url, storage=str(root / "ds"), backbone=TINY, weights={TINY: str(weights)},
            mlflow_uri=f"sqlite:///{root / 'mlflow.db'}", batch_size=16, min_per_class=1))
        scrape(settings, CLASSES, per_class=30, progress=False)
    store = LocalStorage(root / "ds")
    features(settings)
    trained = train(settings)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    split = mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/split.json")
    key = trained["cache_key"]
    return {"world": planted_world, "planted": planted, "manifest": store.read_parquet(dataset.MANIFEST),
            "dropped": store.read_parquet(dataset.DROPPED), "cache": set(read_cache(store, key)),
            "trained": set(split["train"]) | set(split["test"])}


def images_of(world: World, post_id: int) -> set[str]:
    return {sha(world.media_bytes(world.media[m])) for m in world.posts_by_id[post_id].media_ids}


def test_every_planted_post_is_met_and_dropped_for_its_reason(pipeline: dict[str, Any]) -> None:
    dropped, planted = pipeline["dropped"], pipeline["planted"]
    assert sorted(planted.values()) == sorted(PLANTED_DEMO)
    reasons = dropped.groupby("post_id")["reason"].agg(set).to_dict()
    for post_id, kind in planted.items():
        if kind in HIDDEN:
            assert str(post_id) not in reasons, (kind, "the instance showed a hidden post")
        else:
            assert REASON[kind] in reasons.get(str(post_id), set()), (kind, reasons.get(str(post_id)))


def test_no_non_consenting_image_reaches_the_manifest_features_or_training(pipeline: dict[str, Any]) -> None:
    world, manifest = pipeline["world"], pipeline["manifest"]
    kept = set(manifest["sha256"])
    assert len(kept) >= 55  # the pipeline did run on real data
    forbidden: dict[str, set[str]] = {}
    for post_id, kind in pipeline["planted"].items():
        forbidden[f"planted {kind}"] = images_of(world, post_id)
    for trap in world.traps:
        if trap.kind in WORLD_CONSENT_TRAPS:
            forbidden.setdefault(f"world {trap.kind}", set()).update(images_of(world, trap.post_id))
    assert len(forbidden) == len(PLANTED_DEMO) + len(WORLD_CONSENT_TRAPS)
    for what, shas in forbidden.items():
        assert not shas & kept, f"{what}: in the manifest"
        assert not shas & pipeline["cache"], f"{what}: in the feature cache"
        assert not shas & pipeline["trained"], f"{what}: in the training/test split"
    assert not set(manifest["post_id"].astype(int)) & set(pipeline["planted"])
    # and nothing beyond the consenting manifest was embedded or trained on
    assert pipeline["cache"] == kept
    assert pipeline["trained"] == kept


# --- what only a misbehaving server sends ------------------------------------------------------
def scripted_post(i: int, kind: str, url: str) -> dict[str, Any]:
    account: dict[str, Any] = {"id": str(i), "username": f"u{i}", "acct": f"u{i}", "locked": False,
                               "discoverable": True, "note": "<p>cats!</p>"}
    media: dict[str, Any] = {"id": str(i), "type": "image", "url": url, "is_nsfw": False}
    post: dict[str, Any] = {"id": str(1000 - i), "created_at": "2026-10-01T10:00:00.000Z", "visibility": "public",
                            "sensitive": False, "spoiler_text": "", "content": "", "tags": [{"name": "cat"}]}
    if kind == "discoverable_false":
        account["discoverable"] = False
    elif kind == "locked_unknown":
        del account["locked"]
    elif kind == "sensitive_unknown":
        post["sensitive"] = None
    elif kind.endswith("_shown"):
        post["visibility"] = kind.removesuffix("_shown")
    elif kind == "nsfw_as_string":
        media["is_nsfw"] = "1"
    elif kind == "indexable_as_zero":
        account["indexable"] = 0
    return post | {"account": account, "media_attachments": [media]}


def test_a_misbehaving_server_cannot_make_pixtag_take_or_fetch_a_non_consenting_image(
        photos: Path, tmp_path: Path) -> None:
    files = sorted((photos / "dog").glob("*.jpg"))
    kinds = [*PLANTED_SCRIPTED, "consenting"]

    def handler(path: str, n: int) -> Reply:
        parts = urlsplit(path)
        if parts.path == "/api/v1/timelines/tag/cat" and "max_id" not in parse_qs(parts.query):
            return Reply(200, json.dumps([scripted_post(i, k, f"{base}/m/{i}") for i, k in enumerate(kinds)]).encode())
        if parts.path.startswith("/m/"):
            return Reply(200, files[int(parts.path[3:])].read_bytes(), {"Content-Type": "image/jpeg"})
        return Reply(200, b"[]")

    with scripted(handler) as (base, seen):
        settings = load_settings(**demo_settings(base, storage=str(tmp_path / "ds"), min_per_class=1))
        scrape(settings, ["cat"], per_class=10, progress=False)
    store = LocalStorage(tmp_path / "ds")
    manifest, dropped = store.read_parquet(dataset.MANIFEST), store.read_parquet(dataset.DROPPED)
    consenting = str(len(kinds) - 1)
    assert list(manifest["media_id"]) == [consenting]
    assert set(dropped["media_id"].replace("", None).dropna()) | set(dropped["post_id"]) >= {
        str(1000 - i) for i in range(len(kinds) - 1)}
    # screened before any download: the only image ever fetched is the consenting one
    assert [s.path for s in seen if s.path.startswith("/m/")] == [f"/m/{consenting}"]
    assert {f.stem for f in (tmp_path / "ds" / "originals").rglob("*") if f.is_file()} == set(manifest["sha256"])
