"""CONTRACT SKELETON: the devices helper owns this file (fogmesh device detect|optimize)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect this device: capabilities and live optimisation.")
