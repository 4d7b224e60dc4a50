"""Request parsing as Laravel does it: integer and boolean query parameters, form or JSON input,
``expectsJson()``, and the base URL of a request.

Hand-written rather than FastAPI's ``Query``: the errors must keep Laravel's shape (HTTP 422
``{"message", "errors": {name: [message]}}`` and its wording), not FastAPI's ``{"detail": [...]}``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from pixtag_demo.errors import ApiError, Invalid

PHP_INT_MAX = 2**63 - 1


def wants_json(request: Request) -> bool:
    """Laravel's ``expectsJson()``: an XHR, or a first Accept type that is JSON."""
    if request.headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return True
    first = request.headers.get("accept", "").split(",")[0].strip().lower()
    return "/json" in first or "+json" in first


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def int_param(request: Request, name: str, minimum: int = 0,
              maximum: int = PHP_INT_MAX) -> int | None:
    """An integer query parameter with Laravel's validation (empty string = absent)."""
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    label = name.replace("_", " ")
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise Invalid(name, f"The {label} field must be an integer.")
    value = int(raw)
    if value < minimum:
        raise Invalid(name, f"The {label} field must be at least {minimum}.")
    if value > maximum:
        raise Invalid(name, f"The {label} field must not be greater than {maximum}.")
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """Laravel's ``$request->boolean()``."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "on", "yes")


async def form_params(request: Request) -> dict[str, str]:
    """Query string plus a form-encoded or JSON body (Laravel's ``$request->input()``)."""
    params = dict(request.query_params)
    body = await request.body()
    if not body:
        return params
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise ApiError(400, "Malformed JSON body") from None
        if isinstance(data, dict):
            params.update({k: "\n".join(map(str, v)) if isinstance(v, list) else str(v)
                           for k, v in data.items() if v is not None})
        return params
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    params.update({k: v[-1] for k, v in parsed.items()})
    return params


async def request_input(request: Request) -> dict[str, Any]:
    """Laravel's ``$request->all()``: query string plus a JSON, form-encoded or multipart body;
    ``name[]`` fields become lists under ``name``, strings are trimmed and ``""`` becomes None
    (TrimStrings, ConvertEmptyStringsToNull); uploads stay :class:`UploadFile` objects."""
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        body = await request.body()
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            raise ApiError(400, "Malformed JSON body") from None
        out = _merge(items)
        if isinstance(data, dict):
            out.update({k: _clean(v) for k, v in data.items()})
        return out
    if "form" in kind:
        items += list((await request.form()).multi_items())
    return _merge(items)


def _merge(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key.endswith("[]"):
            out.setdefault(key[:-2], [])
            if isinstance(out[key[:-2]], list):
                out[key[:-2]].append(_clean(value))
        else:
            out[key] = _clean(value)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def filled(value: Any) -> bool:
    """Laravel's ``filled()``: present and not null, blank or an empty list."""
    return value is not None and value != [] and value != ""


def boolean(value: Any) -> bool:
    """Laravel's ``$request->boolean()`` for a value already read."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "on", "yes")
