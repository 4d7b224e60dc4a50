"""The local instance's default world: photos5 + photos_more (eighteen classes) + everyday photos.

One world, built once per session (about 1.5 s), read by every check below: the classes and
their traps, how the new classes are tagged, the everyday photos' tags, the posts with two class
tags and their recorded truth, and what ``pixtag trending`` would count on its public timeline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from pixtag.tags.normalize import normalize
from pixtag.tags.select import select_classes
from pixtag_demo.world.builder import build_world, merge_photos
from pixtag_demo.world.entities import TRAP_KINDS, Post, WorldError
from pixtag_demo.world.model import World
from pixtag_demo.world.vocab import (
    FILLER_FALLBACK_TAGS,
    KNOWN_CLASS_TAGS,
    OFF_TOPIC,
    OTHER_FALLBACK_TAGS,
    OTHER_TAGS,
    OTHER_TRAPS,
)
from tests.conftest import photos_dir

pytestmark = pytest.mark.usefixtures("wordnet")

NEW_CLASSES = ["butterfly", "deer", "fox", "hedgehog", "motorcycle", "mushroom", "pizza", "rabbit",
               "ramen", "snail", "spider", "squirrel", "sushi"]
CLASSES18 = sorted(["bird", "car", "cat", "dog", "flower", *NEW_CLASSES])
NOT_IN_WORDNET = ["ramen"]  # select_classes needs it allowed (its WordNet checks cannot judge it)


def shared_data() -> Path:
    """../shared/data, found like the test photos ($PIXTAG_PHOTOS's parent or next to the repo)."""
    return photos_dir().parent


@pytest.fixture(scope="session")
def world18() -> World:
    data = shared_data()
    return build_world([data / "photos5", data / "photos_more"], others=data / "others")


def words(post: Post) -> set[str]:
    return {w for tag in post.hashtags for w in normalize(tag)}


def trending_counts(world: World, n: int = 1000) -> Counter[str]:
    """What ``pixtag trending`` counts: each normalised word once per post, over the ``n`` newest
    posts of the local public timeline (its default: 1000 posts, ``timeline: local``)."""
    posts: list[Post] = []
    max_id = None
    while len(posts) < n:
        page = world.public_timeline(local=True, max_id=max_id, limit=40)
        if not page:
            break
        posts += page
        max_id = page[-1].id
    counts: Counter[str] = Counter()
    for post in posts[:n]:
        counts.update(words(post))
    return counts


# ------------------------------------------------------------------------------ classes -----
def test_the_default_world_has_the_eighteen_classes_with_every_trap(world18: World) -> None:
    assert world18.classes == CLASSES18
    data = shared_data()
    assert world18.photo_path("fox/fox_0001.jpg") == data / "photos_more" / "fox" / "fox_0001.jpg"
    assert world18.photo_path("cat/cat_0001.jpg") == data / "photos5" / "cat" / "cat_0001.jpg"
    counts = world18.trap_counts()
    for cls in CLASSES18:
        assert all(counts[kind].get(cls, 0) >= 1 for kind in TRAP_KINDS), cls
        total = len(world18.clean_images[cls]) + len(world18.trap_pool[cls])
        assert total == (109 if cls == "fox" else 150 if cls in NEW_CLASSES else 200)
        assert len(world18.clean_images[cls]) >= 0.8 * total  # fox too: traps scale with the class
        reached = {world18.media[m].photo for p in world18.tag_timeline(cls, limit=40)
                   for m in world18.posts_by_id[p.id].media_ids}
        assert reached, cls


def test_class_tags_never_normalise_to_another_class() -> None:
    classes = set(KNOWN_CLASS_TAGS)
    assert set(CLASSES18) <= classes
    for cls, spec in KNOWN_CLASS_TAGS.items():
        for name in spec.names:
            assert set(normalize(name)) & classes <= {cls}, (cls, name)
        for name in [spec.base, *(v for v, _ in spec.variants), spec.habit]:
            assert cls in normalize(name), (cls, name)  # base and variants are the class word


def test_everyday_tags_name_no_class() -> None:
    """No tag an everyday photo can get names a class (the insects once carried #butterfly);
    only the planted traps (#HotDog, #CatWalk) hold a class word on purpose."""
    classes = set(KNOWN_CLASS_TAGS)
    tables = [t for pool in OTHER_TAGS.values() for t, _ in pool]
    tables += [t for t, _ in OFF_TOPIC] + list(OTHER_FALLBACK_TAGS) + list(FILLER_FALLBACK_TAGS)
    offenders = {t: normalize(t) for t in tables if set(normalize(t)) & classes}
    assert offenders == {}
    assert all(set(normalize(tag)) & classes for tag, _ in OTHER_TRAPS.values())


def test_no_everyday_photo_carries_a_class_tag(world18: World) -> None:
    classes = set(world18.classes)
    everyday = [p for p in world18.posts if any(world18.media[m].other for m in p.media_ids)]
    assert len(everyday) >= 500
    for post in everyday:
        assert not any(world18.media[m].photo for m in post.media_ids)
        if post.kind != "other_trap":
            assert not words(post) & classes, (post.kind, post.hashtags)


# ------------------------------------------------------------------- two class tags -----
def test_a_few_percent_of_class_posts_carry_two_class_tags(world18: World) -> None:
    classes = set(world18.classes)
    class_posts = [p for p in world18.posts if any(world18.media[m].photo for m in p.media_ids)]
    two = [p for p in class_posts if len(words(p) & classes) >= 2]
    assert 0.02 <= len(two) / len(class_posts) <= 0.06, (len(two), len(class_posts))
    # the truth lists exactly the photos of those posts, each with the class it shows
    truth = {t.media_id: t for t in world18.two_class_photos}
    assert set(truth) == {m for p in two for m in p.media_ids}
    traps = {t.media_id: t for t in world18.traps if t.kind == "two_classes"}
    assert set(traps) == set(truth)
    for media_id, t in truth.items():
        post, media = world18.posts_by_id[t.post_id], world18.media[media_id]
        assert media.post_id == post.id and media.photo == t.photo
        assert t.shows == t.photo.split("/")[0] and t.shows in t.tagged and len(t.tagged) == 2
        assert set(t.tagged) == words(post) & classes == set(post.classes)
        assert post.kind == "two_classes" and traps[media_id].cls == t.shows
        assert traps[media_id].detail == next(c for c in t.tagged if c != t.shows)
    assert all(t.photo in world18.trap_pool[t.shows] for t in truth.values())


def test_two_class_posts_are_mixed_albums_or_a_habitual_second_tag(world18: World) -> None:
    by_post: dict[int, list] = defaultdict(list)
    for t in world18.two_class_photos:
        by_post[t.post_id].append(t)
    hows = Counter(ts[0].how for ts in by_post.values())
    assert hows["album"] >= 10 and hows["habit"] >= 30 and set(hows) == {"album", "habit"}
    habit_authors: dict[str, set[int]] = defaultdict(set)
    for post_id, ts in by_post.items():
        post = world18.posts_by_id[post_id]
        if ts[0].how == "album":  # 2-3 photos, each of one of the two classes, both shown
            assert post.pf_type == "photo:album" and 2 <= len(ts) <= 3
            assert {t.shows for t in ts} == set(post.classes)
        else:  # one photo of its class; the other class only by a tag its author always adds
            assert len(ts) == 1 and post.pf_type == "photo"
            (t,) = ts
            other = next(c for c in t.tagged if c != t.shows)
            assert KNOWN_CLASS_TAGS[other].habit in post.hashtags
            habit_authors[other].add(post.account_id)
    assert all(len(authors) == 1 for authors in habit_authors.values()), habit_authors


# ---------------------------------------------------------------------------- trending -----
@pytest.mark.parametrize("seed", [0, 1])
def test_trending_has_the_eighteen_classes_above_every_other_thing(world18: World, seed: int) -> None:
    world = world18 if seed == 0 else build_world(
        [shared_data() / "photos5", shared_data() / "photos_more"], seed=1, others=shared_data() / "others")
    counts = trending_counts(world)
    top100 = [w for w, _ in counts.most_common(100)]
    assert set(CLASSES18) <= set(top100)
    weakest = min(counts[c] for c in CLASSES18)
    # what the everyday photos show (sea, beach, landscape, portrait...), not the instance's
    # generic words that every kind of post carries (#FoodPhotography: photography)
    everyday = {w for pool in OTHER_TAGS.values() for t, _ in pool for w in normalize(t)}
    everyday -= {"photography", "nature"}
    strongest = max(everyday, key=lambda w: counts[w])
    assert counts[strongest] < 0.85 * weakest, (strongest, counts[strongest], weakest)
    # and no other concrete noun comes first: select_classes picks exactly the eighteen
    selection = select_classes(dict(counts), 18, allow=NOT_IN_WORDNET)
    assert sorted(selection.classes) == CLASSES18, selection.classes


# ------------------------------------------------------------------- several folders -----
def _folder(root: Path, layout: dict[str, list[str]], colour: tuple[int, int, int]) -> Path:
    for cls, names in layout.items():
        (root / cls).mkdir(parents=True)
        for name in names:
            Image.new("RGB", (48, 32), colour).save(root / cls / name)
    return root


def test_several_folders_merge_their_classes(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", {"boat": ["b1.jpg", "b2.jpg"], "kite": ["k1.jpg"]}, (200, 20, 20))
    b = _folder(tmp_path / "b", {"boat": ["b2.jpg", "b3.jpg"], "lamp": ["l1.jpg"]}, (20, 20, 200))
    files, paths = merge_photos([a, b])
    assert files == {"boat": ["boat/b1.jpg", "boat/b2.jpg", "boat/2/b2.jpg", "boat/b3.jpg"],
                     "kite": ["kite/k1.jpg"], "lamp": ["lamp/l1.jpg"]}
    assert paths["boat/b2.jpg"] == a / "boat" / "b2.jpg" and paths["boat/2/b2.jpg"] == b / "boat" / "b2.jpg"
    world = build_world([a, b])
    assert world.classes == ["boat", "kite", "lamp"]
    served = {world.media[m].photo for p in world.posts for m in p.media_ids if world.media[m].photo}
    assert served == set(paths)  # every photo of both folders is on the instance
    for media in world.media.values():
        if media.source.startswith("file:"):  # served from the folder it came from
            assert world.media_bytes(media) == paths[media.photo].read_bytes()
    assert build_world([a, b]).fingerprint() == world.fingerprint()
    assert build_world([b, a]).fingerprint() != world.fingerprint()  # the order is part of the input
    with pytest.raises(WorldError, match="does not exist"):
        build_world([a, tmp_path / "missing"])
