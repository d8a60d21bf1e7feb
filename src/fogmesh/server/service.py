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
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fogmesh.clock import Clock, WallClock
from fogmesh.errors import (
    ConfigError,
    FogmeshError,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    ReplayError,
    TicketError,
)
from fogmesh.fog.coordinator import FogCoordinator
from fogmesh.fog.tasks import Task
from fogmesh.security.keyfile import write_private_file
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.selfsigned import CoordinatorCertificate, load_or_create_certificate
from fogmesh.security.tickets import DEFAULT_SKEW, Ticket, TicketIssuer, TicketVerifier
from fogmesh.security.tls import is_loopback, is_wildcard
from fogmesh.security.token_journal import (
    IssuedToken,
    read_journal,
    record_issued,
    record_revoked,
)
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
        self.certificate: CoordinatorCertificate | None = None  # set by start() when HTTPS
        self.listening_url: str | None = None  # set once the socket is bound (write_runtime)
        self._admin_renewal: asyncio.Task[None] | None = None

    @property
    def pinned_fingerprint(self) -> bytes | None:
        """The certificate fingerprint join tokens carry: the self-signed certificate's. A
        certificate the operator gave is verified by its CA instead, so it survives renewal."""
        cert = self.certificate
        return cert.fingerprint if cert is not None and cert.self_signed else None

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
        try:
            await self._start()
        except BaseException:
            # Whatever was opened before the failure is closed, so nothing (a store's file
            # lock, a scheduler loop) outlives a start that did not happen.
            await self._close_opened()
            raise
        self._started = True

    async def _start(self) -> None:
        self._store = self._coordinator = self._edge = None
        self._admin_renewal = None
        data_dir = Path(self.config.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
        self._keys = await asyncio.to_thread(CoordinatorKeys.load_or_create, data_dir)
        # Read before anything is opened: an admin ticket others can read is refused (as a key
        # file would be), and the refusal must not leave a store or scheduler half-started.
        saved_admin = await asyncio.to_thread(read_admin_ticket, data_dir)
        if self.config.uses_tls:
            self.certificate = await asyncio.to_thread(
                load_or_create_certificate,
                data_dir,
                host=self.config.host,
                names=(*self.config.tls_names, *_url_host(self.config.public_url)),
                cert=self.config.tls_cert,
                key=self.config.tls_key,
            )
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
        self.admin_ticket = self._ensure_admin_ticket(data_dir, saved_admin)
        self._admin_renewal = asyncio.create_task(self._renew_admin_ticket(data_dir))

    async def _renew_admin_ticket(self, data_dir: Path) -> None:
        """Keep ``admin.ticket`` valid while the coordinator runs longer than its 30 days."""
        while True:
            await asyncio.sleep(self.config.admin_ticket_check_interval)
            try:
                saved = await asyncio.to_thread(read_admin_ticket, data_dir)
                self.admin_ticket = await asyncio.to_thread(
                    self._ensure_admin_ticket, data_dir, saved
                )
            except FogmeshError as exc:  # e.g. someone made the file readable to others
                log.error("cannot renew the admin ticket: %s", exc.reason)

    def _ensure_admin_ticket(self, data_dir: Path, existing: str | None) -> str:
        if existing is not None:
            try:
                held = self.verifier.verify(existing, audience=self.keys.audience, scope="admin")
            except (TicketError, ReplayError):
                log.info("admin ticket in %s no longer verifies; writing a new one", data_dir)
            else:
                left = held.expires_at - self.clock.time()
                if left > min(
                    self.config.admin_ticket_renew_before, self.config.admin_ticket_ttl / 2
                ):
                    return existing
                log.info("admin ticket in %s expires in %.0f s; writing a new one", data_dir, left)
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
        await self._close_opened()

    async def _close_opened(self) -> None:
        if self._admin_renewal is not None:
            self._admin_renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._admin_renewal
        closers = [self.hub.close_all]
        closers += [part.close for part in (self._edge, self._coordinator, self._store) if part]
        for close in closers:  # each in turn: one failing must not leave the rest open
            try:
                await close()
            except Exception:
                log.exception("closing the coordinator service")

    def write_runtime(self, url: str, *, port: int | None = None) -> None:
        """Where this coordinator listens and the certificate it serves, for the CLI and tests
        (removed at shutdown): the URL it advertises and its bind address, which `fogmesh token
        create` checks URLs against. Written 0600: whoever could rewrite it could point the CLI,
        and its admin ticket, at another server."""
        self.listening_url = url
        path = Path(self.config.data_dir) / RUNTIME_FILE
        info: dict[str, Any] = {"url": url, "pid": os.getpid(), "host": self.config.host}
        info["port"] = self.config.port if port is None else port
        if self.certificate is not None:
            info["fingerprint"] = self.certificate.fingerprint_text
            info["self_signed"] = self.certificate.self_signed
        write_private_file(path, json.dumps(info).encode("utf-8"))

    def join_url(self) -> str:
        """The URL a join token carries when its creator names none: ``--url``, else where
        this coordinator listens (its real port, not 0). A coordinator on every interface
        without ``--url`` cannot tell which of its addresses devices dial: InvalidRequest."""
        if self.config.public_url:
            return self.config.public_url
        url = self.listening_url or self.config.url
        host = urlsplit(url).hostname or ""
        if is_wildcard(host):
            raise InvalidRequest(
                "this coordinator listens on every interface: give the url devices dial "
                "(e.g. https://192.168.1.20:8700), or start it with --url",
                field="url",
            )
        return url

    def clear_runtime(self) -> None:
        (Path(self.config.data_dir) / RUNTIME_FILE).unlink(missing_ok=True)

    async def cancel_task(self, task_id: str, reason: str) -> Task:
        """Cancel a task and tell the device holding its lease (if connected) to stop it."""
        before = await self.coordinator.get_task(task_id)
        task = await self.coordinator.cancel_task(task_id, reason)
        self.hub.cancel(before)
        return task

    # -- join tokens (fogmesh.security.token_journal) -------------------------------------
    def record_token(self, ticket: Ticket, url: str) -> None:
        """Note an issued join token in the data directory's journal (blocking)."""
        record_issued(
            Path(self.config.data_dir),
            token_id=ticket.ticket_id,
            created_at=ticket.issued_at,
            expires_at=ticket.expires_at,
            scopes=ticket.scopes,
            url=url,
        )

    def _token_json(self, token: IssuedToken, now: float) -> dict[str, Any]:
        if token.revoked_at is not None:
            state = "revoked"
        elif self.seen.is_spent(token.id):
            state = "used"
        elif now > token.expires_at:
            state = "expired"
        else:
            state = "unused"
        return {
            "id": token.id,
            "state": state,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "revoked_at": token.revoked_at,
            "scopes": list(token.scopes),
            "url": token.url,
        }

    async def list_tokens(self, *, include_expired: bool = False) -> list[dict[str, Any]]:
        """Join tokens issued with this coordinator's keys, oldest first; expired ones (and
        ones whose use is no longer remembered) only with ``include_expired``."""
        tokens = await asyncio.to_thread(read_journal, Path(self.config.data_dir))
        now = self.clock.time()
        listed = [self._token_json(t, now) for t in tokens]
        if include_expired:
            return listed
        return [t for t in listed if now <= t["expires_at"] + DEFAULT_SKEW]

    async def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Make an unused join token unusable: its id is spent durably (enrolment refuses it,
        across restarts too) and the revocation is journalled. Revoking a revoked or expired
        token changes nothing; a used one cannot be revoked (remove its device instead)."""
        data_dir = Path(self.config.data_dir)
        tokens = {t.id: t for t in await asyncio.to_thread(read_journal, data_dir)}
        token = tokens.get(token_id)
        if token is None:
            raise NotFound(f"no join token {token_id!r} was issued here", token_id=token_id)
        now = self.clock.time()
        current = self._token_json(token, now)
        if current["state"] in ("revoked", "expired"):
            return current
        if current["state"] == "used" or not self.seen.remember(
            token_id, token.expires_at + DEFAULT_SKEW
        ):
            raise IllegalTransition(
                f"join token {token_id} was already used to enrol a device; "
                "remove that device with `fogmesh device rm` instead",
                token_id=token_id,
            )
        await self.seen.persist()
        await asyncio.to_thread(record_revoked, data_dir, token_id, now)
        log.info("join token %s revoked", token_id)
        return self._token_json(replace(token, revoked_at=now), now)

    def status(self) -> dict[str, Any]:
        status = self.coordinator.get_system_status()
        status["agents_connected"] = len(self.hub.sessions)
        status["handshakes_waited"] = self.hub.setup.waited
        return status


def _url_host(url: str | None) -> tuple[str, ...]:
    host = urlsplit(url).hostname if url else None
    return (host,) if host else ()


def _warn_plain_http(config: ServerConfig) -> None:
    if config.uses_tls or is_loopback(config.host):
        return
    message = (
        f"WARNING: serving plain HTTP on {config.host} (--insecure-http): tickets, including "
        "the admin ticket, cross the network in clear and anyone on it can read and reuse them"
    )
    log.warning(message)
    print(message, file=sys.stderr, flush=True)


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
        _warn_plain_http(config)
        app = create_app(config, service=service)
        cert = service.certificate
        server = _Server(
            uvicorn.Config(
                app,
                ssl_certfile=str(cert.cert_path) if cert else None,
                ssl_keyfile=str(cert.key_path) if cert else None,
                # uvicorn's lines go through our handlers (fogmesh.logs), in our format.
                log_config=None,
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
            loop.add_signal_handler(sig, _request_exit, server, service)
        port = sock.getsockname()[1]
        scheme = "https" if cert else "http"
        url = config.public_url or f"{scheme}://{config.host}:{port}"
        service.write_runtime(url, port=port)
        print(f"fogmesh coordinator listening on {url}", flush=True)
        if cert is not None:
            kind = "self-signed" if cert.self_signed else "given"
            print(f"TLS certificate ({kind}) fingerprint {cert.fingerprint_text}", flush=True)
            if cert.self_signed:
                hint = (
                    f"  join tokens carry it; remote clients: --fingerprint {cert.fingerprint_text}"
                )
                print(hint, flush=True)
        log.info("listening on %s (data in %s)", url, config.data_dir)
        service.coordinator.devices_can_connect()
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sock.close()
        service.clear_runtime()
        await service.stop()


def _request_exit(server: Any, service: CoordinatorService) -> None:
    # uvicorn closes the agent sessions before the service stops: not the devices' doing.
    service.hub.shutting_down()
    if server.should_exit:
        server.force_exit = True  # a second signal: stop waiting for in-flight requests
    server.should_exit = True
