"""The bot's words: ranked hashtags with plain-words confidence, at most 500 characters, the asker
the only mention, none of the post's text, the one optional link."""

from __future__ import annotations

import re

import pytest

from pixtag.bot.answer import MAX_CHARS, PhotoAnswer, compose, confidence, hashtag, post_reference, refusal


def tags(*pairs: tuple[str, float]) -> list[dict]:
    return [{"tag": t, "probability": p} for t, p in pairs]


def test_one_photo_ranked_with_plain_words() -> None:
    text = compose([PhotoAnswer(1, tags(("cat", 0.97), ("dog", 0.8), ("bird", 0.55)))], asker="alice")
    assert text.startswith("@alice ")
    assert "#cat (very likely), #dog (likely), #bird (possibly)" in text
    assert text.index("#cat") < text.index("#dog") < text.index("#bird")
    assert "http" not in text


@pytest.mark.parametrize(("p", "words"), [(0.99, "very likely"), (0.9, "very likely"), (0.8, "likely"),
                                          (0.75, "likely"), (0.5, "possibly"), (0.1, "possibly")])
def test_confidence_words(p: float, words: str) -> None:
    assert confidence(p) == words


def test_no_confident_suggestion_and_skipped_photos() -> None:
    assert "no confident suggestion" in compose([PhotoAnswer(1)], asker="bob")
    text = compose([PhotoAnswer(1, tags(("car", 0.93))), PhotoAnswer(2), PhotoAnswer(3, note="a video, skipped")],
                   asker="bob", extra="I looked at the first 4 photos only (the instance's limit per post).")
    lines = text.splitlines()
    assert lines[1:5] == ["Photo 1: #car (very likely)", "Photo 2: no confident suggestion",
                          "Photo 3: a video, skipped", "I looked at the first 4 photos only (the instance's "
                          "limit per post)."]


def test_the_only_link_is_the_info_url() -> None:
    text = compose([PhotoAnswer(1, tags(("cat", 0.9)))], asker="a", info_url="https://pixtag.example/bot")
    assert re.findall(r"https?://\S+", text) == ["https://pixtag.example/bot"]
    assert text.endswith("How this works: https://pixtag.example/bot")


def test_labels_cannot_become_mentions_or_links() -> None:
    text = compose([PhotoAnswer(1, tags(("@mallory", 0.99), ("http://x.example", 0.9), ("hot dog", 0.8)))],
                   asker="carol")
    assert re.findall(r"@\w+", text) == ["@carol"]
    assert "#mallory" in text and "#httpxexample" in text and "#hotdog" in text
    assert hashtag("Straße") == "#Straße"


def test_a_remote_asker_is_mentioned_with_their_domain() -> None:
    text = compose([PhotoAnswer(1, tags(("cat", 0.9)))], asker="dan@other.example")
    assert text.startswith("@dan@other.example ")


def test_direct_messages_name_the_post_and_mention_nobody() -> None:
    text = compose([PhotoAnswer(1, tags(("cat", 0.9)))], asker=None, post_id="42")
    assert text.startswith(post_reference("42")) and "@" not in text


def test_never_longer_than_500_characters() -> None:
    long = [PhotoAnswer(i, tags(*((f"tag{'x' * 30}{k}", 0.9 - k / 10) for k in range(3)))) for i in range(1, 9)]
    text = compose(long, asker="a" * 30, info_url="https://pixtag.example/" + "p" * 60)
    assert len(text) <= MAX_CHARS
    assert text.endswith("p" * 60)  # fewer tags per photo first, the link kept


@pytest.mark.parametrize("reason", ["not_author", "opted_out", "sensitive", "content_warning", "no_media", "declined"])
def test_refusals_are_brief_and_say_why(reason: str) -> None:
    text = refusal(reason, asker="erin", marker="#nobot", limit=5)
    assert text.startswith("@erin ") and len(text) <= 160 and "http" not in text
    assert "#nobot" in text if reason == "opted_out" else True
