"""What the routes share: one world, its live state, one token store, the fault dice and the stats."""

from __future__ import annotations

from fastapi import Request

from pixtag_demo.errors import ApiError, Unauthenticated
from pixtag_demo.faults import FaultDice, Faults
from pixtag_demo.live.store import BOT_BIO, BOT_SEQ, Live
from pixtag_demo.oauth import Grant, OAuthServer
from pixtag_demo.stats import Stats
from pixtag_demo.world.entities import Account, Post
from pixtag_demo.world.model import World

BOT_USERNAME = "pixtag"
READ_WRITE = frozenset({"read", "write"})


class DemoState:
    """The instance's state behind the routes (``app.state.api``)."""

    def __init__(self, world: World, token: str, faults: Faults | None = None,
                 bot_token: str | None = None):
        self.world = world
        self.live = Live(world)
        self.oauth = OAuthServer(token)
        self.dice = FaultDice(faults or Faults())
        self.stats = Stats()
        self.last_tag_page: dict[str, list[Post]] = {}
        self.bot: Account | None = None
        if bot_token:
            self.bot = self.live.add_account(BOT_USERNAME, bot=True, bio=BOT_BIO,
                                             display_name="pixtag", seq=BOT_SEQ)
            self.oauth.add_token(bot_token, Grant("user", READ_WRITE, account_id=self.bot.id))

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

    def viewer_id(self, grant: Grant) -> int | None:
        """The grant's account id without making the demo user's account (None: the demo user
        before its first write, who follows nobody and owns nothing)."""
        return grant.account_id if grant.account_id is not None else self.live.demo_id

    def user(self, request: Request, scope: str | None = "read") -> Account:
        """The caller's account (the demo user's is made on first use)."""
        grant = self.grant(request, scope=scope)
        if grant.account_id is None:
            return self.live.demo_account()
        account = self.live.account(grant.account_id)
        if account is None:  # a token for an account that is gone
            raise Unauthenticated()
        return account


def demo_state(request: Request) -> DemoState:
    """The state of the app serving ``request``."""
    return request.app.state.api
