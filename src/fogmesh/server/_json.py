"""Strict JSON in and safe JSON out for the REST routes.

In: request bodies are decoded with msgspec instead of ``json.loads``, which accepts what no
other reader can handle later — lone UTF-16 surrogates (``"\\ud800"``), ``NaN``, numbers out of
range — and recurses without bound. A body that is not strict JSON, or is nested more than
``MAX_BODY_DEPTH`` levels, is refused as a 422 before any route sees it.

Out: stored values (task payloads, results) were written by other versions or by devices and
may be shaped in ways today's intake refuses; ``render_json`` encodes them with msgspec and
replaces a value too deep to render with a marker, so a read never fails on what is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any, Final

import msgspec
from fastapi import Request, Response
from fastapi.routing import APIRoute

from fogmesh.fog.payload_bounds import MAX_PAYLOAD_DEPTH, json_nesting_exceeds, nesting_exceeds

__all__ = [
    "MAX_BODY_DEPTH",
    "MAX_RENDER_DEPTH",
    "SafeJSONResponse",
    "StrictJsonRoute",
    "safe_value",
]

# A batch submit nests a payload's args four levels down; twice the payload rule leaves room.
MAX_BODY_DEPTH: Final = 2 * MAX_PAYLOAD_DEPTH
MAX_RENDER_DEPTH: Final = 2 * MAX_PAYLOAD_DEPTH


_SURROGATE: Final = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def decode_body(body: bytes) -> Any:
    """``body`` as a JSON value, or ``json.JSONDecodeError`` (FastAPI answers 422 with it)."""
    too_deep = f"nested more than {MAX_BODY_DEPTH} levels"
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise json.JSONDecodeError(too_deep, "", 0) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # msgspec reports a lone surrogate as a truncation or a broken pair; say what it is.
        lone = _SURROGATE.search(body) is not None
        hint = " (a lone UTF-16 surrogate such as \\ud800 is not text)" if lone else ""
        raise json.JSONDecodeError(f"not strict JSON{hint}: {exc}", "", 0) from None
    if json_nesting_exceeds(body, MAX_BODY_DEPTH):
        raise json.JSONDecodeError(too_deep, "", 0)
    return value


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_body(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` whose JSON body is decoded by ``decode_body``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict


_TOO_DEEP: Final = {"unrendered": f"stored value nested more than {MAX_RENDER_DEPTH} levels"}


def safe_value(value: Any) -> Any:
    """``value``, or a marker object in its place when it is too deep to render."""
    return _TOO_DEEP if nesting_exceeds(value, MAX_RENDER_DEPTH) else value


class SafeJSONResponse(Response):
    """JSON encoded by msgspec (C, no Python recursion); text that is not valid Unicode (a lone
    surrogate stored before intake refused it) is written as "?" instead of failing."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return msgspec.json.encode(content)
        except UnicodeEncodeError:
            return msgspec.json.encode(_scrub(content))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
