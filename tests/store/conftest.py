"""Fixtures for the store contract: one ``store`` per backend, each fresh and cleaned up.

PostgreSQL runs only when ``FOGMESH_TEST_PG_URL`` is set; each test gets its own schema, dropped
at the end, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fogmesh.devices.model import DeviceCapabilities, DeviceProfile, DeviceType
from fogmesh.fog.tasks import Task, TaskIdFactory, TaskPriority, TaskType
from fogmesh.store import MemoryStore, SqlStore, Store

PG_URL = os.environ.get("FOGMESH_TEST_PG_URL")
NEEDS_PG = "needs PostgreSQL: set FOGMESH_TEST_PG_URL (CI sets it when the server answers)"
T0 = 1_700_000_000.0

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param(
        "postgresql", marks=[pytest.mark.pg, pytest.mark.skipif(not PG_URL, reason=NEEDS_PG)]
    ),
]
SQL_BACKENDS = BACKENDS[1:]


class PgSchema:
    """A throw-away PostgreSQL schema."""

    def __init__(self) -> None:
        assert PG_URL is not None
        self.url = PG_URL
        self.name = f"fm_test_{uuid.uuid4().hex[:12]}"

    async def _run(self, sql: str) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    async def create(self) -> None:
        await self._run(f'CREATE SCHEMA "{self.name}"')

    async def drop(self) -> None:
        await self._run(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


class Backend:
    """Opens stores of one kind on one database (several stores may share it)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "fogmesh.db"
        self.pg: PgSchema | None = PgSchema() if kind == "postgresql" else None
        self._opened: list[Store] = []
        self._memory: MemoryStore | None = None

    async def open(self, **options: Any) -> Store:
        store: Store
        if self.kind == "memory":
            self._memory = self._memory or MemoryStore()
            store = self._memory
        elif self.kind == "sqlite":
            store = await SqlStore.open(f"sqlite:///{self.path}", **options)
        else:
            assert self.pg is not None
            store = await SqlStore.open(self.pg.url, schema=self.pg.name, **options)
        self._opened.append(store)
        return store

    async def setup(self) -> None:
        if self.pg is not None:
            await self.pg.create()

    async def teardown(self) -> None:
        for store in self._opened:
            await store.close()
        if self.pg is not None:
            await self.pg.drop()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, tmp_path)
    await b.setup()
    try:
        yield b
    finally:
        await b.teardown()


@pytest.fixture(params=SQL_BACKENDS)
async def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, tmp_path)
    await b.setup()
    try:
        yield b
    finally:
        await b.teardown()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


@pytest.fixture
def ids() -> Iterator[Callable[[], str]]:
    factory = TaskIdFactory()
    clock = iter(range(10**9))
    yield lambda: factory.new(T0 + next(clock) / 1000)


@pytest.fixture
def make_task(ids: Callable[[], str]) -> Callable[..., Task]:
    def make(**fields: Any) -> Task:
        fields.setdefault("id", ids())
        fields.setdefault("type", TaskType.INFERENCE)
        fields.setdefault("priority", TaskPriority.NORMAL)
        fields.setdefault("created_at", T0)
        return Task(**fields)

    return make


@pytest.fixture
def make_profile() -> Callable[..., DeviceProfile]:
    def make(device_id: str = "dev-1", **fields: Any) -> DeviceProfile:
        fields.setdefault("device_type", DeviceType.LAPTOP)
        fields.setdefault(
            "capabilities",
            DeviceCapabilities(cpu_cores_logical=8, ram_total_mb=16_000, has_battery=True),
        )
        fields.setdefault("battery_percent", 80.0)
        fields.setdefault("charging", False)
        return DeviceProfile(device_id=device_id, **fields)

    return make
