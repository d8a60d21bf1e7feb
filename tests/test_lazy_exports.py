"""A package's lazily exported names load on first use and are then plain globals."""

from __future__ import annotations

import json

import pytest

from fogmesh._lazy import lazy_exports


def test_a_name_loads_from_its_home_once_and_unknown_names_fail_clearly() -> None:
    namespace: dict[str, object] = {"__name__": "pkg", "local": 1}
    getattr_, dir_ = lazy_exports(namespace, {"dumps": "json"}, ["dumps", "local"])
    assert "dumps" not in namespace
    assert getattr_("dumps") is json.dumps
    assert namespace["dumps"] is json.dumps  # later lookups never reach __getattr__
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")
    assert dir_() == ["__name__", "dumps", "local"]


def test_the_packages_export_what_they_list() -> None:
    import fogmesh.devices
    import fogmesh.security

    assert fogmesh.security.TicketIssuer.__module__ == "fogmesh.security.tickets"
    assert "preset" in dir(fogmesh.devices) and callable(fogmesh.devices.preset)
    with pytest.raises(AttributeError):
        _ = fogmesh.devices.no_such_name
