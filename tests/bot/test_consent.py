"""Who may ask the bot about what, decided before any photo is fetched."""

from __future__ import annotations

from typing import Any

import pytest

from pixtag.bot.consent import ANSWER, IGNORE, REFUSE, decide, opt_out_marker
from pixtag.sources.pixelfed import Account, Status

BOT = Account(id="1", username="pixtag", acct="pixtag", bot=True)
ALICE = Account(id="2", username="alice", acct="alice", locked=False)
BOB = Account(id="3", username="bob", acct="bob", locked=False)
PHOTO = {"id": "m1", "type": "image", "url": "http://i.example/a.jpg"}


def status(sid: str, account: Account, *, media: int = 1, mention_bot: bool = True, **fields: Any) -> Status:
    data = {"id": sid, "account": account.model_dump(), "visibility": "public", "sensitive": False,
            "media_attachments": [PHOTO] * media,
            "mentions": [{"id": BOT.id, "username": "pixtag", "acct": "pixtag"}] if mention_bot else [], **fields}
    return Status.from_api(data)


def lookup(*known: Status) -> Any:
    calls: list[str] = []

    def find(sid: str) -> Status | None:
        calls.append(sid)
        return next((s for s in known if s.id == sid), None)
    find.calls = calls  # type: ignore[attr-defined]
    return find


def test_a_mention_in_ones_own_photo_post_is_answered() -> None:
    post = status("10", ALICE)
    verdict = decide(post, ALICE, BOT, lookup())
    assert (verdict.action, verdict.target, verdict.private) == (ANSWER, post, False)


def test_a_mention_in_a_reply_to_ones_own_post_answers_for_the_parents_photos() -> None:
    parent = status("10", ALICE, mention_bot=False)
    reply = status("11", ALICE, media=0, in_reply_to_id="10")
    verdict = decide(reply, ALICE, BOT, lookup(parent))
    assert (verdict.action, verdict.target) == (ANSWER, parent)


def test_someone_elses_post_only_the_author_may_ask_and_nothing_is_fetched() -> None:
    parent = status("10", BOB, mention_bot=False)
    reply = status("11", ALICE, media=0, in_reply_to_id="10")
    verdict = decide(reply, ALICE, BOT, lookup(parent))
    assert (verdict.action, verdict.reason, verdict.target) == (REFUSE, "not_author", None)


@pytest.mark.parametrize(("where", "marker"), [("note", "#nobot"), ("note", "#NoAI"), ("fields", "#noindex")])
def test_opted_out_accounts_are_never_looked_at(where: str, marker: str) -> None:
    html = f'<p>Film only. <a href="/discover/tags/x" class="u-url hashtag">{marker}</a></p>'
    data = ALICE.model_dump() | ({"note": html} if where == "note" else {"fields": [{"name": "bots", "value": html}]})
    asker = Account(**data)
    verdict = decide(status("10", asker), asker, BOT, lookup())
    assert (verdict.action, verdict.reason, verdict.marker) == (REFUSE, "opted_out", marker.lower())
    assert opt_out_marker(Account(**(ALICE.model_dump() | {"note": "#nobotanics fan"}))) is None


@pytest.mark.parametrize(("fields", "reason"), [({"sensitive": True}, "sensitive"),
                                                ({"spoiler_text": "spiders"}, "content_warning")])
def test_sensitive_and_content_warned_posts_are_refused(fields: dict, reason: str) -> None:
    verdict = decide(status("10", ALICE, **fields), ALICE, BOT, lookup())
    assert (verdict.action, verdict.reason) == (REFUSE, reason)


def test_no_media_anywhere() -> None:
    verdict = decide(status("10", ALICE, media=0), ALICE, BOT, lookup())
    assert (verdict.action, verdict.reason) == (REFUSE, "no_media")


def test_private_posts_and_locked_accounts_get_a_direct_message() -> None:
    locked = Account(**(ALICE.model_dump() | {"locked": True}))
    verdict = decide(status("10", locked, visibility="private"), locked, BOT, lookup())
    assert (verdict.action, verdict.private) == (ANSWER, True)


@pytest.mark.parametrize("case", ["own", "other_bot", "comment_without_mention", "reply_to_the_bot", "parent_gone"])
def test_what_is_ignored(case: str) -> None:
    other_bot = Account(id="9", username="altbot", acct="altbot", bot=True)
    bot_reply = status("20", BOT, media=0, mention_bot=False)
    cases = {
        "own": (status("10", BOT), BOT),
        "other_bot": (status("10", other_bot), other_bot),
        "comment_without_mention": (status("10", ALICE, mention_bot=False), ALICE),
        "reply_to_the_bot": (status("21", ALICE, media=0, in_reply_to_id="20"), ALICE),
        "parent_gone": (status("22", ALICE, media=0, in_reply_to_id="404"), ALICE),
    }
    mention, asker = cases[case]
    assert decide(mention, asker, BOT, lookup(bot_reply)).action == IGNORE
