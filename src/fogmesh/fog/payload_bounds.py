"""Shape limits of a task's payload: nesting depth, valid Unicode and encoded size.

A value nested hundreds of levels deep is stored fine but then breaks every reader that
recurses (JSON serialisers, validators, the dashboard); a lone UTF-16 surrogate (``"\\ud800"``)
is a Python ``str`` but not Unicode text, so no JSON or msgpack encoder can write it. Both are
refused at intake, here, so the REST routes (single and batch) and the Python API share one
rule, and nothing that cannot be read back is ever stored.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fogmesh.errors import InvalidRequest

__all__ = ["MAX_PAYLOAD_DEPTH", "check_payload_bounds", "nesting_exceeds"]

MAX_PAYLOAD_DEPTH: Final = 32  # containers inside args/input: real inputs are a few levels


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` has containers (dicts, lists, tuples) nested more than ``limit`` deep.

    ``{}`` and ``[1, 2]`` are depth 1, ``{"a": [1]}`` depth 2. Iterative, so any depth is safe
    to ask about.
    """
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False


def check_payload_bounds(payload: msgspec.Struct, max_bytes: int) -> None:
    """Refuse a payload nested deeper than ``MAX_PAYLOAD_DEPTH``, holding text that is not
    valid Unicode, or encoding to more than ``max_bytes``; ``InvalidRequest`` names the rule."""
    for name in ("args", "input", "argv"):
        value = getattr(payload, name, None)
        if nesting_exceeds(value, MAX_PAYLOAD_DEPTH):
            raise InvalidRequest(
                f"payload.{name} is nested more than {MAX_PAYLOAD_DEPTH} levels deep",
                field=f"payload.{name}",
            )
    try:
        size = len(msgspec.json.encode(payload))
    except UnicodeEncodeError:
        raise InvalidRequest(
            "payload holds text that is not valid Unicode (a lone surrogate such as \\ud800)",
            field="payload",
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"payload is not a JSON value: {exc}", field="payload") from None
    if size > max_bytes:
        raise InvalidRequest(f"payload is {size} bytes; the limit is {max_bytes}", field="payload")
