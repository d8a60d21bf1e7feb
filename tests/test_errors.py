from __future__ import annotations

import inspect
import re

import pytest

from fogmesh import errors
from fogmesh.errors import ConfigError, FogmeshError, TicketExpired


def _classes() -> list[type[FogmeshError]]:
    return [
        obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, FogmeshError)
    ]


def test_every_error_is_drawn_in_the_tree_at_the_top() -> None:
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[└├│ ]── (\w+)", doc)) | {"FogmeshError"}
    assert {cls.__name__ for cls in _classes()} == drawn


def test_drawn_parents_match_the_class_hierarchy() -> None:
    lines = (errors.__doc__ or "").splitlines()
    stack: list[tuple[int, str]] = []
    for line in lines:
        m = re.match(r"^(\s*)(?:[│ ]*[└├]── )?(\w+Error|\w+)\s", line + " ")
        if not m or not hasattr(errors, m[2]):
            continue
        depth = line.find(m[2])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            child, parent = getattr(errors, m[2]), getattr(errors, stack[-1][1])
            assert child.__mro__[1] is parent, f"{m[2]} is drawn under {stack[-1][1]}"
        stack.append((depth, m[2]))


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in _classes()]
    assert len(codes) == len(set(codes))


def test_error_travels_as_a_value() -> None:
    err = TicketExpired("ticket expired 3 s ago", jti="abc")
    assert err.to_value() == {
        "code": "ticket_expired",
        "reason": "ticket expired 3 s ago",
        "details": {"jti": "abc"},
    }


def test_config_error_names_the_field() -> None:
    err = ConfigError("must be below battery_low", field="battery_critical")
    assert err.field == "battery_critical"
    assert str(err).startswith("battery_critical")
    with pytest.raises(FogmeshError):
        raise err
