"""The pure screening rules: every way a post or an attachment is refused, and the clean case."""

from __future__ import annotations

import pytest

from pixtag.data.scrape import class_variants, post_classes, screen_media, screen_post
from pixtag.sources.pixelfed import MediaAttachment, Status


def make_status(**over) -> Status:
    account = {"id": "1", "username": "ann", "acct": "ann", "locked": False, "note": "I like cats",
               **over.pop("account", {})}
    data = {"id": "10", "visibility": "public", "sensitive": False, "spoiler_text": "",
            "account": account, "content": "", "tags": [{"name": "cat"}],
            "media_attachments": [{"id": "5", "type": "image", "url": "http://x/storage/m/_v2/a.jpg"}], **over}
    return Status.from_api(data)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"visibility": "unlisted"}, "not_public"),
        ({"visibility": "private"}, "not_public"),
        ({"account": {"locked": True}}, "locked_account"),
        ({"account": {"locked": None}}, "locked_account"),
        ({"account": {"note": "<p>Photographer. #NoBot please</p>"}}, "opted_out"),
        ({"account": {"note": "no scraping #noai"}}, "opted_out"),
        ({"account": {"note": "#noindex"}}, "opted_out"),
        ({"account": {"indexable": False}}, "opted_out"),
        ({"account": {"discoverable": False}}, "opted_out"),
        ({"spoiler_text": "vet visit", "sensitive": True}, "spoiler"),
        ({"sensitive": True}, "sensitive"),
        ({"sensitive": None}, "sensitive"),
        ({"media_attachments": []}, "no_media"),
    ],
)
def test_posts_that_must_not_be_used(over: dict, reason: str) -> None:
    status = make_status(**over)
    verdict = screen_post(status, {"cat"})
    assert verdict is not None and verdict[0] == reason


def test_a_bio_that_only_mentions_bots_is_not_an_opt_out() -> None:
    assert screen_post(make_status(account={"note": "I build #nobots things"}), {"cat"}) is None


def test_class_count_rules(wordnet: object) -> None:
    cats_and_dogs = make_status(tags=[{"name": "CatsOfPixelfed"}, {"name": "dogs"}])
    assert post_classes(cats_and_dogs, ["cat", "dog", "car"]) == {"cat", "dog"}
    assert screen_post(cats_and_dogs, {"cat", "dog"}) == ("multiple_classes", "cat,dog")
    assert screen_post(cats_and_dogs, {"cat", "dog"}, several=True) is None  # two_class_posts: all_tags
    assert screen_post(make_status(), set(), several=True)[0] == "no_class"
    assert screen_post(make_status(), set())[0] == "no_class"
    assert screen_post(make_status(), {"cat"}) is None


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        ({"is_nsfw": 1}, "media_nsfw"),
        ({"type": "video", "url": "http://x/v.mp4"}, "not_image"),
        ({"url": None}, "no_media_url"),
        ({"url": "http://x/storage/no-preview.png"}, "no_media_url"),
    ],
)
def test_attachments_that_must_not_be_downloaded(media: dict, reason: str) -> None:
    m = MediaAttachment.from_api({"id": "1", "type": "image", "url": "http://x/a.jpg", **media})
    assert screen_media(m)[0] == reason


def test_class_variants_come_from_known_spellings(wordnet: object) -> None:
    known = ["CatsOfPixelfed", "caturday", "BirdPhotography", "Cats", "dog"]
    assert class_variants("cat", known) == ["cat", "cats", "catsofpixelfed"]
    assert class_variants("bird", known) == ["bird", "birdphotography", "birds"]
