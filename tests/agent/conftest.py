"""Fixtures shared by the agent tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from containment_helpers import kill_marked, new_marker


@pytest.fixture
def marker() -> Iterator[str]:
    """A ``sleep`` argument no other process has; whatever carries it is killed at the end,
    whether the test passed or not."""
    value = new_marker()
    try:
        yield value
    finally:
        kill_marked(value)
