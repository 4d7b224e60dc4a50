"""A status's text as Pixelfed reads it (app/Util/Lexer/Extractor.php, Regex.php): hashtags,
mentions, and the HTML content with both linked (Autolink).

Mentions follow Pixelfed's pattern: ``@`` not preceded by a letter, digit or ``_!#$%&*@/``, a
name of 1-20 letters, digits, ``_``, ``-`` or ``.``, and an optional ``@domain``. The name is
looked up as written, so ``@pixtag.`` at the end of a sentence names ``pixtag.`` and mentions
nobody, as on Pixelfed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pixtag_demo.world.entities import Account

HASHTAG = re.compile(r"(?<![&\w])[#＃](?![\ufe0f\u20e3])(\w*[^\W\d_]\w*)")
MENTION = re.compile(r"(?<![a-zA-Z0-9_!#$%&*@＠/])[@＠]([\w\-.]{1,20})(?:@([a-z0-9.\-]*[a-z0-9]))?",
                     re.IGNORECASE)
MAX_MENTIONS = 5  # Status::MAX_MENTIONS


@dataclass(frozen=True)
class Mention:
    """``@name`` or ``@name@domain`` as written, and where it sits in the text."""

    name: str
    domain: str | None
    start: int
    end: int


def hashtags(text: str) -> list[str]:
    """The hashtags of a text in the author's spelling, first use first, no repeats (by slug)."""
    seen: dict[str, str] = {}
    for match in HASHTAG.finditer(text):
        seen.setdefault(match.group(1).lower(), match.group(1))
    return list(seen.values())


def mentions(text: str) -> list[Mention]:
    """The mentions of a text, at most :data:`MAX_MENTIONS` (Pixelfed keeps the first five)."""
    found = [Mention(m.group(1), m.group(2).lower() if m.group(2) else None, m.start(), m.end())
             for m in MENTION.finditer(text)]
    return found[:MAX_MENTIONS]


def autolink(text: str, base: str, resolved: Callable[[Mention], Account | None]) -> str:
    """The status's HTML content: escaped text in ``<p>``, hashtags and resolved mentions linked,
    line breaks as ``<br />``."""
    spans: list[tuple[int, int, str]] = []
    for match in HASHTAG.finditer(text):
        spans.append((match.start(), match.end(),
                      hashtag_anchor(base, match.group(1), match.group(0)[0])))
    for mention in mentions(text):
        account = resolved(mention)
        if account is not None:
            spans.append((mention.start, mention.end, mention_anchor(base, account)))
    out, pos = [], 0
    for start, end, anchor in sorted(spans):
        if start < pos:
            continue
        out += [html.escape(text[pos:start]), anchor]
        pos = end
    out.append(html.escape(text[pos:]))
    return "<p>" + "".join(out).replace("\r\n", "\n").replace("\n", "<br />") + "</p>"


def hashtag_anchor(base: str, tag: str, sign: str = "#") -> str:
    return (f'<a href="{base}/discover/tags/{tag.lower()}?src=hash" title="#{html.escape(tag)}" '
            f'class="u-url hashtag" rel="external nofollow noopener">{sign}{html.escape(tag)}</a>')


def mention_anchor(base: str, account: Account) -> str:
    url = account_url(base, account)
    return (f'<a class="u-url mention" href="{url}" rel="external nofollow noopener" '
            f'target="_blank">@{html.escape(account.acct)}</a>')


def account_url(base: str, account: Account) -> str:
    """An account's profile URL (local: on this instance; remote: on its own)."""
    if account.local:
        return f"{base}/{account.username}"
    return f"https://{account.domain}/@{account.username}"


def is_url(message: str) -> bool:
    """PHP's FILTER_VALIDATE_URL, roughly: the whole message is one http(s) URL."""
    return re.fullmatch(r"https?://[^\s/?#]+[^\s]*", message.strip()) is not None


def url_host(url: str) -> str:
    return urlsplit(url.strip()).hostname or ""


def strip_tags(value: str) -> str:
    """PHP's ``strip_tags``: what looks like an HTML tag goes, the rest stays."""
    return re.sub(r"<[^>]*>?", "", value)
