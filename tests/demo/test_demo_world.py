"""The demo world: deterministic, realistic, with every trap planted and recorded."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from pixtag_demo.world.builder import build_world
from pixtag_demo.world.entities import (
    DERIVED_TRAPS,
    POOL_TRAPS,
    TRAP_KINDS,
    Media,
    WorldError,
    snowflake,
    snowflake_time,
)
from pixtag_demo.world.images import synthetic_image
from pixtag_demo.world.model import World
from pixtag_demo.world.traps import trap_counts
from pixtag_demo.world.vocab import MEDIA_QUIRKS, POST_QUIRKS, class_tags_for


def _media_hashes(world: World, n: int = 60) -> list[str]:
    synthetic_image.cache_clear()
    sample = [world.media[i] for i in sorted(world.media)[:n]]
    sample += [m for m in world.media.values() if not m.source.startswith("file:")][:n]
    return [hashlib.sha256(world.media_bytes(m)).hexdigest() for m in sample]


# ------------------------------------------------------------------------- determinism ----
def test_same_seed_gives_the_same_world(world: World, photos: Path) -> None:
    again = build_world(photos, seed=0)
    assert again.fingerprint() == world.fingerprint()
    assert [p.id for p in again.posts] == [p.id for p in world.posts]
    assert _media_hashes(again) == _media_hashes(world)


@pytest.fixture(scope="module")
def world_seed1(photos: Path) -> World:
    return build_world(photos, seed=1)


def test_another_seed_gives_another_world(world: World, world_seed1: World) -> None:
    other = world_seed1
    assert other.fingerprint() != world.fingerprint()
    assert {p.id for p in other.posts}.isdisjoint({p.id for p in world.posts})
    assert other.clean_images != world.clean_images
    assert other.classes == world.classes


def test_the_clock_is_the_fixed_anchor_not_the_wall_clock(world: World, photos: Path) -> None:
    assert world.now.isoformat() == "2026-11-01T00:00:00+00:00"
    later = build_world(photos, now=world.now + timedelta(days=10))
    assert later.posts[0].created_at - world.posts[0].created_at == timedelta(days=10)


def test_ids_are_unique_snowflakes_of_the_creation_time(world: World) -> None:
    ids = [p.id for p in world.posts]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, reverse=True)  # newest first
    for post in world.posts:
        assert snowflake_time(post.id) == post.created_at
        assert snowflake(post.created_at) <= post.id < snowflake(post.created_at) + (1 << 22)
    assert len(set(world.media)) == len(world.media)


# ------------------------------------------------------------------------------ traps -----
def test_every_trap_kind_is_planted_for_every_class(world: World) -> None:
    counts = world.trap_counts()
    assert set(counts) == set(TRAP_KINDS)
    for kind in TRAP_KINDS:
        for cls in world.classes:
            assert counts[kind].get(cls, 0) >= 1, (kind, cls)
    for trap in world.traps:
        post = world.posts_by_id[trap.post_id]
        assert post.kind == trap.kind
        assert trap.media_id in post.media_ids


def test_trap_pool_photos_are_never_in_clean_posts(world: World) -> None:
    in_clean: Counter[str] = Counter()
    for cls, ids in world.clean_posts.items():
        for post_id in ids:
            for media in world.media_of(world.posts_by_id[post_id]):
                in_clean[media.photo] += 1
                assert media.photo.startswith(f"{cls}/")
    for cls in world.classes:
        pool = set(world.trap_pool[cls])
        assert len(pool) >= 0.12 * (len(pool) + len(world.clean_images[cls]))
        assert pool.isdisjoint(in_clean)
        assert set(world.clean_images[cls]) == {p for p in in_clean if p.startswith(f"{cls}/")}
        assert len(world.clean_images[cls]) >= 160
    assert max(in_clean.values()) == 1  # each clean photo is posted once, cleanly


def test_clean_posts_are_clean(world: World) -> None:
    wall = world.tag_wall
    for cls, ids in world.clean_posts.items():
        for post_id in ids:
            post = world.posts_by_id[post_id]
            account = world.account_of(post)
            assert post.visibility == "public" and not post.sensitive and not post.spoiler_text
            assert not account.locked and account.opt_out is None
            assert account.indexable is not False
            assert post.created_at > wall
            assert post.classes == (cls,)
            assert 1 <= len(post.media_ids) <= 3
            for media in world.media_of(post):
                assert media.kind == "image" and media.mime == "image/jpeg"
                assert not media.is_nsfw and media.photo and media.photo.startswith(f"{cls}/")


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_each_trap_has_the_property_it_is_named_after(world: World) -> None:
    wall = world.tag_wall
    for trap in world.traps:
        post = world.posts_by_id[trap.post_id]
        account = world.account_of(post)
        media = world.media[trap.media_id]
        kind = trap.kind
        if kind == "locked":
            assert account.locked and post.visibility == "public"
        elif kind in ("unlisted", "private"):
            assert post.visibility == kind
        elif kind == "sensitive":
            assert post.sensitive and not post.spoiler_text
        elif kind == "spoiler":
            assert post.sensitive and post.spoiler_text
        elif kind == "media_nsfw":
            assert media.is_nsfw and not post.sensitive
        elif kind == "opt_out_bio":
            assert account.opt_out == trap.detail and trap.detail in account.bio
        elif kind == "not_indexable":
            assert not account.local and account.indexable is False and "@" in account.acct
        elif kind == "two_classes":
            assert len(post.classes) == 2 and trap.detail in post.classes
        elif kind == "too_old":
            assert post.created_at < wall
        elif kind == "animated":
            img = _image(world.media_bytes(media))
            assert media.mime == "image/gif" and img.format == "GIF" and img.n_frames > 1
        elif kind == "not_image":
            assert media.kind == "video" and media.mime == "video/mp4"
            with pytest.raises(Image.UnidentifiedImageError):
                _image(world.media_bytes(media))
        elif kind in ("grayscale", "duplicate_exact", "duplicate_near", "duplicate_cross_class"):
            _check_copy(world, trap.kind, trap.detail, trap.cls, media)
        else:  # pragma: no cover - a new kind needs a check here
            raise AssertionError(f"unchecked trap kind {kind}")


def _check_copy(world: World, kind: str, detail: str | None, cls: str, media: Media) -> None:
    original = world.photo_path(media.photo).read_bytes()
    data = world.media_bytes(media)
    assert media.photo in world.clean_images[media.photo.split("/")[0]]
    if kind == "grayscale":
        img = _image(data)
        if detail == "L":
            assert img.mode == "L"
        else:
            r, g, b = img.convert("RGB").split()
            assert img.mode == "RGB" and r.tobytes() == g.tobytes() == b.tobytes()
    elif kind in ("duplicate_exact", "duplicate_cross_class"):
        assert data == original
        if kind == "duplicate_cross_class":
            assert not media.photo.startswith(f"{cls}/") and detail == media.photo.split("/")[0]
        else:
            clean_author = next(
                world.posts_by_id[m.post_id].account_id for m in world.media.values()
                if m.photo == media.photo and world.posts_by_id[m.post_id].kind == "clean")
            assert world.posts_by_id[media.post_id].account_id != clean_author
    else:  # near duplicate: smaller, re-encoded, same picture
        src, near = _image(original), _image(data)
        assert data != original
        assert abs(near.width - 0.75 * src.width) <= 1 and abs(near.height - 0.75 * src.height) <= 1
        a = src.convert("L").resize((32, 32))
        b = near.convert("L").resize((32, 32))
        diff = sum(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True)) / 1024
        assert diff < 12


def test_trap_counts_scale_with_the_class_size() -> None:
    big, small = trap_counts(200, 5), trap_counts(50, 5)
    assert all(big[k] >= small[k] >= 1 for k in TRAP_KINDS)
    assert 0.12 <= sum(big[k] for k in POOL_TRAPS) / 200 <= 0.2
    assert trap_counts(200, 1)["two_classes"] == 0
    assert sum(trap_counts(9, 3).values()) <= 9
    assert set(DERIVED_TRAPS) | set(POOL_TRAPS) == set(TRAP_KINDS)


# --------------------------------------------------------------------- reachability -------
def _page_all(world: World, tag: str) -> list[int]:
    seen: list[int] = []
    max_id = None
    while True:
        page = world.tag_timeline(tag, max_id=max_id, limit=40)
        if not page:
            return seen
        seen += [p.id for p in page]
        max_id = page[-1].id


def test_the_base_tag_alone_reaches_at_least_160_clean_images_per_class(world: World) -> None:
    for cls in world.classes:
        ids = set(_page_all(world, cls))
        clean = {world.media[m].photo for i in ids if world.posts_by_id[i].kind == "clean"
                 for m in world.posts_by_id[i].media_ids}
        assert len(clean) >= 160, cls
        # and all clean images are reachable through some spelling of the class
        union = set()
        for tag in world.class_tags[cls]:
            union |= {world.media[m].photo for i in _page_all(world, tag)
                      if world.posts_by_id[i].kind == "clean"
                      for m in world.posts_by_id[i].media_ids}
        assert union == set(world.clean_images[cls])


# ------------------------------------------------------------------------ hashtags --------
STOPWORDS = {"of", "the", "and", "a", "in", "on"}
# Words the tag pipeline must not mistake for concrete nouns (checked against WordNet when the
# vocabulary was chosen: first noun sense abstract, or not a noun at all).
NOT_CONCRETE = {
    "photography", "travel", "thursday", "halloween", "war", "pixelfed", "fediverse",
    "caturday", "birding", "carspotting", "nofilter", "weekend", "summer", "autumn", "golden",
    "hour", "bokeh", "macro", "black", "white", "day", "love", "mood", "sunday", "music", "fedi",
    "analog", "nature", "nsfw",
}


def normalise(tag: str) -> list[str]:
    """A tiny stand-in for pixtag.tags.trending: CamelCase split, lowercase, stopwords, plural -s."""
    words = []
    for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", tag):
        word = word.lower()
        if word in STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


def recent_public_posts(world: World, n: int = 1000, remote: bool = False) -> list:
    posts, max_id = [], None
    while len(posts) < n:
        page = world.public_timeline(local=True, remote=remote, max_id=max_id, limit=40)
        if not page:
            break
        posts += page
        max_id = page[-1].id
    return posts[:n]


def test_normalise_helper() -> None:
    assert normalise("CatsOfPixelfed") == ["cat", "pixelfed"]
    assert normalise("BirdPhotography") == ["bird", "photography"]
    assert normalise("Dogs") == ["dog"]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("remote", [False, True])
def test_class_words_are_the_most_frequent_concrete_nouns(world: World, world_seed1: World,
                                                          seed: int, remote: bool) -> None:
    w = world if seed == 0 else world_seed1
    posts = recent_public_posts(w, remote=remote)
    assert len(posts) >= 600
    counts: Counter[str] = Counter()
    for post in posts:
        counts.update({word for tag in post.hashtags for word in normalise(tag)})
    weakest = min(counts[c] for c in w.classes)
    assert weakest >= 0.12 * len(posts)
    others = {word: n for word, n in counts.items()
              if word not in w.classes and word not in NOT_CONCRETE}
    assert max(others.values()) < 0.75 * weakest, sorted(others.items(), key=lambda x: -x[1])[:5]
    for nickname in ("kitty", "puppy", "animal", "pet"):
        assert counts[nickname] < 0.5 * weakest, nickname
    frequent = [w_ for w_, _ in counts.most_common() if w_ not in NOT_CONCRETE][:5]
    assert sorted(frequent) == w.classes


def test_off_topic_tags_have_roughly_the_planned_shares(world: World) -> None:
    posts = [p for p in world.posts if p.visibility == "public"]
    share = {tag: sum(tag in p.slugs for p in posts) / len(posts)
             for tag in ("photography", "mastodon", "travel", "thursday", "halloween", "war")}
    assert 0.28 <= share["photography"] <= 0.42
    for tag in ("mastodon", "travel", "thursday", "halloween", "war"):
        assert 0.02 <= share[tag] <= 0.15, (tag, share[tag])


def test_hashtags_come_in_several_spellings(world: World) -> None:
    spellings = Counter(t for p in world.posts for t in p.hashtags)
    for tag in ("cat", "Cats", "CatsOfPixelfed", "caturday", "BirdPhotography", "Dogs", "puppy"):
        assert spellings[tag] > 0, tag
    for post in world.posts:
        if "caturday" in post.hashtags:
            assert {"cat", "Cat", "Cats", "CatsOfPixelfed"} & set(post.hashtags)
    assert all(h.name == h.slug == h.name.lower() for h in world.hashtags.values())


def test_unknown_class_names_get_name_plural_and_of_pixelfed() -> None:
    assert class_tags_for("boat").names == ["boat", "Boats", "BoatOfPixelfed"]
    assert class_tags_for("tree_frog").names == ["treefrog", "TreeFrogs", "TreeFrogOfPixelfed"]
    assert class_tags_for("cat").names[:3] == ["cat", "Cats", "CatsOfPixelfed"]


# --------------------------------------------------------------------------- realism ------
def test_the_instance_looks_lived_in(world: World) -> None:
    local = [a for a in world.accounts.values() if a.local]
    remote = [a for a in world.accounts.values() if not a.local]
    assert 75 <= len(local) <= 90 and remote
    assert all(a.acct.endswith(f"@{a.domain}") for a in remote)
    assert {a.opt_out for a in local} >= {"#nobot", "#noai", "#noindex"}
    assert Counter(p.visibility for p in world.posts).keys() == {"public", "unlisted", "private",
                                                                 "direct"}
    assert world.posts[-1].created_at < world.now - timedelta(days=183)
    albums = [p for p in world.posts if p.pf_type == "photo:album"]
    assert albums and all(2 <= len(p.media_ids) <= 3 for p in albums)
    assert any(p.pf_type == "text" and not p.media_ids for p in world.posts)
    assert any(m.path.startswith("/storage/m/_v2/") for m in world.media.values())
    assert any(re.fullmatch(r"/storage/m/[0-9a-f]{40}/[0-9a-f]{40}/\w+\.jpg", m.path)
               for m in world.media.values())
    v2 = re.compile(r"/storage/m/_v2/(\d+)/[0-9a-f]{9}-[0-9a-f]{6}/[A-Za-z0-9]{12}/\w+\.\w+")
    for m in world.media.values():
        match = v2.fullmatch(m.path)
        assert match is None or int(match[1]) == m.account_id


def test_real_world_variance_is_present_on_a_minority(world: World) -> None:
    post_quirks = Counter(q for p in world.posts for q in p.quirks)
    media_quirks = Counter(q for m in world.media.values() for q in m.quirks)
    for quirk in POST_QUIRKS:
        assert 0 < post_quirks[quirk] < 0.15 * len(world.posts), quirk
    for quirk in MEDIA_QUIRKS:
        assert 0 < media_quirks[quirk] < 0.15 * len(world.media), quirk


def test_a_small_folder_with_unknown_classes_builds(tmp_path: Path) -> None:
    for cls, colour in (("boat", (20, 40, 200)), ("tree_frog", (30, 160, 40))):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.new("RGB", (64, 48), colour).save(tmp_path / cls / f"{cls}_{i}.jpg")
    (tmp_path / "notes.txt").write_text("not a class")
    w = build_world(tmp_path)
    assert w.classes == ["boat", "tree_frog"]
    assert w.class_tags["boat"] == ["boat", "Boats", "BoatOfPixelfed"]
    assert sum(len(v) for v in w.clean_images.values()) == 8
    assert w.tag_timeline("boat")


def test_a_folder_without_photos_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorldError, match="no photos"):
        build_world(tmp_path)
    with pytest.raises(WorldError, match="does not exist"):
        build_world(tmp_path / "missing")
