"""Fixtures: a fake machine tree under tmp_path and a fake psutil host."""

from __future__ import annotations

from pathlib import Path

import pytest
from device_fakes import FakeHost, Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()
