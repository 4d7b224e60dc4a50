"""OAuth (pixtag_demo.oauth, pixtag_demo.routes.oauth): apps, the code flow, tokens, scopes and
Passport's error shapes, over real HTTP."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pixtag_demo.app import DemoInstance
from pixtag_demo.world.model import World

pytestmark = pytest.mark.slow



def _get(http: requests.Session, demo: DemoInstance, path: str,
         **params: object) -> requests.Response:
    return http.get(demo.url + path, params=params, timeout=10)


def _status_path(world: World, visibility: str) -> str:
    post = next(p for p in world.posts if p.visibility == visibility and p.media_ids)
    return f"/api/v1/statuses/{post.id}"


# ---------------------------------------------------------------------------- OAuth -------
OOB = "urn:ietf:wg:oauth:2.0:oob"


def _register(demo: DemoInstance, redirect: str = OOB) -> dict:
    resp = requests.post(f"{demo.url}/api/v1/apps", timeout=10,
                         data={"client_name": "pixtag", "redirect_uris": redirect,
                               "scopes": "read"})
    assert resp.status_code == 200
    return resp.json()


def _code(demo: DemoInstance, app: dict, scope: str = "read") -> str:
    page = requests.get(f"{demo.url}/oauth/authorize", timeout=10, params={
        "client_id": app["client_id"], "redirect_uri": OOB, "response_type": "code",
        "scope": scope})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    return re.search(r'<pre id="code">([^<]+)</pre>', page.text)[1]


def _exchange(demo: DemoInstance, app: dict, code: str, **extra: str) -> requests.Response:
    return requests.post(f"{demo.url}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
        "client_secret": app["client_secret"], "redirect_uri": OOB, **extra})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def test_oauth_code_flow_issues_a_working_user_token(demo: DemoInstance) -> None:
    app = _register(demo)
    assert {"id", "name", "client_id", "client_secret", "redirect_uri"} <= set(app)
    code = _code(demo, app)
    resp = _exchange(demo, app, code)
    body = resp.json()
    assert resp.status_code == 200 and body["token_type"] == "Bearer"
    assert body["scope"] == "read" and body["expires_in"] > 0 and body["access_token"]
    timeline = requests.get(f"{demo.url}/api/v1/timelines/tag/cat", timeout=10,
                            headers=_bearer(body["access_token"]))
    assert timeline.status_code == 200 and timeline.json()
    reused = _exchange(demo, app, code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_oauth_redirects_with_the_code_and_state(demo: DemoInstance) -> None:
    app = _register(demo, "http://127.0.0.1:9/callback")
    resp = requests.get(f"{demo.url}/oauth/authorize", allow_redirects=False, timeout=10,
                        params={"client_id": app["client_id"], "response_type": "code",
                                "redirect_uri": "http://127.0.0.1:9/callback", "state": "xyz"})
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert resp.headers["location"].startswith("http://127.0.0.1:9/callback?")
    assert query["state"] == ["xyz"] and query["code"][0] in resp.text
    token = requests.post(f"{demo.url}/oauth/token", timeout=10, json={
        "grant_type": "authorization_code", "code": query["code"][0],
        "client_id": app["client_id"], "client_secret": app["client_secret"],
        "redirect_uri": "http://127.0.0.1:9/callback"})
    assert token.status_code == 200 and token.json()["scope"] == "follow read write"


def test_oauth_errors(demo: DemoInstance) -> None:
    app = _register(demo)
    wrong = _exchange(demo, app, _code(demo, app), client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    params = {"client_id": "999", "redirect_uri": OOB, "response_type": "code"}
    unknown = requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10)
    assert unknown.status_code == 401
    params = {"client_id": app["client_id"], "redirect_uri": OOB, "response_type": "token"}
    assert requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10).status_code \
        == 400
    params = {**params, "response_type": "code", "redirect_uri": "https://evil.example/"}
    assert requests.get(f"{demo.url}/oauth/authorize", params=params, timeout=10).status_code \
        == 401
    bad_grant = requests.post(f"{demo.url}/oauth/token", data={"grant_type": "password"},
                              timeout=10)
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    missing = requests.post(f"{demo.url}/api/v1/apps", data={"client_name": "x"}, timeout=10)
    assert missing.status_code == 422 and "redirect_uris" in missing.json()["errors"]


def test_app_only_and_scope_less_tokens_get_403(demo: DemoInstance, world: World) -> None:
    app = _register(demo)
    app_token = requests.post(f"{demo.url}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": "read"}).json()["access_token"]
    for path in ("/api/v1/timelines/tag/cat", "/api/v1.1/discover/posts/hashtags",
                 _status_path(world, "public"), "/api/v1/timelines/public"):
        resp = requests.get(demo.url + path, headers=_bearer(app_token), timeout=10)
        assert resp.status_code == 403, path
    trends = requests.get(f"{demo.url}/api/v1/trends", headers=_bearer(app_token), timeout=10)
    assert trends.json() == []
    write_only = _exchange(demo, app, _code(demo, app, scope="write")).json()["access_token"]
    resp = requests.get(f"{demo.url}/api/v1/timelines/tag/cat", headers=_bearer(write_only),
                        timeout=10)
    assert resp.status_code == 403
