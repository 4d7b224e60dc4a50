"""Fault injection: the knobs (:class:`Faults`), the seeded dice that apply them request by
request, and the broken responses (rate limits, 5xx pages, HTML challenges, cut JSON,
truncated or garbled media)."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from pixtag_demo.stats import Stats


@dataclass
class Faults:
    """Failure knobs, all off by default. Rates are per-request probabilities in [0, 1].

    ``retry_after`` is the Retry-After value sent with a 429 (``None``: no header);
    ``repeat_page`` is how many times the tag timeline ignores ``max_id`` and serves the
    previous page again; ``endless_pages`` makes the tag timeline never answer ``[]``.
    ``routes`` limits the request faults (slow, 429, 5xx, HTML, cut JSON, cut or garbled media)
    to the requests it names, each ``"METHOD /path"`` or ``"/path"`` (any method), the path a
    glob (``/api/v1/statuses/*/context``); empty: every API and media request.
    """

    seed: int = 0
    rate_429: float = 0.0
    retry_after: int | None = 1
    rate_5xx: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    truncate_media_rate: float = 0.0
    corrupt_media_rate: float = 0.0
    html_error_rate: float = 0.0
    malformed_json_rate: float = 0.0
    repeat_page: int = 0
    endless_pages: bool = False
    routes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.routes = tuple(self.routes)
        for route in self.routes:
            parse_route(route)
        for f in fields(self):
            value = getattr(self, f.name)
            if "rate" in f.name and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, not {value!r}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0 or null")
        if not 0 <= self.slow_seconds <= 120:
            raise ValueError("slow_seconds must be between 0 and 120")
        if self.repeat_page < 0:
            raise ValueError("repeat_page must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Knobs from JSON; unknown names and wrong types raise ValueError."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = coerce_knob(name, value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "routes": list(self.routes)}


    def applies(self, method: str, path: str) -> bool:
        """Whether the request faults apply to this request (see ``routes``)."""
        if not self.routes:
            return True
        for route in self.routes:
            want, glob = parse_route(route)
            if (want is None or want == method.upper()) and fnmatch.fnmatchcase(path, glob):
                return True
        return False


def parse_route(route: str) -> tuple[str | None, str]:
    """``"POST /api/v1/statuses"`` -> ("POST", "/api/v1/statuses"); ``"/x"`` -> (None, "/x")."""
    parts = route.split()
    if len(parts) == 1 and parts[0].startswith("/"):
        return None, parts[0]
    if len(parts) == 2 and parts[0].isalpha() and parts[1].startswith("/"):
        return parts[0].upper(), parts[1]
    raise ValueError(f'a fault route is "METHOD /path" or "/path", not {route!r}')


def coerce_knob(name: str, value: Any) -> Any:
    if name == "routes":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError('routes must be a list of "METHOD /path" strings')
        return tuple(value)
    if name == "endless_pages":
        if not isinstance(value, bool):
            raise ValueError("endless_pages must be true or false")
        return value
    if name == "retry_after" and value is None:
        return None
    if isinstance(value, bool) and name == "repeat_page":
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if name in ("seed", "retry_after", "repeat_page"):
        if int(value) != value:
            raise ValueError(f"{name} must be an integer")
        return int(value)
    return float(value)


class FaultDice:
    """The current knobs plus the seeded RNG that decides, request by request."""

    def __init__(self, faults: Faults):
        self.set(faults)

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(f"faults:{faults.seed}")
        self.repeats_left = faults.repeat_page

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


async def fault_response(dice: FaultDice, stats: Stats, kind: str, method: str = "GET",
                         path: str = "/") -> Response | None:
    """The fault the dice pick for one API or media request (a slow one only waits), or None."""
    f = dice.faults
    if not f.applies(method, path):
        return None
    if dice.roll(f.slow_rate):
        stats.fault("slow")
        await asyncio.sleep(f.slow_seconds)
    if dice.roll(f.rate_429):
        stats.fault("429")
        headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
        return HTMLResponse(_CLOUDFLARE_429, status_code=429, headers=headers)
    if dice.roll(f.rate_5xx):
        code = dice.rng.choice((500, 502, 503))
        stats.fault(str(code))
        if code == 500:
            return JSONResponse({"error": "Server Error"}, status_code=500)
        return HTMLResponse(_NGINX_ERROR.format(code=code, text=_REASONS[code]),
                            status_code=code)
    if kind != "media" and dice.roll(f.html_error_rate):
        stats.fault("html")
        return HTMLResponse(_HTML_CHALLENGE)
    if kind != "media" and dice.roll(f.malformed_json_rate):
        stats.fault("malformed_json")
        return Response('[{"id":"1","content":"<p>cut', media_type="application/json")
    return None


_CLOUDFLARE_429 = ("<!DOCTYPE html><html><head><title>Access denied | rate limited</title></head>"
                   "<body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>")
_NGINX_ERROR = ("<html><head><title>{code} {text}</title></head><body><center><h1>{code} {text}"
                "</h1></center><hr><center>nginx</center></body></html>")
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}
_HTML_CHALLENGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                   "<p>Checking your browser before accessing the site.</p></body></html>")


def garble(data: bytes, rng: random.Random) -> bytes:
    """Corrupt bytes of the same length: the first two kept, a third of the rest replaced."""
    n = max(64, len(data) // 3)
    return data[:2] + bytes(rng.randrange(256) for _ in range(min(n, len(data) - 2))) + \
        data[2 + n:]


class TruncatedResponse(Response):
    """Declares the whole body in Content-Length, sends half, then the connection drops."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        PlannedTruncation.expect_one()
        await send({"type": "http.response.body", "body": self.body[:len(self.body) // 2],
                    "more_body": True})
        # returning without the final body message makes uvicorn close the connection


class PlannedTruncation(logging.Filter):
    """Keeps uvicorn's 'returned without completing response' error for planned truncations
    out of the logs (real ones still show)."""

    pending = 0
    lock = threading.Lock()

    @classmethod
    def expect_one(cls) -> None:
        with cls.lock:
            cls.pending += 1

    def filter(self, record: logging.LogRecord) -> bool:
        if "without completing response" not in record.getMessage():
            return True
        with self.lock:
            if type(self).pending:
                type(self).pending -= 1
                return False
        return True


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, PlannedTruncation) for f in logger.filters):
        logger.addFilter(PlannedTruncation())
