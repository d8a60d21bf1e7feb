"""REST routes, one module per resource: ``system`` (health, metrics, status, join tokens),
``tasks``, ``devices`` and ``knowledge`` (the global store the twins elevate to)."""

from __future__ import annotations

__all__: list[str] = []
