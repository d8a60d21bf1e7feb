"""What the OpenAPI document declares beyond the routes' own types: every error status a route
can answer, with the one error body they all share.

A client (or a generated one) reads the schema to know what to handle; a status it does not
declare is a status nobody handles. ``tests/e2e/test_openapi_conformance_e2e.py`` runs
schemathesis with every check against a live coordinator to keep this true.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat

__all__ = ["AUTHENTICATED", "END", "Bool", "ErrorOut", "Integer", "Number", "errors"]

# End of text in a pattern: "$" also matches before a final newline (Python, and the generators
# that read this schema); a lookahead for "no character follows" means the end in every engine.
END = r"(?![\s\S])"


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str = Field(description="stable machine-readable code, e.g. task_not_found")
    reason: str = Field(description="what went wrong, for a person")


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"code", "reason"}}`` (never a traceback)."""

    error: ErrorBody


_WHY: Final = {
    400: "the operation cannot be done as asked (e.g. a device that cannot take the model, "
    "a contribution the global store refuses)",
    401: "missing, malformed, expired or forged bearer ticket (with WWW-Authenticate: Bearer)",
    403: "the ticket lacks the scope this operation needs",
    404: "an id in the path (or body) names nothing",
    409: "the state does not allow this now (e.g. cancelling a finished task)",
    413: "the request body is larger than the coordinator's limit",
    422: "the request breaks a rule: schema, strict JSON (no lone surrogates, NaN or nesting "
    "over 64 levels) or a rule stated in the operation's description",
    503: "the store is not answering (Retry-After says when to try again); nothing was changed",
}

_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these error statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorOut, "description": _WHY[code]}
        if code in _HEADERS:
            entry["headers"] = _HEADERS[code]
        out[code] = entry
    return out


# Every route behind a ticket can answer these; each router adds them to its routes.
AUTHENTICATED: Final = errors(401, 403, 422, 503)


def _json_integer(value: Any) -> Any:
    # JSON has numbers, true/false and strings apart; pydantic's lax mode would take "4" or true
    # for an integer, which the schema calls invalid. And JSON Schema's integer is any number
    # without a fraction: 47.0 is one.
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Number = StrictFloat  # takes ints, refuses "1.5" and true
Integer = Annotated[int, BeforeValidator(_json_integer)]
Bool = StrictBool
