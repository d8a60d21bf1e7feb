from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from twin_helpers import START

from fogmesh.clock import ManualClock
from fogmesh.security.sealed import MasterKey, Sealer
from fogmesh.twin import Persona, synthetic_persona
from fogmesh.twin.vault import Vault


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(MasterKey.load_or_create(tmp_path / "keys" / "twin.key"))


@pytest.fixture
def vault(tmp_path: Path, sealer: Sealer, clock: ManualClock) -> Iterator[Vault]:
    v = Vault(tmp_path / "twin.db", sealer, retention_seconds=3600, clock=clock)
    yield v
    v.close()


@pytest.fixture(scope="session")
def persona() -> Persona:
    return synthetic_persona(14, seed=7)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FOGMESH_PROFILE", raising=False)
    # The persona's routine is laid out in UTC; a twin that follows the device's zone must read
    # it in UTC on any machine (tests of other zones say so explicitly).
    monkeypatch.setenv("TZ", "UTC")
