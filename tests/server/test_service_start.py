"""A coordinator service whose start fails part-way closes what it had opened: no store, no
scheduler left running, and a second start can succeed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fogmesh.edge.manager import EdgeManager
from fogmesh.server import CoordinatorService, ServerConfig


async def test_a_start_that_fails_part_way_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServerConfig(data_dir=tmp_path / "coord")

    async def broken(self: EdgeManager) -> None:
        raise RuntimeError("edge manager cannot start")

    monkeypatch.setattr(EdgeManager, "start", broken)
    service = CoordinatorService(config)
    with pytest.raises(RuntimeError, match="edge manager"):
        await service.start()
    store, coordinator = service._store, service._coordinator
    assert store is not None and store._closed  # type: ignore[attr-defined]
    assert coordinator is not None and coordinator._closed  # type: ignore[attr-defined]
    monkeypatch.undo()
    await service.start()  # nothing half-open stands in the way
    try:
        assert service.admin_ticket
    finally:
        await service.stop()
