from datetime import UTC, datetime

import pytest

from pixtag.core.config import load_settings
from pixtag.sources.pixelfed import (
    AuthError,
    BadResponse,
    Client,
    Status,
    datetime_to_snowflake,
    hashtags_in_html,
    snowflake_to_datetime,
)
from tests.scripted_server import Reply, scripted


def status_json(i: int, **over) -> dict:
    base = {
        "id": str(i), "created_at": "2026-10-01T10:00:00.000Z", "content": "<p>hi</p>",
        "sensitive": False, "spoiler_text": "", "visibility": "public",
        "account": {"id": "1", "username": "alice", "acct": "alice", "locked": False},
        "media_attachments": [{"id": "9", "type": "image", "url": "https://x/storage/m/_v2/a.jpg",
                               "meta": {"original": {"width": 10, "height": 20}}}],
        "tags": [{"name": "cat", "url": "https://x/discover/tags/cat"}],
    }
    base.update(over)
    return base


def test_lenient_parsing_of_real_world_variants() -> None:
    s = Status.from_api(status_json(
        5, created_at="2026-10-01T10:00:00.000000+00:00", sensitive=None,
        account={"id": 7, "username": "bob", "locked": 0, "note": None, "discoverable": "1"},
        media_attachments=[{"id": 3, "type": "Image", "url": "u", "meta": None, "is_nsfw": 0},
                           {"id": 4, "type": "image", "url": "v", "meta": {"original": {"width": "640"}}}],
    ))
    assert s.created_at == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert s.sensitive is None and s.account.locked is False and s.account.discoverable is True
    assert s.account.id == "7" and s.account.note == ""
    assert [m.type for m in s.media_attachments] == ["image", "image"]
    assert s.media_attachments[0].is_nsfw is False
    assert s.media_attachments[1].width == 640


def test_hashtags_come_from_content_in_the_authors_case() -> None:
    content = ('<p>Look <a href="https://x/discover/tags/catsofpixelfed?src=hash" title="#CatsOfPixelfed" '
               'class="u-url hashtag" rel="external nofollow noopener">#CatsOfPixelfed</a> and '
               '<a class="mention" href="https://x/bob">@bob</a></p>')
    s = Status.from_api(status_json(1, content=content, tags=[{"name": "catsofpixelfed"}, {"name": "caturday"}]))
    assert s.hashtags == ["CatsOfPixelfed", "caturday"]
    s2 = Status.from_api(status_json(2, content=content, tags=[]))
    assert s2.hashtags == ["CatsOfPixelfed"]


def test_plain_hashtags_in_text() -> None:
    text = "<p>sunny #Caturday and #dogs_of_fedi, not a#b or &#39;</p>"
    assert hashtags_in_html(text) == ["Caturday", "dogs_of_fedi"]


def test_snowflakes_roundtrip() -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    assert snowflake_to_datetime(str(datetime_to_snowflake(when))) == when


def client_for(url: str, **kw) -> Client:
    return Client(load_settings(instance_url=url, token="tok-test-1234", allow_private_hosts=["127.0.0.1"],
                                request_rate=100, max_retries=1, max_retry_after=0.1, **kw))


def test_paging_a_tag_by_max_id_to_the_end_without_repeats() -> None:
    ids = list(range(1000, 900, -1))
    def page(path: str, n: int) -> Reply:
        import json
        from urllib.parse import parse_qs, urlsplit

        q = parse_qs(urlsplit(path).query)
        assert q["limit"] == ["40"]
        max_id = int(q.get("max_id", ["99999"])[0])
        below = [i for i in ids if i < max_id][:30]  # short pages like the real server
        return Reply(200, json.dumps([status_json(i) for i in below]).encode())
    with scripted(page) as (url, seen):
        got = [s.id for s in client_for(url).iter_hashtag("cat")]
    assert got == [str(i) for i in ids]
    # 4 pages, then [] and 3 probes further back in time (an empty page can hide older posts)
    assert len(seen) == 4 + 1 + 3


def test_pagination_that_repeats_stops() -> None:
    import json

    with scripted(lambda p, n: Reply(200, json.dumps([status_json(5), status_json(4)]).encode())) as (url, seen):
        got = [s.id for s in client_for(url).iter_hashtag("cat")]
    assert got == ["5", "4"]
    assert len(seen) == 1 + 1 + 2  # the page, then the same page again and two more asks


def test_missing_token_is_refused_before_any_request() -> None:
    c = Client(load_settings(instance_url="http://127.0.0.1:9", allow_private_hosts=["127.0.0.1"]))
    with pytest.raises(AuthError, match="PIXTAG_TOKEN"):
        c.hashtag_timeline("cat")


def test_wrong_token_gives_a_clear_error_without_the_token() -> None:
    with scripted(lambda p, n: Reply(500, b'{"error":"Unauthenticated."}')) as (url, seen):
        with pytest.raises(AuthError) as err:
            client_for(url).hashtag_timeline("cat")
    assert "tok-test-1234" not in str(err.value)
    assert "PIXTAG_TOKEN" in str(err.value)
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "match"),
    [
        (b"<html>oops</html>", "text/html", "expected JSON"),
        (b'[{"id": 1,', "application/json", "malformed JSON"),
        (b'{"data": []}', "application/json", "expected a JSON list"),
    ],
)
def test_bad_responses_are_specific_errors(body: bytes, ctype: str, match: str) -> None:
    with scripted(lambda p, n: Reply(200, body, {"Content-Type": ctype})) as (url, _):
        with pytest.raises(BadResponse, match=match):
            client_for(url).hashtag_timeline("cat")


def test_unparseable_entries_are_counted_not_fatal() -> None:
    import json

    body = json.dumps([status_json(3), {"id": "4"}, "junk", status_json(2)]).encode()
    with scripted(lambda p, n: Reply(200, body)) as (url, _):
        client = client_for(url)
        page = client.hashtag_timeline("cat")
    assert [s.id for s in page] == ["3", "2"]
    assert sum(client.unparseable.values()) == 2
