"""What the instance says about itself: ``/api/v1/instance``, ``/api/v2/instance`` and nodeinfo."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.params import base_url
from pixtag_demo.render import render_account
from pixtag_demo.state import demo_state

VERSION = "3.5.3 (compatible; Pixelfed 0.12.5)"
SOFTWARE_VERSION = "0.12.5"

router = APIRouter()


@router.get("/api/v1/instance")
async def instance_v1(request: Request) -> Response:
    demo = demo_state(request)
    w, base = demo.world, base_url(request)
    local = [a for a in w.accounts.values() if a.local]
    return JSONResponse({
        "uri": request.url.netloc, "title": "pixtag demo",
        "short_description": "A local Pixelfed-compatible instance built from labelled photos.",
        "description": "Demo instance for pixtag. Everything here is generated.",
        "email": "admin@demo.invalid", "version": VERSION,
        "urls": {"streaming_api": None}, "stats": {
            "user_count": len(local),
            "status_count": str(sum(1 for p in w.posts if w.account_of(p).local)),
            "domain_count": len({a.domain for a in w.accounts.values() if a.domain})},
        "thumbnail": f"{base}/img/pixelfed-icon-color.png", "languages": ["en"],
        "registrations": False, "approval_required": False,
        "contact_account": render_account(w, w.accounts[w.admin_id], base, False),
        "rules": [{"id": "1", "text": "Be kind."},
                  {"id": "2", "text": "Only your own photos."}],
        "configuration": {
            "media_attachments": {
                "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "video/mp4"],
                "image_size_limit": 15000 * 1024, "image_matrix_limit": 3686400,
                "video_size_limit": 15000 * 1024, "video_frame_rate_limit": 240,
                "video_matrix_limit": 3686400},
            "polls": {"max_options": 4, "max_characters_per_option": 50,
                      "min_expiration": 300, "max_expiration": 2629746},
            "statuses": {"max_characters": 500, "max_media_attachments": 4,
                         "characters_reserved_per_url": 23}},
    })


@router.get("/api/v2/instance")
async def instance_v2(request: Request) -> Response:
    demo = demo_state(request)
    w, base = demo.world, base_url(request)
    return JSONResponse({
        "domain": request.url.netloc, "title": "pixtag demo", "version": VERSION,
        "source_url": "https://github.com/pixelfed/pixelfed",
        "description": "A local Pixelfed-compatible instance built from labelled photos.",
        "usage": {"users": {"active_month": len(w.accounts)}},
        "thumbnail": {"url": f"{base}/img/pixelfed-icon-color.png"}, "languages": ["en"],
        "configuration": {
            "urls": {"streaming": None}, "accounts": {"max_featured_tags": 0},
            "statuses": {"max_characters": 500, "max_media_attachments": 4,
                         "characters_reserved_per_url": 23},
            "media_attachments": {  # v1 and v2 disagree on limits, as on live servers
                "supported_mime_types": ["image/jpeg", "image/png", "image/gif"],
                "image_size_limit": 15000 * 1000, "image_matrix_limit": 16777216,
                "video_size_limit": 15000 * 1000, "video_frame_rate_limit": 120,
                "video_matrix_limit": 2304000},
            "translation": {"enabled": False}},
        "registrations": {"enabled": False, "approval_required": False, "message": None},
        "contact": {"email": "admin@demo.invalid",
                    "account": render_account(w, w.accounts[w.admin_id], base, False)},
        "rules": [{"id": "1", "text": "Be kind."}],
    })


@router.get("/.well-known/nodeinfo")
async def nodeinfo_links(request: Request) -> Response:
    return JSONResponse({"links": [{
        "href": f"{base_url(request)}/api/nodeinfo/2.0.json",
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0"}]},
        headers={"Access-Control-Allow-Origin": "*"})


@router.get("/api/nodeinfo/2.0.json")
async def nodeinfo(request: Request) -> Response:
    demo = demo_state(request)
    w = demo.world
    local = [a for a in w.accounts.values() if a.local]
    return JSONResponse({
        "version": "2.0", "software": {"name": "pixelfed", "version": SOFTWARE_VERSION},
        "protocols": ["activitypub"], "services": {"inbound": [], "outbound": []},
        "usage": {"localPosts": sum(1 for p in w.posts if w.account_of(p).local),
                  "localComments": 0,
                  "users": {"total": len(local), "activeHalfyear": len(local),
                            "activeMonth": str(len(local) // 2)}},
        "openRegistrations": False,
        "metadata": {"nodeName": "pixtag demo", "software": {
            "homepage": "https://pixelfed.org", "repo": "https://github.com/pixelfed/pixelfed"},
            "config": {"features": {"timelines": {"local": True, "network": True},
                                    "mobile_apis": True, "stories": False, "video": True,
                                    "import": {"instagram": False}}}},
    }, headers={"Access-Control-Allow-Origin": "*"})
