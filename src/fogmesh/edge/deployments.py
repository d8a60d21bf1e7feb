"""Deployment records: one per ``deploy_workload`` call, kept in the edge's own SQLite file.

States move only because work happened::

    pending ──▶ transferring ──▶ verifying ──▶ ready ──▶ superseded | removed
       │             │               │
       └─────────────┴───────────────┴──▶ failed (reason)

``superseded``: a later deployment of the same model to the same device became ready (it may have
another variant, after the monitoring loop re-optimised); ``removed``: undeployed on request.
Every transition is kept in
``history`` with its time and a note.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from enum import StrEnum
from pathlib import Path

import msgspec

from fogmesh.edge.variants import Variant
from fogmesh.errors import IllegalTransition, NotFound

__all__ = [
    "Deployment",
    "DeploymentNotFound",
    "DeploymentState",
    "DeploymentStore",
    "Transition",
    "new_deployment_id",
]


class DeploymentState(StrEnum):
    PENDING = "pending"
    TRANSFERRING = "transferring"
    VERIFYING = "verifying"
    READY = "ready"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    REMOVED = "removed"


_NEXT: dict[DeploymentState, frozenset[DeploymentState]] = {
    DeploymentState.PENDING: frozenset({DeploymentState.TRANSFERRING, DeploymentState.FAILED}),
    DeploymentState.TRANSFERRING: frozenset({DeploymentState.VERIFYING, DeploymentState.FAILED}),
    DeploymentState.VERIFYING: frozenset({DeploymentState.READY, DeploymentState.FAILED}),
    DeploymentState.READY: frozenset({DeploymentState.SUPERSEDED, DeploymentState.REMOVED}),
    DeploymentState.FAILED: frozenset(),
    DeploymentState.SUPERSEDED: frozenset(),
    DeploymentState.REMOVED: frozenset(),
}


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class Transition(msgspec.Struct, frozen=True):
    state: DeploymentState
    at: float
    note: str = ""


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    deployment_id: str
    device_id: str
    model_id: str
    deployment_type: str
    state: DeploymentState
    created_at: float
    updated_at: float
    variant: Variant | None = None
    sha256: str | None = None
    link: str | None = None
    chunk_size: int | None = None
    chunks: int | None = None
    bytes_transferred: int = 0
    reasons: tuple[str, ...] = ()  # why this variant
    reason: str | None = None  # why it failed or was superseded
    history: tuple[Transition, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


def new_deployment_id(now: float) -> str:
    """Time-ordered and unique: milliseconds, then 64 random bits (two deploys in the same
    millisecond still differ; the table's primary key would refuse a repeat anyway)."""
    return f"dep-{int(now * 1000):012x}-{secrets.token_hex(8)}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    deployment_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deployments_device ON deployments (device_id, model_id);
"""


class DeploymentStore:
    """Deployments in ``edge.db``; every write is one short transaction."""

    def __init__(self, db_path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, deployment: Deployment) -> Deployment:
        """Store a new record; its history starts with its first state."""
        deployment = msgspec.structs.replace(
            deployment,
            history=(Transition(deployment.state, deployment.created_at, "created"),),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, ?)",
                (
                    deployment.deployment_id,
                    deployment.device_id,
                    deployment.model_id,
                    deployment.state.value,
                    msgspec.json.encode(deployment).decode(),
                ),
            )
        return deployment

    def transition(
        self,
        deployment: Deployment,
        state: DeploymentState,
        now: float,
        note: str = "",
        **changes: object,
    ) -> Deployment:
        """Move to ``state`` (only along the arrows above) and store the record."""
        if state not in _NEXT[deployment.state]:
            raise IllegalTransition(
                f"deployment {deployment.deployment_id}: {deployment.state.value} → "
                f"{state.value} is not allowed"
            )
        updated = msgspec.structs.replace(
            deployment,
            state=state,
            updated_at=now,
            history=(*deployment.history, Transition(state, now, note)),
            **changes,
        )
        with self._lock:
            self._db.execute(
                "UPDATE deployments SET state = ?, body = ? WHERE deployment_id = ?",
                (state.value, msgspec.json.encode(updated).decode(), deployment.deployment_id),
            )
        return updated

    def get(self, deployment_id: str) -> Deployment:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM deployments WHERE deployment_id = ?", (deployment_id,)
            ).fetchone()
        if row is None:
            raise DeploymentNotFound(
                f"unknown deployment {deployment_id!r}", deployment_id=deployment_id
            )
        return msgspec.json.decode(row[0], type=Deployment)

    def for_device(
        self, device_id: str, *, states: frozenset[DeploymentState] | None = None
    ) -> list[Deployment]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM deployments WHERE device_id = ? ORDER BY deployment_id",
                (device_id,),
            ).fetchall()
        found = [msgspec.json.decode(r[0], type=Deployment) for r in rows]
        return [d for d in found if states is None or d.state in states]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys((s.value for s in DeploymentState), 0)
        with self._lock:
            for state, n in self._db.execute(
                "SELECT state, COUNT(*) FROM deployments GROUP BY state"
            ):
                out[state] = n
        return out
