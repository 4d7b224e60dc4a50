"""The demo instance as an app: :func:`create_app` (a :class:`~pixtag_demo.world.model.World`
served with the endpoints, JSON shapes, auth behaviour, caps, paging and quirks of
``../shared/pixelfed-api.md``; Mastodon-mode entities, ``?_pe=1`` adds the Pixelfed-entity
fields) and :class:`DemoInstance`, which runs it in a background thread for tests, benchmarks
and the demo (``pixtag-demo`` runs it in the foreground, :mod:`pixtag_demo.cli`).

The instance is writable like Pixelfed (uploads, statuses, replies, mentions, notifications,
contexts, direct messages: :mod:`pixtag_demo.routes.write`, ``notifications``, ``direct``,
``accounts``); what is written lives in the app's :class:`~pixtag_demo.live.store.Live`, never in
the world. ``bot_token`` makes the bot account ``pixtag`` (``bot: true``, read+write token).

Control endpoints that no real instance has (no auth; :mod:`pixtag_demo.routes.control`):
``GET /_demo/stats`` (requests per route kind, monotonic timestamps of API requests),
``DELETE /_demo/stats``, ``GET|PUT /_demo/faults`` (knobs, optionally for chosen routes only),
``GET /_demo/world`` (counts, classes, traps), ``GET /_demo/accounts``, ``POST /_demo/tokens``
(a token for a local account, made when new), ``POST|DELETE /_demo/follows`` and
``POST /_demo/remote_statuses`` (a status from a remote account, media URLs as given).
"""

from __future__ import annotations

import html
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixtag_demo.errors import ApiError, DemoError, Invalid, Unauthenticated
from pixtag_demo.faults import Faults, install_log_filter
from pixtag_demo.middleware import Instrument
from pixtag_demo.params import base_url, wants_json
from pixtag_demo.routes import ROUTERS
from pixtag_demo.state import DemoState
from pixtag_demo.world.builder import build_world
from pixtag_demo.world.entities import DEFAULT_NOW
from pixtag_demo.world.model import World

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_TOKEN = "demo-token"


def create_app(world: World, token: str = DEFAULT_TOKEN, faults: Faults | None = None,
               bot_token: str | None = None) -> FastAPI:
    """The FastAPI app serving ``world``; ``token`` is the demo user's bearer token,
    ``bot_token`` (optional) the token of the bot account ``pixtag``."""
    if not token:
        raise DemoError("the demo instance needs a non-empty token")
    if bot_token is not None and (not bot_token or bot_token == token):
        raise DemoError("the bot token must be non-empty and differ from the demo user's token")
    api = DemoState(world, token, faults, bot_token)
    app = FastAPI(title="pixtag demo instance", docs_url=None, redoc_url=None, openapi_url=None)
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(Unauthenticated, lambda r, e: _unauthenticated(r))
    app.add_exception_handler(
        ApiError, lambda r, e: JSONResponse({"error": e.message}, status_code=e.status))
    app.add_exception_handler(
        Invalid, lambda r, e: JSONResponse({"message": e.message, "errors": {e.name: [e.message]}},
                                           status_code=422))
    app.add_exception_handler(StarletteHTTPException, _not_found)
    app.add_middleware(Instrument, api=api)
    app.state.api = api
    install_log_filter()
    return app


def _unauthenticated(request: Request) -> Response:
    """Pixelfed without a valid token: HTTP 500 JSON for JSON clients, else 302 to /login."""
    if wants_json(request):
        return JSONResponse({"error": "Unauthenticated."}, status_code=500)
    return RedirectResponse(f"{base_url(request)}/login", status_code=302)


def _not_found(request: Request, exc: StarletteHTTPException) -> Response:
    if wants_json(request) or request.url.path.startswith("/api/"):
        message = (f"The route {request.url.path.lstrip('/')} could not be found."
                   if exc.status_code == 404 else str(exc.detail))
        return JSONResponse({"error": message}, status_code=exc.status_code)
    return HTMLResponse(f"<!DOCTYPE html><title>{exc.status_code}</title>"
                        f"<h1>{html.escape(str(exc.detail))}</h1>", status_code=exc.status_code)


def bind_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {HOST}:{port} ({exc.strerror}); "
                        "pick another port with --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            loop="asyncio", timeout_graceful_shutdown=2, timeout_keep_alive=5)
    return uvicorn.Server(config)


class DemoInstance:
    """The demo instance in a background thread, for tests, benchmarks and the demo.

    ``with DemoInstance(photos) as demo: ... demo.url ... demo.world``. Port 0 picks a free
    port; leaving the block stops the server and frees the port. Pass ``world`` to reuse an
    already built world (tests build it once); ``bot_token`` adds the bot account.
    """

    def __init__(self, photos: Path | None = None, seed: int = 0, token: str = DEFAULT_TOKEN,
                 port: int = 0, now: datetime | None = None, faults: Faults | None = None,
                 world: World | None = None, others: Path | None = None,
                 bot_token: str | None = None):
        if world is None and photos is None:
            raise DemoError("DemoInstance needs a photo folder or a built world")
        self._photos, self._seed, self._now = photos, seed, now or DEFAULT_NOW
        self._others = others
        self.token, self.port, self.bot_token = token, port, bot_token
        self._faults = faults
        self.world = world
        self.app: FastAPI | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api(self) -> DemoState:
        if self.app is None:
            raise DemoError("the demo instance is not running")
        return self.app.state.api

    @property
    def faults(self) -> Faults:
        return self.api.dice.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.api.dice.set(value)

    def stats(self) -> dict[str, Any]:
        return self.api.stats.snapshot()

    def start(self, timeout: float = 20.0) -> DemoInstance:
        if self.world is None:
            self.world = build_world(Path(self._photos or "."), self._seed, self._now, self._others)
        self.app = create_app(self.world, self.token, self._faults, self.bot_token)
        self._sock = bind_socket(self.port)
        self.port = self._sock.getsockname()[1]
        self._server = make_server(self.app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"demo-instance-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise DemoError(f"the demo instance did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> DemoInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
