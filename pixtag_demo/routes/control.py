"""Control endpoints no real instance has (no auth): ``/_demo/stats``, ``/_demo/faults``,
``/_demo/world``."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pixtag_demo.faults import Faults
from pixtag_demo.state import demo_state

router = APIRouter()


@router.api_route("/_demo/stats", methods=['GET', 'DELETE'])
async def demo_stats(request: Request) -> Response:
    demo = demo_state(request)
    if request.method == "DELETE":
        demo.stats.reset()
    return JSONResponse(demo.stats.snapshot())


@router.api_route("/_demo/faults", methods=['GET', 'PUT'])
async def demo_faults(request: Request) -> Response:
    demo = demo_state(request)
    if request.method == "PUT":
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object of fault knobs")
            demo.dice.set(Faults.from_dict(data))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"message": str(exc), "errors": {"faults": [str(exc)]}},
                                status_code=422)
    return JSONResponse(demo.dice.faults.to_dict())


@router.get("/_demo/world")
async def demo_world(request: Request) -> Response:
    demo = demo_state(request)
    return JSONResponse(demo.world.summary())
