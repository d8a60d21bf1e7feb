"""Process-wide settings from ``FOGMESH_*`` environment variables.

Precedence (highest first): explicit arguments (CLI flags, constructor arguments) → environment →
defaults here. Each component has its own typed config object; this module only holds what many
components share.

Plain Python on purpose: a device agent reads these at start-up, and pydantic-settings cost
about 4.5 MB of its idle memory (the agent's target is 60 MB). The rules are the ones
pydantic-settings applied here: variable names are matched case-insensitively, an empty value
is a value (not "unset"), unknown variables and arguments are ignored, ``home`` takes a ``str``
or a ``Path`` (``~`` is not expanded), the text fields take a ``str`` (or UTF-8 ``bytes``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogmesh.errors import ConfigError

__all__ = ["Settings", "default_data_dir", "load_settings", "setting"]

_ENV_PREFIX = "FOGMESH_"


def default_data_dir() -> Path:
    """The per-user data directory (``FOGMESH_HOME`` overrides it)."""
    import platformdirs  # only when no data directory was given (FOGMESH_HOME, --data-dir)

    return Path(platformdirs.user_data_dir("fogmesh", appauthor=False))


def _path(name: str, value: Any) -> Path:
    # pydantic's lax Path: a str or a Path, nothing else (not bytes, not other PathLikes).
    if isinstance(value, Path):
        return value
    if isinstance(value, str):
        return Path(value)
    raise ConfigError(
        "Input is not a valid path for <class 'pathlib.Path'>", field=_ENV_PREFIX + name.upper()
    )


def _text(name: str, value: Any) -> str:
    # pydantic's lax str: str (subclasses become str), UTF-8 bytes/bytearray; not numbers, bools.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            message = "Input should be a valid string, unable to parse raw data as a unicode string"
            raise ConfigError(message, field=_ENV_PREFIX + name.upper()) from None
    raise ConfigError("Input should be a valid string", field=_ENV_PREFIX + name.upper())


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


_FIELDS = {
    "home": _path,
    "profile": _optional_text,
    "coordinator": _optional_text,
    "log_level": _text,
}

_DEFAULTS: dict[str, str | None] = {"profile": None, "coordinator": None, "log_level": "INFO"}


@dataclass(frozen=True, slots=True, init=False)
class Settings:
    """Shared settings. Every field reads ``FOGMESH_<FIELD>`` from the environment.

    ``Settings(**values)`` takes the given fields first, then the environment, then the defaults
    (a bad value raises ``ConfigError`` naming ``FOGMESH_<FIELD>``).
    """

    home: Path = field(default_factory=default_data_dir)  # data directory
    # emulated sensor source: a preset name or a JSON/TOML profile file
    profile: str | None = None
    coordinator: str | None = None  # URL of a running coordinator
    log_level: str = "INFO"  # logging level

    def __init__(self, **values: Any) -> None:
        env = _environment()
        for name, check in _FIELDS.items():
            value = check(name, values[name]) if name in values else _setting(name, env)
            object.__setattr__(self, name, value)

    @property
    def data_dir(self) -> Path:
        return self.home


def _environment() -> dict[str, str]:
    # Later variables win when two differ only in case (the environment's order), as before.
    return {k.lower(): v for k, v in os.environ.items()}


def _setting(name: str, env: dict[str, str]) -> Any:
    key = (_ENV_PREFIX + name).lower()
    if key in env:
        return _FIELDS[name](name, env[key])
    return default_data_dir() if name == "home" else _DEFAULTS[name]


def setting(name: str) -> Any:
    """One field of ``load_settings()`` (environment, else default) without the others: reading
    ``profile`` this way does not work out the default data directory."""
    if name not in _FIELDS:
        raise KeyError(name)
    return _setting(name, _environment())


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides on top (``None`` = not given)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
