"""CONTRACT SKELETON: the lead writes the demo."""

from __future__ import annotations


def demo() -> None:
    """Show this machine's capabilities and live optimisation next to emulated profiles."""
