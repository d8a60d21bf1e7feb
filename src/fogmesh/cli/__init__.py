"""The ``fogmesh`` command line: thin over the Python API (cli → API → config → service)."""

from __future__ import annotations

from fogmesh.cli.app import app, main

__all__ = ["app", "main"]
