"""Request counts per route kind (``GET /_demo/stats``) and the route kinds themselves."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

API_KINDS = frozenset({"public_timeline", "tag_timeline", "status", "trending", "trends", "tag",
                       "instance", "api_other", "post_status", "media_upload", "notifications",
                       "direct", "accounts"})


class Stats:
    """Request counts per route kind and the monotonic times of API requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.since = time.monotonic()
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.api_times: list[float] = []

    def request(self, kind: str, api: bool) -> None:
        with self._lock:
            self.requests[kind] += 1
            if api:
                self.api_times.append(time.monotonic())

    def status(self, code: int) -> None:
        with self._lock:
            self.statuses[str(code)] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self.since, "now": time.monotonic(),
                "requests": dict(self.requests), "statuses": dict(self.statuses),
                "faults": dict(self.faults), "api_requests": len(self.api_times),
                "api_times": list(self.api_times),
            }


def route_kind(path: str) -> str:
    """Coarse route family of a request path (for stats and fault selection)."""
    for prefix, kind in _ROUTE_KINDS:
        if path.startswith(prefix):
            return kind
    return "other"


_ROUTE_KINDS = (
    ("/api/v1/timelines/public", "public_timeline"),
    ("/api/v1/timelines/tag/", "tag_timeline"),
    ("/api/v1/statuses/", "status"),
    ("/api/v1/statuses", "post_status"),
    ("/api/v1/media", "media_upload"),
    ("/api/v2/media", "media_upload"),
    ("/api/v1/notifications", "notifications"),
    ("/api/v1.1/direct/", "direct"),
    ("/api/v1/accounts/", "accounts"),
    ("/api/v1.1/discover/posts/hashtags", "trending"),
    ("/api/pixelfed/v1/discover/posts/hashtags", "trending"),
    ("/api/v1/trends", "trends"),
    ("/api/v1/tags/", "tag"),
    ("/api/v1/instance", "instance"),
    ("/api/v2/instance", "instance"),
    ("/api/nodeinfo/", "instance"),
    ("/.well-known/nodeinfo", "instance"),
    ("/api/v1/apps", "oauth"),
    ("/oauth/", "oauth"),
    ("/storage/", "media"),
    ("/_demo/", "demo"),
    ("/api/", "api_other"),
)

