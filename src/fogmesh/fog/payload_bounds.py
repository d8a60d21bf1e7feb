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

__all__ = ["MAX_PAYLOAD_DEPTH", "check_payload_bounds", "json_nesting_exceeds", "nesting_exceeds"]

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


_OPENERS: Final = bytes.maketrans(b"{}", b"[]")
_NOT_MARKS: Final = bytes(b for b in range(256) if b not in b'[]{}"')


def json_nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether the valid JSON text ``raw`` nests containers more than ``limit`` deep.

    Works on the bytes at C speed (no Python call per value): strings are cut out, the
    brackets kept, and each pass of removing every innermost ``[]`` takes one level off.
    ``raw`` must be valid JSON (decode it first).
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # too few containers to be that deep
    # Drop escaped backslashes, then escaped quotes: every '"' left opens or closes a string.
    # Keep only brackets and quotes; two quotes side by side enclose no bracket, or have none
    # between them, so they can go; then the pieces between the quotes still left alternate
    # outside, inside, outside… strings.
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = raw.translate(_OPENERS, _NOT_MARKS).replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(brackets.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


_DEEP_PART: Final = {"python": "args", "model": "input", "command": "argv"}


def check_payload_bounds(payload: msgspec.Struct, max_bytes: int) -> None:
    """Refuse a payload nested deeper than ``MAX_PAYLOAD_DEPTH``, holding text that is not
    valid Unicode, or encoding to more than ``max_bytes``; ``InvalidRequest`` names the rule."""
    try:
        raw = msgspec.json.encode(payload)
    except UnicodeEncodeError:
        raise InvalidRequest(
            "payload holds text that is not valid Unicode (a lone surrogate such as \\ud800)",
            field="payload",
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"payload is not a JSON value: {exc}", field="payload") from None
    if len(raw) > max_bytes:
        raise InvalidRequest(
            f"payload is {len(raw)} bytes; the limit is {max_bytes}", field="payload"
        )
    # The payload object itself is one level around its args/input.
    if json_nesting_exceeds(raw, MAX_PAYLOAD_DEPTH + 1):
        tag = type(payload).__struct_config__.tag
        part = _DEEP_PART.get(tag, "args") if isinstance(tag, str) else "args"
        raise InvalidRequest(
            f"payload.{part} is nested more than {MAX_PAYLOAD_DEPTH} levels deep",
            field=f"payload.{part}",
        )
