"""Process-wide settings from ``FOGMESH_*`` environment variables.

Precedence (highest first): explicit arguments (CLI flags, constructor arguments) → environment →
defaults here. Each component has its own typed config object; this module only holds what many
components share.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fogmesh.errors import ConfigError

__all__ = ["Settings", "default_data_dir", "load_settings"]


def default_data_dir() -> Path:
    """The per-user data directory (``FOGMESH_HOME`` overrides it)."""
    return Path(platformdirs.user_data_dir("fogmesh", appauthor=False))


class Settings(BaseSettings):
    """Shared settings. Every field reads ``FOGMESH_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="FOGMESH_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_data_dir, description="data directory")
    profile: str | None = Field(
        default=None,
        description="emulated sensor source: a preset name or a JSON/TOML profile file",
    )
    coordinator: str | None = Field(default=None, description="URL of a running coordinator")
    log_level: str = Field(default="INFO", description="logging level")

    @property
    def data_dir(self) -> Path:
        return self.home


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(first["msg"], field=f"FOGMESH_{field.upper()}") from exc
