"""What the routes share: one world, one token store, the fault dice and the stats."""

from __future__ import annotations

from fastapi import Request

from pixtag_demo.errors import ApiError, Unauthenticated
from pixtag_demo.faults import FaultDice, Faults
from pixtag_demo.oauth import Grant, OAuthServer
from pixtag_demo.stats import Stats
from pixtag_demo.world.entities import Post
from pixtag_demo.world.model import World


class DemoState:
    """The instance's state behind the routes (``app.state.api``)."""

    def __init__(self, world: World, token: str, faults: Faults | None = None):
        self.world = world
        self.oauth = OAuthServer(token)
        self.dice = FaultDice(faults or Faults())
        self.stats = Stats()
        self.last_tag_page: dict[str, list[Post]] = {}

    def grant(self, request: Request, *, user: bool = True, scope: str | None = "read") -> Grant:
        """The caller's grant; raises for no/unknown token (500/302) or missing rights (403)."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        grant = self.oauth.tokens.get(token) if token else None
        if grant is None:
            raise Unauthenticated()
        if (user and grant.kind != "user") or (scope and scope not in grant.scopes):
            raise ApiError(403, "This action is unauthorized.")
        return grant


def demo_state(request: Request) -> DemoState:
    """The state of the app serving ``request``."""
    return request.app.state.api
