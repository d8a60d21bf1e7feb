"""``CoordinatorService``: keys, store, FogCoordinator and agent hub with an explicit lifecycle.

``await start()`` opens everything (creating keys and the admin ticket on first start);
``await stop()`` closes agent sessions, stops the scheduler and closes the store, in that order,
so nothing writes to a closed store. ``run_coordinator`` serves it with uvicorn, whose own
SIGINT/SIGTERM handling stops accepting, lets in-flight requests finish, then returns here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fogmesh.clock import Clock, WallClock
from fogmesh.errors import ConfigError, ReplayError, TicketError
from fogmesh.fog.coordinator import FogCoordinator
from fogmesh.fog.tasks import Task
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.tickets import TicketIssuer, TicketVerifier
from fogmesh.server.artefacts import ArtefactStore
from fogmesh.server.auth import read_admin_ticket, write_admin_ticket
from fogmesh.server.config import ServerConfig
from fogmesh.server.metrics import Metrics
from fogmesh.server.seen import StoreSeenStore
from fogmesh.store import Store, open_store
from fogmesh.twin.elevation import GlobalKnowledgeStore

if TYPE_CHECKING:
    from fogmesh.edge.manager import EdgeManager

__all__ = ["RUNTIME_FILE", "CoordinatorService", "run_coordinator"]

log = logging.getLogger(__name__)

RUNTIME_FILE = "coordinator.json"


class CoordinatorService:
    def __init__(self, config: ServerConfig, *, clock: Clock | None = None) -> None:
        from fogmesh.server.agent_ws import AgentHub

        self.config = config
        self.clock: Clock = clock or WallClock()
        self.metrics = Metrics()
        self.hub = AgentHub(self)
        self._keys: CoordinatorKeys | None = None
        self._store: Store | None = None
        self._coordinator: FogCoordinator | None = None
        self._seen: StoreSeenStore | None = None
        self._verifier: TicketVerifier | None = None
        self._edge: EdgeManager | None = None
        self._started = False
        self.admin_ticket = ""
        self.knowledge = GlobalKnowledgeStore(k=config.knowledge_k)
        self.artefacts: ArtefactStore | None = None  # results over 1 MiB, set by start()
        self._models: Any = None  # edge.models.ModelRegistry, opened on the first model fetch

    # Accessors raise instead of returning None so route code stays simple and typed.
    @property
    def keys(self) -> CoordinatorKeys:
        assert self._keys is not None, "service not started"
        return self._keys

    @property
    def coordinator(self) -> FogCoordinator:
        assert self._coordinator is not None, "service not started"
        return self._coordinator

    @property
    def verifier(self) -> TicketVerifier:
        assert self._verifier is not None, "service not started"
        return self._verifier

    @property
    def seen(self) -> StoreSeenStore:
        assert self._seen is not None, "service not started"
        return self._seen

    @property
    def edge(self) -> EdgeManager:
        """Edge devices, models and deployments, sharing this service's coordinator."""
        assert self._edge is not None, "service not started"
        return self._edge

    def model_registry(self) -> Any:
        """The data directory's model registry (``fogmesh model add --data-dir``), opened on
        first use: most coordinators never serve a model. Blocking; call it in a thread."""
        if self._models is None:
            from fogmesh.edge.models import ModelRegistry

            self._models = ModelRegistry(Path(self.config.data_dir))
        return self._models

    @property
    def issuer(self) -> TicketIssuer:
        return self.keys.issuer(self.clock)

    async def start(self) -> None:
        if self._started:
            return
        data_dir = Path(self.config.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
        self._keys = await asyncio.to_thread(CoordinatorKeys.load_or_create, data_dir)
        self.artefacts = await asyncio.to_thread(ArtefactStore, data_dir / "artefacts")
        self._store = await open_store(self.config.db_url, data_dir)
        self._seen = StoreSeenStore(self._store, self.clock)
        saved = await self._store.get_value("global_knowledge")
        if isinstance(saved, dict):
            self.knowledge.load_state(saved)
        await self._seen.load()
        self._verifier = self._keys.verifier(self.clock, seen=self._seen)
        self._coordinator = FogCoordinator(
            store=self._store,
            config=self.config.coordinator,
            clock=self.clock,
            dispatcher=self.hub.dispatch,
            stopper=self.hub.stop_attempt,
        )
        await self._coordinator.start()
        from fogmesh.edge.manager import EdgeManager

        self._edge = EdgeManager(self._coordinator, data_dir=data_dir, clock=self.clock)
        await self._edge.start()
        self.admin_ticket = self._ensure_admin_ticket(data_dir)
        self._started = True

    def _ensure_admin_ticket(self, data_dir: Path) -> str:
        existing = read_admin_ticket(data_dir)
        if existing is not None:
            try:
                self.verifier.verify(existing, audience=self.keys.audience, scope="admin")
                return existing
            except (TicketError, ReplayError):
                log.info("admin ticket in %s no longer verifies; writing a new one", data_dir)
        ticket = self.issuer.issue(
            subject="admin",
            audience=self.keys.audience,
            scopes=("admin",),
            ttl=self.config.admin_ticket_ttl,
        )
        write_admin_ticket(data_dir, ticket)
        return ticket

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.hub.close_all()
        if self._edge is not None:
            await self._edge.close()
        if self._coordinator is not None:
            await self._coordinator.close()
        if self._store is not None:
            await self._store.close()

    def write_runtime(self, url: str) -> None:
        """Where this coordinator listens, for the CLI and tests (removed at shutdown)."""
        path = Path(self.config.data_dir) / RUNTIME_FILE
        path.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")

    def clear_runtime(self) -> None:
        (Path(self.config.data_dir) / RUNTIME_FILE).unlink(missing_ok=True)

    async def cancel_task(self, task_id: str, reason: str) -> Task:
        """Cancel a task and tell the device holding its lease (if connected) to stop it."""
        before = await self.coordinator.get_task(task_id)
        task = await self.coordinator.cancel_task(task_id, reason)
        self.hub.cancel(before)
        return task

    def status(self) -> dict[str, Any]:
        status = self.coordinator.get_system_status()
        status["agents_connected"] = len(self.hub.sessions)
        status["handshakes_waited"] = self.hub.setup.waited
        return status


async def run_coordinator(config: ServerConfig, *, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; the store is closed cleanly before returning."""
    import uvicorn

    from fogmesh.server._http import guarded_http_protocol
    from fogmesh.server.app import create_app

    class _Server(uvicorn.Server):
        # uvicorn re-raises a captured SIGTERM after serving, which would kill the process
        # before the store is closed; the signals are handled below instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # Bind before anything else so a taken port is one clear error, not uvicorn's SystemExit.
    try:
        sock = socket.create_server((config.host, config.port), reuse_port=False)
        # create_server leaves proto 0, so asyncio does not recognise the accepted sockets as
        # TCP and never sets TCP_NODELAY: each small response would then wait ~40 ms for the
        # client's delayed ACK (Nagle). Accepted sockets inherit the option from the listener.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", field="--port"
        ) from exc
    service = CoordinatorService(config)
    loop = asyncio.get_running_loop()
    try:
        await service.start()
        app = create_app(config, service=service)
        server = _Server(
            uvicorn.Config(
                app,
                log_level=log_level,
                lifespan="off",
                ws_max_size=1 << 17,
                ws_per_message_deflate=False,  # Noise ciphertext does not compress
                timeout_graceful_shutdown=10,
                http=guarded_http_protocol(
                    header_timeout=config.header_timeout, max_connections=config.max_connections
                ),
            )
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _request_exit, server)
        port = sock.getsockname()[1]
        url = config.public_url or f"http://{config.host}:{port}"
        service.write_runtime(url)
        print(f"fogmesh coordinator listening on {url}", flush=True)
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sock.close()
        service.clear_runtime()
        await service.stop()


def _request_exit(server: Any) -> None:
    if server.should_exit:
        server.force_exit = True  # a second signal: stop waiting for in-flight requests
    server.should_exit = True
