"""The JSON Schema of a device profile sent over REST, stating every rule the server applies.

Derived from the ``DeviceProfile`` dataclass (pydantic's schema of it, with its ``$defs``
inlined so the schema stands inside the OpenAPI document), plus what the dataclass types do
not say: the value bounds ``devices.emulated`` checks, no unknown fields, a platform's thermal
status range, and that a device without a battery reports no battery readings. Profile files'
own keys (``base``, ``unset``) are not part of it: over REST a profile is what
``DeviceProfile.to_dict()`` gives.
"""

from __future__ import annotations

import functools
from typing import Any

from fogmesh.devices.emulated import _BOUNDS, _adapter
from fogmesh.devices.model import MAX_ACCEPTED_MODULES

__all__ = ["FILE_ONLY_KEYS", "integral_numbers", "profile_json_schema"]

FILE_ONLY_KEYS = frozenset({"base", "unset"})


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k not in ("$defs", "title")}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _bound(prop: dict[str, Any], low: float | None, high: float | None) -> None:
    for option in prop.get("anyOf", [prop]):
        if option.get("type") in ("integer", "number"):
            if low is not None:
                option["minimum"] = low
            if high is not None:
                option["maximum"] = high


def _integer_fields(props: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        name
        for name, prop in props.items()
        if any(o.get("type") == "integer" for o in prop.get("anyOf", [prop]))
    )


@functools.cache
def _profile_integer_fields() -> tuple[frozenset[str], frozenset[str]]:
    """The profile's and its capabilities' integer fields (the schema is fixed: read once)."""
    props = profile_json_schema()["properties"]
    return _integer_fields(props), _integer_fields(props["capabilities"]["properties"])


def integral_numbers(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with integral floats (``36206.0``) of integer fields made ints: JSON Schema's
    ``integer`` is any number without a fraction, the profile's validator is strict."""
    top, in_capabilities = _profile_integer_fields()
    out = dict(data)
    for name in top:
        if name in out:
            out[name] = _as_int(out[name])
    caps = out.get("capabilities")
    if isinstance(caps, dict):
        fixed = dict(caps)
        for name in in_capabilities:
            if name in fixed:
                fixed[name] = _as_int(fixed[name])
        out["capabilities"] = fixed
    thermal = out.get("platform_thermal")
    if isinstance(thermal, dict) and "status" in thermal:
        out["platform_thermal"] = {**thermal, "status": _as_int(thermal["status"])}
    return out


def _as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@functools.cache
def profile_json_schema() -> dict[str, Any]:
    raw = _adapter().json_schema()
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    schema.pop("required", None)  # device_id and device_type have defaults over REST
    schema["additionalProperties"] = False
    caps = schema["properties"]["capabilities"]
    caps["additionalProperties"] = False
    for name, (low, high) in _BOUNDS.items():
        owner, _, field = name.rpartition(".")
        props = caps["properties"] if owner == "capabilities" else schema["properties"]
        _bound(props[field], low, high)
    schema["properties"]["platform_thermal"] = {
        "anyOf": [
            {
                "type": "object",
                "required": ["platform", "status"],
                "properties": {
                    "platform": {"const": platform},
                    "status": {"type": "integer", "minimum": 0, "maximum": top},
                },
            }
            for platform, top in (("android", 6), ("ios", 3))
        ]
        + [{"type": "null"}],
        "description": "the OS's raw thermal status: Android 0–6, iOS 0–3",
    }
    schema["properties"]["accepts"] = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "python_modules": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "maxItems": MAX_ACCEPTED_MODULES,
                        "description": "module prefixes the agent runs (`pkg` allows `pkg.sub`)",
                    },
                    "commands": {"type": "boolean"},
                    "models": {"type": "boolean"},
                },
            },
            {"type": "null"},
        ],
        "description": "what the device's agent runs (Accepts); null: it does not say",
    }
    schema["if"] = {
        "properties": {
            "capabilities": {
                "properties": {"has_battery": {"const": False}},
                "required": ["has_battery"],
            }
        },
        "required": ["capabilities"],
    }
    schema["then"] = {
        "properties": {"battery_percent": {"type": "null"}, "charging": {"type": "null"}}
    }
    schema["description"] = (
        "a DeviceProfile as its to_dict() gives it: identity, capabilities and readings; "
        "every field optional (device_type is classified from the capabilities if absent). "
        "A device whose capabilities say has_battery: false reports no battery_percent or charging."
    )
    return schema
