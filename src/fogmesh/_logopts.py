"""``--log-level``, ``--log-format`` of the long-running commands (outside fogmesh.cli: an agent
started by file path must not import the whole command package)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["LogFormatOption", "LogLevelOption"]

LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        envvar="FOGMESH_LOG_LEVEL",
        show_envvar=True,
        help="debug, info, warning or error (default info)",
    ),
]
LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        envvar="FOGMESH_LOG_FORMAT",
        show_envvar=True,
        help="text, or json: one JSON object per line (default text)",
    ),
]
