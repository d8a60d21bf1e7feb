"""CONTRACT SKELETON: the mobile helper owns this file."""

from __future__ import annotations

__all__ = ["MobileResourceManager"]


class MobileResourceManager:
    pass
