"""Settings of the header deadline and connection cap (their behaviour is tested end to end in
tests/e2e/test_api_hardening_e2e.py against a real coordinator process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fogmesh.errors import ConfigError
from fogmesh.server import ServerConfig
from fogmesh.server._http import guarded_http_protocol


@pytest.mark.parametrize(
    ("field", "value"),
    [("header_timeout", 0), ("header_timeout", -1.0), ("header_timeout", 1e9),
     ("max_connections", 0), ("max_connections", True), ("max_connections", 2.5)],
)  # fmt: skip
def test_bad_limits_are_config_errors(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        ServerConfig(data_dir=tmp_path, **{field: value})  # type: ignore[arg-type]


def test_defaults_and_protocol_class(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path)
    assert config.header_timeout == 10.0 and config.max_connections == 10_000
    cls = guarded_http_protocol(header_timeout=2, max_connections=5)
    assert cls.header_timeout == 2.0 and cls.max_connections == 5  # type: ignore[attr-defined]
