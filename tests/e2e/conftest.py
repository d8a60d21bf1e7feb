"""The ``fog`` fixture: processes on 127.0.0.1 in a temporary directory, all killed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import Fog


@pytest.fixture
def fog(tmp_path: Path) -> Iterator[Fog]:
    fog = Fog(tmp_path)
    try:
        yield fog
    finally:
        fog.stop_all()
