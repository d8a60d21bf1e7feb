"""The agent endpoint: a WebSocket whose binary messages are Noise XK frames.

Per connection: three handshake frames (the device proves its identity and presents a ticket in
message 3), then versioned messages (``fogmesh.wire``) both ways. Refusals before the channel is
up are WebSocket close codes with a short reason, because there is no key to encrypt an answer:

    4400 protocol error · 4401 handshake failed / no or bad ticket · 4403 ticket refused
    (wrong scope, subject, audience, already used) · 4408 too slow · 4409 replaced by a newer
    session of the same device

Dispatch is push: the FogCoordinator's ``dispatcher`` hook hands each new lease to ``dispatch``,
which queues an ``Assign`` on the device's live session. No session: nothing is sent, and the
lease times out and is placed again (the store is the truth, the push only a shortcut).

When a device's newest session ends (not when the coordinator itself shuts down, nor when a
newer session replaced it) the coordinator is told at once (``FogCoordinator.link_closed``): the
device takes no new work until it registers again. A report the store cannot take now is
answered ``result_ack`` with ``retry_after`` (code ``store_unavailable``): the agent keeps it and
sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from fogmesh.errors import (
    FogmeshError,
    HandshakeError,
    IllegalTransition,
    IntegrityError,
    ModelNotFound,
    ReplayError,
    StaleAttempt,
    StoreError,
    TicketError,
    TicketScopeError,
)
from fogmesh.fog.tasks import Task, TaskState
from fogmesh.logs import TaskLog
from fogmesh.mobile.policy import evaluate
from fogmesh.security.handshake import AuthenticatedDevice, accept_device_hello
from fogmesh.security.noise import NoiseResponder
from fogmesh.security.tickets import Ticket
from fogmesh.store import profile_from_dict
from fogmesh.wire.channel import PROLOGUE, SecureChannel
from fogmesh.wire.messages import (
    STORE_UNAVAILABLE,
    ArtefactChunk,
    Assign,
    Cancel,
    Enrolled,
    Goodbye,
    Heartbeat,
    HeartbeatAck,
    Message,
    ModelData,
    ModelFetch,
    ModelOffer,
    ModelUnavailable,
    ProtocolError,
    Refused,
    Register,
    ResultAck,
    ResultMsg,
    Started,
    Welcome,
)

from ._admission import SetupGate

if TYPE_CHECKING:
    from fogmesh.server.service import CoordinatorService

__all__ = ["PROLOGUE", "AgentHub"]

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT: Final = 10.0
_OUTBOX: Final = 10_000
_REPORTS_IN_FLIGHT: Final = 1024  # per session; beyond this the session stops reading
_SEND_BATCH: Final = 256  # messages taken from the outbox per send
# Asked of an agent whose report the store could not take (it backs off further on its own):
# long enough for a restarting database, short against any lease.
REPORT_RETRY_S: Final = 1.0


class _Closed(Exception):
    pass


@dataclass(eq=False)
class _Session:
    device_id: str
    channel: SecureChannel
    websocket: WebSocket
    outbox: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(_OUTBOX))
    # Reports being written (the store batches them into shared commits).
    reporting: set[asyncio.Task[None]] = field(default_factory=set)
    report_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(_REPORTS_IN_FLIGHT)
    )
    # Big-result uploads whose chunk the artefact store could not write (disk full): their
    # result is answered "could not store now", and the agent uploads again.
    artefacts_unwritten: set[tuple[str, int]] = field(default_factory=set)


async def _recv_frame(ws: WebSocket) -> bytes:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise _Closed
    data = message.get("bytes")
    if data is None:
        raise ProtocolError("the agent link carries binary frames only")
    return bytes(data)


class AgentHub:
    def __init__(self, service: CoordinatorService) -> None:
        self._service = service
        self.sessions: dict[str, _Session] = {}
        # Each device's newest session, from the moment its "register" arrived: only the end of
        # that one means the device's link is gone.
        self._newest: dict[str, _Session] = {}
        self._shutting_down = False  # sessions closed by our own shutdown lose no work
        self.setup = SetupGate(service.config.handshakes_at_once)
        self._link_log = TaskLog(log)  # a connect storm of thousands: lines at a bounded rate

    # -- dispatch (called from the scheduling round) ---------------------------------------
    def dispatch(self, task: Task) -> None:
        session = self.sessions.get(task.assigned_device or "")
        if session is None:
            return
        try:
            session.outbox.put_nowait(Assign(task=task))
            self._service.metrics.dispatched += 1
        except asyncio.QueueFull:
            log.warning("outbox of %s is full; %s waits for its lease to expire", *_ids(task))

    def stop_attempt(self, device_id: str, task_id: str, attempt: int, reason: str) -> None:
        """Tell a device to stop an attempt the coordinator took back (e.g. a battery eviction)."""
        session = self.sessions.get(device_id)
        if session is not None:
            with contextlib.suppress(asyncio.QueueFull):
                session.outbox.put_nowait(Cancel(task_id=task_id, attempt=attempt, reason=reason))

    def cancel(self, task: Task) -> None:
        """Tell the device holding ``task``'s lease (if any, if connected) to stop it."""
        if task.state not in (TaskState.SCHEDULED, TaskState.RUNNING):
            return
        session = self.sessions.get(task.assigned_device or "")
        if session is not None:
            with contextlib.suppress(asyncio.QueueFull):
                session.outbox.put_nowait(
                    Cancel(task_id=task.id, attempt=task.attempt, reason="cancelled")
                )

    def shutting_down(self) -> None:
        """The coordinator is stopping: the sessions that end from now on lose their devices
        no work (they will reconnect to the restarted coordinator holding it)."""
        self._shutting_down = True

    async def close_all(self) -> None:
        self.shutting_down()
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.websocket.close(1001, "coordinator shutting down")
        self.sessions.clear()

    # -- one connection ----------------------------------------------------------------------
    async def handle(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                device, channel, ticket = await self._handshake(ws)
        except _Closed:
            return
        except TimeoutError:
            await self._refuse(ws, 4408, "handshake_timeout", "handshake took too long")
            return
        except (TicketScopeError, ReplayError) as exc:
            await self._refuse(ws, 4403, exc.code, exc.reason)
            return
        except (TicketError, HandshakeError) as exc:
            await self._refuse(ws, 4401, exc.code, exc.reason)
            return
        except FogmeshError as exc:
            await self._refuse(ws, 4400, exc.code, exc.reason)
            return
        session = _Session(device.device_id, channel, ws)
        sender = asyncio.create_task(self._sender(session), name=f"agent-send-{device.device_id}")
        self._link_log.info(
            "connected", "agent %s connected", device.device_id, device_id=device.device_id
        )
        try:
            await self._serve(session, device, ticket)
        except (_Closed, WebSocketDisconnect):
            self._link_log.info(
                "disconnected",
                "agent %s disconnected",
                device.device_id,
                device_id=device.device_id,
            )
        except FogmeshError as exc:  # a broken frame or message ends the session, never the server
            log.info("agent %s session ended: %s", device.device_id, exc.reason)
            with contextlib.suppress(Exception):
                await ws.close(4400, _short(exc.reason))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            if self.sessions.get(device.device_id) is session:
                del self.sessions[device.device_id]
            if self._newest.get(device.device_id) is session:
                del self._newest[device.device_id]
                if not self._shutting_down:
                    await self._link_closed(device.device_id)

    async def _link_closed(self, device_id: str) -> None:
        try:
            await self._service.coordinator.link_closed(device_id)
        except FogmeshError as exc:  # e.g. the coordinator is closing
            log.info("link end of %s not noted: %s", device_id, exc.reason)

    async def _refuse(self, ws: WebSocket, code: int, error: str, reason: str) -> None:
        self._service.metrics.handshake_failures[error] += 1
        log.info("agent session refused: %s", reason)
        if ws.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await ws.close(code, _short(reason))

    async def _handshake(
        self, ws: WebSocket
    ) -> tuple[AuthenticatedDevice, SecureChannel, Ticket | None]:
        """The authenticated device, its channel, and its agent ticket (None when enrolling)."""
        svc = self._service
        responder = NoiseResponder(svc.keys.noise, PROLOGUE)
        first = await _recv_frame(ws)
        async with self.setup.handshake_step():
            responder.read_message(first)
            await ws.send_bytes(responder.write_message())
        third = await _recv_frame(ws)
        async with self.setup.handshake_step():
            return await self._authenticate(ws, responder, third)

    async def _authenticate(
        self, ws: WebSocket, responder: NoiseResponder, third: bytes
    ) -> tuple[AuthenticatedDevice, SecureChannel, Ticket | None]:
        """Message 3: the device's identity and ticket; an enrolment is answered here."""
        svc = self._service
        payload = responder.read_message(third)
        device = accept_device_hello(responder, payload)
        transport = responder.transport()
        channel = SecureChannel(transport, ws.send_bytes, lambda: _recv_frame(ws))
        if device.raw_ticket is None:
            raise TicketError("the device presented no ticket")
        audience = svc.keys.audience
        try:
            # Spent in this device's name: if our Enrolled reply is lost, the same device (same
            # identity key) may present its token again; another device may not.
            svc.verifier.verify(
                device.raw_ticket, audience=audience, scope="enrol", holder=device.device_id
            )
        except TicketScopeError:
            # Not an enrolment: an agent ticket, which must name this very device.
            ticket = svc.verifier.verify(
                device.raw_ticket, audience=audience, scope="agent", subject=device.device_id
            )
            return device, channel, ticket
        # Enrolment: make the spent one-shot id durable before handing out anything.
        await svc.seen.persist()
        issued, claims = svc.issuer.issue_with_claims(
            subject=device.device_id,
            audience=audience,
            scopes=("agent",),
            ttl=svc.config.agent_ticket_ttl,
        )
        svc.metrics.enrolments += 1
        log.info("device %s enrolled", device.device_id)
        await channel.send(
            Enrolled(device_id=device.device_id, ticket=issued, expires_at=claims.expires_at)
        )
        return device, channel, None

    async def _sender(self, session: _Session) -> None:
        outbox = session.outbox
        while True:
            batch = [await outbox.get()]
            # Whatever else is queued goes with it: a round's assignments to one device, the
            # acknowledgements of a batch of its reports (one frame, if the agent reads bundles).
            while not outbox.empty() and len(batch) < _SEND_BATCH:
                batch.append(outbox.get_nowait())
            await session.channel.send_many(batch)

    async def _serve(
        self, session: _Session, device: AuthenticatedDevice, ticket: Ticket | None
    ) -> None:
        svc = self._service
        coordinator = svc.coordinator
        first = await session.channel.recv()
        if not isinstance(first, Register):
            raise ProtocolError("the first message of a session must be 'register'")
        self._newest[device.device_id] = session
        with self.setup.registration():
            profile = _profile(first.profile, device.device_id)
            session.channel.bundling = first.bundles
            if coordinator.knows_device(device.device_id):
                await coordinator.update_node_state(device.device_id, profile)
            else:
                await coordinator.register_node(profile, labels=first.labels)
            old = self.sessions.get(device.device_id)
            self.sessions[device.device_id] = session
            await session.outbox.put(self._welcome(device.device_id, ticket))
        if old is not None:
            with contextlib.suppress(Exception):
                await old.websocket.close(4409, "replaced by a newer session")
        await self._resume(session, {(r.task_id, r.attempt) for r in first.holding})
        while True:
            message = await session.channel.recv()
            if isinstance(message, ModelFetch):
                job = asyncio.create_task(self._send_model(session, message.model_id))
                session.reporting.add(job)
                job.add_done_callback(session.reporting.discard)
                continue
            if isinstance(message, ArtefactChunk):
                # Inline, in order: a task's chunks are all written before its result is read.
                self._artefact_chunk(session, message)
                continue
            if isinstance(message, Started | ResultMsg | Refused):
                await session.report_slots.acquire()
                self._start_report(session, message)
                continue
            reply = await self._handle(session, message)
            if reply is not None:
                await session.outbox.put(reply)

    def _start_report(self, session: _Session, message: Started | ResultMsg | Refused) -> None:
        # Each report is handled in its own task so that reports from this and other devices
        # share store commits. Order is kept without waiting: tasks start in creation order
        # and each reaches the store's queue before its first suspension, and the store applies
        # its queue in order — a task's "started" is never written after its "result".
        job = asyncio.create_task(self._report_now(session, message))
        session.reporting.add(job)

        def done(finished: asyncio.Task[None]) -> None:
            session.report_slots.release()
            session.reporting.discard(finished)

        job.add_done_callback(done)

    async def _report_now(self, session: _Session, message: Started | ResultMsg | Refused) -> None:
        try:
            reply = await self._handle(session, message)
        except FogmeshError as exc:  # e.g. the store failed; the lease times out and is retried
            log.warning("report %s for %s not recorded: %s", type(message).__name__,
                        message.task_id, exc.reason)  # fmt: skip
            return
        if reply is not None:
            with contextlib.suppress(asyncio.QueueFull):
                session.outbox.put_nowait(reply)

    def _welcome(self, device_id: str, current: Ticket | None) -> Welcome:
        svc = self._service
        now = svc.clock.time()
        renewed: str | None = None
        expires: float | None = None
        if current is not None and "agent" in current.scopes:
            half_life = current.issued_at + (current.expires_at - current.issued_at) / 2
            if now >= half_life:
                renewed, claims = svc.issuer.issue_with_claims(
                    subject=device_id,
                    audience=svc.keys.audience,
                    scopes=("agent",),
                    ttl=svc.config.agent_ticket_ttl,
                )
                expires = claims.expires_at
        return Welcome(
            device_id=device_id,
            server_time=now,
            heartbeat_interval=svc.config.heartbeat_interval,
            ticket=renewed,
            ticket_expires_at=expires,
            bundles=True,
        )

    async def _resume(self, session: _Session, holding: set[tuple[str, int]]) -> None:
        """Re-send leases the agent never got; take back running ones it no longer holds."""
        coordinator = self._service.coordinator
        for task in coordinator.assignments(session.device_id):
            if (task.id, task.attempt) in holding:
                continue
            if task.state is TaskState.SCHEDULED:
                await session.outbox.put(Assign(task=task))
                self._service.metrics.dispatched += 1
                continue
            try:  # running here before the agent restarted: its work is gone, retry elsewhere
                await coordinator.report_lost(
                    task.id,
                    session.device_id,
                    task.attempt,
                    "the agent restarted without this task",
                )
            except FogmeshError as exc:
                log.info("could not take back %s: %s", task.id, exc.reason)

    async def _handle(self, session: _Session, message: Message) -> Message | None:
        svc = self._service
        coordinator = svc.coordinator
        device_id = session.device_id
        if isinstance(message, Heartbeat):
            record = await coordinator.update_node_state(
                device_id, _profile(message.profile, device_id)
            )
            return HeartbeatAck(seq=message.seq, status=record.status.value)
        if isinstance(message, Started):
            try:
                task = await coordinator.report_started(message.task_id, device_id, message.attempt)
            except (StaleAttempt, IllegalTransition) as exc:
                svc.metrics.stale_reports += 1
                return Cancel(task_id=message.task_id, attempt=message.attempt, reason=exc.reason)
            if task.started_at is not None and task.scheduled_at is not None:
                svc.metrics.dispatch_to_start.observe(task.started_at - task.scheduled_at)
            return None
        if isinstance(message, ResultMsg | Refused):
            return await self._report(session, message)
        if isinstance(message, Goodbye):
            await coordinator.mark_offline(device_id, message.reason or "agent stopped")
            raise _Closed

        raise ProtocolError(f"unexpected message {type(message).__name__} from an agent")

    async def _send_model(self, session: _Session, model_id: str) -> None:
        """Stream a registered model to the device: the variant that fits it now, in chunks
        its policy and the link allow (``edge.transfer``); the agent verifies the SHA-256."""
        from fogmesh.edge.transfer import Link, ModelSender, chunk_size_for
        from fogmesh.edge.variants import choose_variant

        svc = self._service
        try:
            registry = await asyncio.to_thread(svc.model_registry)
            variants = await asyncio.to_thread(registry.variants, model_id)
            if not variants:
                raise ModelNotFound(f"the coordinator has no model {model_id!r}")
            record = await svc.coordinator.get_device(session.device_id)
            profile = record.device_profile()
            optimization = evaluate(profile, svc.coordinator.config.policy)
            choice = choose_variant(
                {v: i.size_bytes for v, i in variants.items()}, profile, optimization
            )
            if choice.variant is None:
                raise ModelNotFound(f"no variant of {model_id!r} fits: {choice.text}")
            sender = ModelSender(
                registry, variants[choice.variant], chunk_size_for(optimization, Link.INTERNET)
            )
        except FogmeshError as exc:
            with contextlib.suppress(asyncio.QueueFull):
                session.outbox.put_nowait(ModelUnavailable(model_id=model_id, reason=exc.reason))
            return
        offer = sender.offer
        svc.metrics.model_transfers += 1
        try:
            fields = msgspec.structs.asdict(offer)
            await session.channel.send(ModelOffer(**{**fields, "variant": offer.variant.value}))
            for chunk in sender.chunks():  # the wire message has the chunk's very fields
                await session.channel.send(ModelData(**msgspec.structs.asdict(chunk)))
        except (FogmeshError, OSError, WebSocketDisconnect) as exc:
            log.info("model %s to %s cut off: %s", model_id, session.device_id, exc)

    def _artefact_chunk(self, session: _Session, m: ArtefactChunk) -> None:
        """Store one chunk of a big result, if this device holds that lease (else drop it)."""
        store = self._service.artefacts
        held = any(
            t.id == m.task_id and t.attempt == m.attempt
            for t in self._service.coordinator.assignments(session.device_id)
        )
        if store is None or not held:
            log.info("artefact chunk for %s/%s not taken: no such lease on %s",
                     m.task_id, m.attempt, session.device_id)  # fmt: skip
            return
        key = (m.task_id, m.attempt)
        if m.offset == 0:
            session.artefacts_unwritten.discard(key)  # an upload starting over
        elif key in session.artefacts_unwritten:
            return
        try:
            store.append(m.task_id, m.attempt, m.offset, m.total, m.data)
        except StoreError as exc:  # the disk, not the upload: the agent will upload it again
            log.warning("artefact chunk for %s not written: %s", m.task_id, exc.reason)
            session.artefacts_unwritten.add(key)
            store.discard(m.task_id, m.attempt)
        except FogmeshError as exc:  # the result's check will then fail and the task is retried
            log.info("artefact chunk for %s refused: %s", m.task_id, exc.reason)
            store.discard(m.task_id, m.attempt)

    async def _apply_result(self, session: _Session, m: ResultMsg) -> Task | None:
        coordinator = self._service.coordinator
        device_id = session.device_id
        if m.status == "completed" and m.artefact is not None:
            store = self._service.artefacts
            if (m.task_id, m.attempt) in session.artefacts_unwritten:
                raise StoreError(f"the artefact of {m.task_id} could not be written")
            try:
                if store is None:
                    raise IntegrityError("this coordinator keeps no artefacts")
                await asyncio.to_thread(
                    store.finish, m.task_id, m.attempt, m.artefact.sha256, m.artefact.size
                )
            except FogmeshError as exc:
                # Lost or damaged on the way: the work is worth another try.
                failed: Task = await coordinator.report_failure(
                    m.task_id,
                    device_id,
                    m.attempt,
                    {"code": "artefact_incomplete", "reason": exc.reason},
                    retry=True,
                )
                return failed
            reference = {
                "artefact": {
                    "sha256": m.artefact.sha256,
                    "bytes": m.artefact.size,
                    "url": f"/v1/tasks/{m.task_id}/artefact",
                }
            }
            done: Task = await coordinator.report_result(
                m.task_id, device_id, m.attempt, reference, wall_s=m.wall_s
            )
            return done
        return await _apply_result(coordinator, device_id, m)

    async def _report(self, session: _Session, message: ResultMsg | Refused) -> ResultAck:
        svc = self._service
        coordinator = svc.coordinator
        device_id = session.device_id
        task_id, attempt = message.task_id, message.attempt
        try:
            if isinstance(message, Refused):
                await coordinator.report_refused(
                    task_id, device_id, attempt, message.reason, code=message.code
                )
            else:
                task = await self._apply_result(session, message)
                if task is not None and task.finished_at is not None:
                    svc.metrics.submit_to_finish.observe(task.finished_at - task.created_at)
                    if task.started_at == task.finished_at and task.scheduled_at is not None:
                        # The agent left out "started": the result marked it (store.complete).
                        svc.metrics.dispatch_to_start.observe(task.started_at - task.scheduled_at)
        except StoreError as exc:  # not refused, just not written now: the agent sends it again
            svc.metrics.reports_deferred += 1
            log.warning("report for %s not stored, the agent will send it again: %s",
                        task_id, exc.reason)  # fmt: skip
            return ResultAck(
                task_id=task_id,
                attempt=attempt,
                accepted=False,
                code=STORE_UNAVAILABLE,
                reason=exc.reason,
                retry_after=REPORT_RETRY_S,
            )
        except (StaleAttempt, IllegalTransition) as exc:
            self._count_report(message)
            svc.metrics.stale_reports += 1
            return ResultAck(
                task_id=task_id, attempt=attempt, accepted=False, code=exc.code, reason=exc.reason
            )
        except FogmeshError as exc:  # e.g. an unknown task id, a result too large to store
            self._count_report(message)
            return ResultAck(
                task_id=task_id, attempt=attempt, accepted=False, code=exc.code, reason=exc.reason
            )
        self._count_report(message)
        return ResultAck(task_id=task_id, attempt=attempt, accepted=True)

    def _count_report(self, message: ResultMsg | Refused) -> None:
        # Once per report answered for good: one the store could not take is sent again.
        metrics = self._service.metrics
        if isinstance(message, Refused):
            metrics.refusals += 1
        else:
            metrics.results[message.status] += 1
            metrics.run_wall.observe(message.wall_s)


async def _apply_result(coordinator: Any, device_id: str, m: ResultMsg) -> Task | None:
    if m.status == "completed":
        result: Task = await coordinator.report_result(
            m.task_id, device_id, m.attempt, m.result, wall_s=m.wall_s
        )
        return result
    error = m.error or {"code": m.status, "reason": f"attempt ended: {m.status}"}
    if m.status == "cancelled":
        return None  # the coordinator cancelled it; nothing left to record
    if m.status == "refused":
        reason = str(error.get("reason", "refused by the device"))
        refused: Task = await coordinator.report_refused(
            m.task_id, device_id, m.attempt, reason, code=str(error.get("code", ""))
        )
        return refused
    # A task that raised fails for good (running it again gives the same error); a timeout or a
    # killed worker may be the device's fault, so another device gets a try.
    retry = m.status in ("timeout", "killed")
    failed: Task = await coordinator.report_failure(
        m.task_id, device_id, m.attempt, {"code": m.status, **error}, retry=retry
    )
    return failed


def _profile(data: dict[str, Any], device_id: str) -> Any:
    # The device id is the authenticated one, never what the profile claims.
    try:
        return profile_from_dict({**data, "device_id": device_id})
    except StoreError as exc:
        raise ProtocolError(f"device profile unreadable: {exc.reason}") from exc


def _short(reason: str) -> str:
    # A close frame's reason is at most 123 bytes of UTF-8; cut on a character boundary.
    return reason.encode("utf-8")[:120].decode("utf-8", errors="ignore")


def _ids(task: Task) -> tuple[str | None, str]:
    return task.assigned_device, task.id
