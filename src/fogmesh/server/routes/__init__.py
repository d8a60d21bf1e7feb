"""REST routes, one module per resource: ``system`` (health, metrics, status, join tokens),
``tasks`` and ``devices``."""

from __future__ import annotations

__all__: list[str] = []
