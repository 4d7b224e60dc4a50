"""``/api/v1/timelines``: the public timeline (flags, cap, Link header) and the tag timeline
(100-row scan, 6-month wall, no Link; repeated and endless pages as faults)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.params import base_url, bool_param, int_param
from pixtag_demo.render import render_status
from pixtag_demo.state import DemoState, demo_state
from pixtag_demo.world.entities import MAX_LIMIT, Post

ENDLESS_STEP = (3600 * 1000) << 22  # one hour, in snowflake units

router = APIRouter()


@router.get("/api/v1/timelines/public")
async def public_timeline(request: Request) -> Response:
    """``GET /api/v1/timelines/public`` with Pixelfed's flags, cap and Link header."""
    demo = demo_state(request)
    demo.grant(request, scope=None)
    min_id, max_id = int_param(request, "min_id"), int_param(request, "max_id")
    limit = min(int_param(request, "limit", minimum=1) or 20, MAX_LIMIT)
    if not max_id:  # PHP: `if ($max == 0) { $min = 1; }`, and null == 0
        min_id = 1
    remote = "remote" in request.query_params and bool_param(request, "remote")
    local = bool_param(request, "local")
    pe = "_pe" in request.query_params
    posts = demo.live.public_timeline(local=local, remote=remote, max_id=max_id,
                                       min_id=min_id, limit=limit)
    base = base_url(request)
    link = public_link(base, posts, limit=limit, pe=pe, remote=remote, local=local)
    return JSONResponse([render_status(demo.live, p, base, pe) for p in posts],
                        headers={"Link": link} if link else None)


@router.get("/api/v1/timelines/tag/{hashtag}")
async def tag_timeline(request: Request) -> Response:
    """``GET /api/v1/timelines/tag/{hashtag}``: 100-row scan, 6-month wall, no Link."""
    demo = demo_state(request)
    demo.grant(request)
    name = request.path_params["hashtag"]
    min_id, max_id = int_param(request, "min_id"), int_param(request, "max_id")
    limit = min(int_param(request, "limit", minimum=1) or 20, MAX_LIMIT)
    int_param(request, "page", maximum=40)  # validated, then ignored (as in Pixelfed)
    pe = "_pe" in request.query_params
    hashtag = demo.live.find_hashtag(name)
    slug = hashtag.slug if hashtag else None
    if slug and max_id and demo.dice.repeats_left and slug in demo.last_tag_page:
        demo.dice.repeats_left -= 1
        demo.stats.fault("repeat_page")
        posts = demo.last_tag_page[slug]
    else:
        posts = demo.live.tag_timeline(name, max_id=max_id, min_id=min_id, limit=limit,
                                        only_media=bool_param(request, "only_media", True))
    if not posts and slug and demo.dice.faults.endless_pages:
        demo.stats.fault("endless_pages")
        posts = endless_page(demo, slug, max_id, limit)
    if slug:
        demo.last_tag_page[slug] = posts
    base = base_url(request)
    return JSONResponse([render_status(demo.live, p, base, pe) for p in posts])


def endless_page(demo: DemoState, slug: str, max_id: int | None, limit: int) -> list[Post]:
    """Real posts of the tag again, under fresh fake ids below ``max_id`` (a fault)."""
    source = demo.live.tag_timeline(slug, limit=MAX_LIMIT)
    if not source:
        return []
    start = max_id or source[0].id
    fake_ids = [start - (i + 1) * ENDLESS_STEP for i in range(limit)]
    return [replace(source[i % len(source)], id=fake)
            for i, fake in enumerate(fake_ids) if fake > 0]


def public_link(base: str, posts: list[Post], *, limit: int, pe: bool, remote: bool,
                local: bool) -> str | None:
    """The public timeline's Link header, built as Pixelfed does (one-item-page quirk included:
    ``min == max`` drops the min, so a full one-item page links ``max_id=`` empty)."""
    if not posts:
        return None
    url = (f"{base}/api/v1/timelines/public?limit={limit}&" + ("_pe=1&" if pe else "")
           + ("remote=1&" if remote else "") + ("local=1&" if local else ""))
    ids = [p.id for p in posts]
    low: int | None = min(ids)
    high = max(ids)
    if low == high:
        low = None
    link = None
    if len(posts) >= limit:
        link = f'<{url}max_id={low if low is not None else ""}>; rel="next"'
    if low is not None:
        link = f'<{url}min_id={high}>; rel="prev"'
        link = f'<{url}max_id={low}>; rel="next",{link}'
    return link
