"""The ASGI middleware that counts every request and injects the configured faults."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixtag_demo.faults import fault_response
from pixtag_demo.state import DemoState
from pixtag_demo.stats import API_KINDS, route_kind


class Instrument:
    """Counts every request and, on API and media routes, injects the configured faults."""

    def __init__(self, app: ASGIApp, api: DemoState):
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        kind = route_kind(path)
        stats = self.api.stats
        stats.request(kind, api=path.startswith("/api/"))

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.status(message["status"])
            await send(message)

        fault = (await fault_response(self.api.dice, stats, kind, scope["method"], path)
                 if kind in API_KINDS or kind == "media" else None)
        if fault is not None:
            await fault(scope, receive, counted_send)
            return
        await self.app(scope, receive, counted_send)
