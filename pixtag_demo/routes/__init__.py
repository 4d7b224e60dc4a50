"""The demo instance's routes, one :class:`fastapi.APIRouter` per area, in the order they are mounted.

Query parameters are parsed by hand (:mod:`pixtag_demo.params`), not with FastAPI's ``Query``:
a bad value must give Laravel's 422 shape, not FastAPI's.
"""

from __future__ import annotations

from fastapi import APIRouter

from pixtag_demo.routes import (
    accounts,
    control,
    direct,
    instance,
    media,
    notifications,
    oauth,
    statuses,
    tags,
    timelines,
    web,
    write,
)

ROUTERS: tuple[APIRouter, ...] = tuple(m.router for m in (
    timelines, statuses, write, notifications, direct, accounts, tags, instance, oauth, web, media,
    control))
