"""Ids as people type them: a unique prefix of a task, device or token id, or a device's name.

Resolution happens here, in the client, with one list call: a task prefix asks for the first
few tasks after it in id order (ids sort as they are created, so the tasks that start with the
prefix come first), a device or token prefix is matched against the (short) list of them. A
prefix that fits more than one is an error that lists the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from fogmesh.errors import DeviceNotFound, InvalidRequest, NotFound, TaskNotFound

if TYPE_CHECKING:
    from fogmesh.client import FogClient

__all__ = [
    "device_name",
    "device_names",
    "pick_device",
    "resolve_device",
    "resolve_task",
    "resolve_token",
]

TASK_ID_LEN: Final = 26  # ULID (fogmesh.fog.tasks.TaskIdFactory)
_SHOWN: Final = 5  # candidates named in an "ambiguous" error


def _ambiguous(kind: str, text: str, candidates: list[str], more: bool) -> InvalidRequest:
    shown = ", ".join(candidates[:_SHOWN])
    if more or len(candidates) > _SHOWN:
        shown += ", …"
    return InvalidRequest(
        f"{text!r} matches more than one {kind}: {shown}; give more of the id", field="id"
    )


def _one(kind: str, text: str, matches: list[str], *, more: bool = False) -> str | None:
    unique = list(dict.fromkeys(matches))
    if len(unique) > 1 or (unique and more):
        raise _ambiguous(kind, text, unique, more)
    return unique[0] if unique else None


def _clean(text: str, kind: str) -> str:
    value = text.strip()
    if not value:
        raise InvalidRequest(f"a {kind} id cannot be empty", field="id")
    return value


def resolve_task(client: FogClient, text: str) -> str:
    """The full id of the one task whose id starts with ``text`` (case-insensitive)."""
    value = _clean(text, "task")
    if len(value) >= TASK_ID_LEN:
        return value  # a whole id: the coordinator answers for it
    prefix = value.upper()  # ULIDs are upper-case Crockford base32
    found = client.tasks(None, limit=_SHOWN + 1, after=prefix)
    matches = [str(t.get("id")) for t in found if str(t.get("id", "")).startswith(prefix)]
    chosen = _one("task", value, matches, more=len(matches) > _SHOWN)
    if chosen is None:
        raise TaskNotFound(f"no task id starts with {value!r}", task_id=value)
    return chosen


def device_name(device: Mapping[str, Any]) -> str | None:
    """The name a device goes by (``fogmesh agent --name``, else its hostname), if it has one."""
    labels = device.get("labels")
    name = labels.get("name") if isinstance(labels, Mapping) else None
    return name if isinstance(name, str) and name else None


def device_names(devices: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Device id → name, for the devices that have one."""
    names: dict[str, str] = {}
    for d in devices:
        name = device_name(d)
        if name is not None:
            names[str(d.get("device_id"))] = name
    return names


def resolve_device(client: FogClient, text: str) -> str:
    """The id of the one device whose id is or starts with ``text``, or whose name is ``text``."""
    return pick_device(client.devices(), text)


def pick_device(devices: list[dict[str, Any]], text: str) -> str:
    """``resolve_device`` over a list of devices (``GET /v1/devices`` items or their records)."""
    value = _clean(text, "device")
    ids = [str(d.get("device_id")) for d in devices]
    if value in ids:
        return value
    named = [str(d.get("device_id")) for d in devices if device_name(d) == value]
    by_prefix = [i for i in ids if i.startswith(value.lower())]
    chosen = _one("device", value, named) or _one("device", value, by_prefix)
    if chosen is None:
        raise DeviceNotFound(
            f"no device has the id or name {value!r} (see `fogmesh devices`)", device_id=value
        )
    return chosen


def resolve_token(client: FogClient, text: str) -> str:
    """The id of the one join token whose id is or starts with ``text``."""
    value = _clean(text, "token")
    ids = [str(t.get("id")) for t in client.tokens(include_expired=True)]
    if value in ids:
        return value
    chosen = _one("token", value, [i for i in ids if i.startswith(value)])
    if chosen is None:
        raise NotFound(f"no join token id starts with {value!r} (see `fogmesh token list`)")
    return chosen
