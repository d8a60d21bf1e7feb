"""``AgentDaemon``: keeps a device connected to its coordinator and runs what it is assigned.

* Enrols once with a join token (the coordinator answers with an agent ticket, saved 0600), then
  reconnects with the saved identity. Reconnects with capped exponential backoff and full jitter
  (so a fleet does not reconnect in lockstep after a coordinator restart).
* Heartbeats its live profile every ``heartbeat`` seconds, twice as far apart in power-save or
  critical mode (never more than twice the coordinator's interval, inside its lost window).
* On ``Assign`` it evaluates its own policy on a fresh reading and refuses work the policy
  forbids (telling the coordinator why); otherwise it runs the task under limits computed from
  the task and the policy, and reports the outcome with the lease's attempt number.
* Tasks keep running when the link drops; outcomes wait in an outbox until the coordinator
  acknowledges them (a fenced-off attempt is acknowledged as refused, and dropped too). One the
  coordinator could not store now (``result_ack.retry_after``) stays and is sent again, with
  backoff, on this session or the next.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from fogmesh.agent.link import AgentCredentials, Link, LinkRefused, open_link
from fogmesh.agent.runner import PREFETCH, PREFETCH_MAX_S, RunLimits, RunOutcome
from fogmesh.clock import Clock, WallClock
from fogmesh.devices.model import Accepts, DeviceProfile
from fogmesh.devices.sensors import SensorSource, sensor_source_from_env
from fogmesh.errors import FogmeshError, ModelNotFound, TransportError
from fogmesh.fog.tasks import ModelPayload, Task, payload_refusal
from fogmesh.logs import TaskLog
from fogmesh.mobile.modes import PowerMode
from fogmesh.mobile.policy import ResourceOptimization
from fogmesh.mobile.resource_manager import MobileResourceManager
from fogmesh.wire.messages import (
    ArtefactChunk,
    ArtefactRef,
    Assign,
    Cancel,
    Enrolled,
    ErrorMsg,
    Goodbye,
    Heartbeat,
    HeartbeatAck,
    Message,
    ModelData,
    ModelFetch,
    ModelOffer,
    ModelUnavailable,
    Refused,
    Register,
    ResultAck,
    ResultMsg,
    RunningRef,
    Started,
    Welcome,
)

__all__ = ["AgentConfig", "AgentDaemon", "Runner", "compute_limits"]

log = logging.getLogger(__name__)

ARTEFACT_CHUNK = 256 << 10  # bytes of a big result per message (a few Noise frames each)
_SEND_BATCH = 256  # messages the sender takes from its queue at once
_START_HOLD_S = 0.005  # how long a lone "started" notice waits for its result
# While tasks are running, a frame follows the previous one by at least this much: results of
# tiny tasks then travel a few to a frame, and the coordinator wakes, decrypts and commits once
# for them all. A lone result (nothing else running, or none sent lately) goes at once.
_SEND_LINGER_S = 0.002

Key = tuple[str, int]  # (task id, attempt): one lease


class Runner(Protocol):
    """What the daemon needs from ``fogmesh.agent.runner.TaskRunner``."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def run(
        self,
        task: Task,
        limits: RunLimits,
        *,
        on_start: Callable[[], None] | None = None,
        running_cap: int | None = None,
    ) -> RunOutcome: ...
    async def cancel(self, task_id: str) -> bool: ...
    def capabilities(self) -> dict[str, Any]: ...
    def accepts(self) -> Accepts | None:
        """The payloads it runs (advertised in every profile); None: does not say."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    data_dir: Path
    join_token: str | None = None
    heartbeat: float = 30.0  # the seed's period
    labels: dict[str, str] = field(default_factory=dict)
    timeout_multiplier: float = 3.0  # wall limit = estimated duration × this
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stop_grace: float = 10.0  # on stop: how long running tasks may finish and be reported
    agent_version: str = ""
    # How old a sensor reading may be when deciding whether to take a task: a burst of tiny
    # tasks then costs one reading, not one each. Batteries and temperatures do not move
    # meaningfully in a quarter of a second.
    reading_max_age: float = 0.25
    # Short tasks the coordinator may lease beyond the policy's concurrent-task limit, per slot;
    # they wait here and start as slots free up (the scheduler's NodeView.queue_cap).
    queued_per_slot: int = 64  # the most the coordinator may queue here; it decides how many
    # While this device's recent tasks have run in at most this long (a moving average), a
    # short queued task may be handed to a busy worker to start the moment the task ahead of it
    # ends (runner.PREFETCH). It then starts without a policy check of its own, so this stays
    # well below reading_max_age, the staleness already allowed. 0 turns it off.
    prefetch_below_s: float = 0.05
    model_fetch_timeout: float = 300.0  # a model the agent lacks must arrive within this


def model_dir(data_dir: Path) -> Path:
    """Where an agent keeps the models it fetched (the runner resolves ``model`` tasks here)."""
    return Path(data_dir) / "agent" / "models"


def model_resolver(data_dir: Path) -> Callable[[str], Path | None]:
    """A ``RunnerConfig.model_resolver`` over ``model_dir``; the cache is opened on first use,
    so an agent that never runs a model never imports the edge package."""
    cache: list[Any] = []

    def resolve(model_id: str) -> Path | None:
        if not cache:
            from fogmesh.edge.cache import ModelCache

            cache.append(ModelCache(model_dir(data_dir)))
        found: Path | None = cache[0].resolve(model_id)
        return found

    return resolve


def without_overtaken_starts(batch: list[Message]) -> list[Message]:
    """``batch`` less each ``started`` whose lease's result goes in the same frame: the result
    says the task ran (the coordinator records it as started then), so a tiny task costs the
    link and the coordinator one report instead of two."""
    ended = {(m.task_id, m.attempt) for m in batch if isinstance(m, ResultMsg)}
    if not ended:
        return batch
    return [m for m in batch if not (isinstance(m, Started) and (m.task_id, m.attempt) in ended)]


def compute_limits(
    task: Task, optimization: ResourceOptimization, device_cores: int | None, multiplier: float
) -> RunLimits:
    """Task's request capped by the policy: cores × CPU %, the policy's memory cap, a wall limit;
    the same cores × CPU % as the budget all running tasks share."""
    cores = task.resources.cpu_cores
    budget: float | None = None
    if device_cores:
        budget = max(device_cores * optimization.cpu_limit_percent / 100.0, 0.01)
        cores = min(cores, budget)
    memory: int | None = task.resources.memory_mb
    if optimization.memory_limit_mb is not None:
        memory = min(task.resources.memory_mb, optimization.memory_limit_mb)
    return RunLimits(
        cpu_cores=max(cores, 0.01),
        device_cpu_cores=budget,
        memory_mb=memory,
        timeout_s=task.resources.estimated_duration * multiplier,
    )


class AgentDaemon:
    def __init__(
        self,
        config: AgentConfig,
        runner: Runner,
        *,
        sensors: SensorSource | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.runner = runner
        self.sensors: SensorSource = sensors or sensor_source_from_env()
        self.manager = MobileResourceManager(sensors=self.sensors)
        self.clock: Clock = clock or WallClock()
        self._rng = rng or random.Random()
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._outbox: dict[Key, ResultMsg | Refused] = {}
        # Reports the coordinator could not store yet: how often, and the timer sending again.
        self._report_retries: dict[Key, int] = {}
        self._resends: dict[Key, asyncio.Task[None]] = {}
        self._link: Link | None = None
        self._outgoing: asyncio.Queue[Message] | None = None  # the session's sender's queue
        self._optimization: ResourceOptimization | None = None
        self._reading: tuple[float, DeviceProfile, ResourceOptimization] | None = None
        self._artefacts: dict[tuple[str, int], bytes] = {}  # big results until acknowledged
        self._model_cache: Any = None  # edge.cache.ModelCache, opened by the first model task
        self._fetches: dict[str, asyncio.Future[Path]] = {}  # model id → its transfer's end
        self._receivers: dict[str, Any] = {}  # transfer id → edge.transfer.ModelReceiver
        self._executing = 0  # tasks holding a slot (the rest of _running wait for one)
        self._executing_long = 0  # … of which not short enough to wait in a worker's queue
        self._ran_s: float | None = None  # moving average of completed tasks' run time
        # Tasks waiting for a slot, in arrival order (_wake_slot_waiters), and how many of them
        # were woken for a slot they have not taken yet.
        self._slot_waiters: collections.deque[tuple[bool, asyncio.Future[None]]] = (
            collections.deque()
        )
        self._promised = 0
        self._server_interval = config.heartbeat
        self._seq = 0
        self.connected = asyncio.Event()
        self._stopping = False
        self._all_acked = asyncio.Event()
        self.sessions = 0  # sessions that reached Welcome
        self.disconnects = 0  # of those, how many have ended
        self.creds: AgentCredentials | None = None
        self._task_log = TaskLog(log)  # started/completed lines (fogmesh.logs: rate-bounded)
        self._trouble_log = TaskLog(log)  # refused/failed lines, with a budget of their own
        self._link_lost_at: float | None = None  # when the last session ended (for "reconnected")
        self._accepts: Accepts | None = None  # the runner's, read once at start

    @property
    def device_id(self) -> str:
        return self.creds.device_id if self.creds else ""

    def _credentials(self) -> AgentCredentials:
        if self.config.join_token:
            return AgentCredentials.from_join_token(self.config.data_dir, self.config.join_token)
        return AgentCredentials.load(self.config.data_dir)

    # -- the outer loop ----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Stay connected until ``stop`` is set; ``LinkRefused`` (bad key or ticket) ends it."""
        stop = stop or asyncio.Event()
        self.creds = await asyncio.to_thread(self._credentials)
        # A runner from before ``accepts`` (an embedder's, --runner) advertises nothing.
        advertise = getattr(self.runner, "accepts", None)
        self._accepts = advertise() if callable(advertise) else None
        await self.runner.start()
        delay = self.config.backoff_initial
        try:
            while not stop.is_set():
                before = self.sessions
                session = asyncio.create_task(self._session())
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({session, stopper}, return_when="FIRST_COMPLETED")
                stopper.cancel()
                if session not in done:
                    await self._drain(session)
                    session.cancel()
                    with contextlib.suppress(asyncio.CancelledError, FogmeshError, OSError):
                        await session
                    break
                try:
                    session.result()
                except LinkRefused:
                    raise
                except (FogmeshError, OSError) as exc:
                    log.warning("link down: %s", getattr(exc, "reason", exc))
                if self.sessions > before:
                    delay = self.config.backoff_initial  # it was up: start the backoff afresh
                # Full jitter: wait a random time in [0, cap], then double the cap.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._rng.uniform(0, delay)):
                        await stop.wait()
                delay = min(delay * 2, self.config.backoff_max)
        finally:
            await self._finish()

    async def _drain(self, session: asyncio.Task[None]) -> None:
        """Take no new work; give running tasks ``stop_grace`` seconds to finish and be
        acknowledged, so a clean stop does not leave leases to time out."""
        self._stopping = True
        with contextlib.suppress(TimeoutError, FogmeshError, OSError):
            async with asyncio.timeout(self.config.stop_grace):
                if self._running:
                    await asyncio.wait(list(self._running.values()))
                if self._outbox and self._link is not None and not session.done():
                    self._all_acked.clear()
                    await self._all_acked.wait()
                link = self._link
                if link is not None and not session.done():
                    await link.channel.send(Goodbye(reason="agent stopped"))

    async def _finish(self) -> None:
        for resend in list(self._resends.values()):
            resend.cancel()
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.runner.close()

    # -- one session -------------------------------------------------------------------------
    async def _session(self) -> None:
        assert self.creds is not None
        creds = self.creds
        link = await open_link(creds)
        heart: asyncio.Task[None] | None = None
        sender: asyncio.Task[None] | None = None
        try:
            if not creds.enrolled:
                first = await link.channel.recv()
                if not isinstance(first, Enrolled) or first.device_id != creds.device_id:
                    raise LinkRefused("coordinator did not answer the enrolment")
                await asyncio.to_thread(creds.save_enrolment, first.ticket)
                log.info("enrolled as %s", creds.device_id)
            profile, _ = await self._read()
            holding = [RunningRef(*k) for k in (*self._running, *self._outbox)]
            await link.channel.send(
                Register(
                    profile=profile.to_dict(),
                    labels=dict(self.config.labels),
                    capabilities=self.runner.capabilities(),
                    holding=holding,
                    agent_version=self.config.agent_version,
                    bundles=True,
                )
            )
            welcome = await link.channel.recv()
            if not isinstance(welcome, Welcome):
                raise TransportError("coordinator did not welcome the session")
            if welcome.ticket:
                await asyncio.to_thread(creds.save_enrolment, welcome.ticket)
            self._server_interval = welcome.heartbeat_interval
            link.channel.bundling = welcome.bundles
            outgoing: asyncio.Queue[Message] = asyncio.Queue()
            sender = asyncio.create_task(self._sender(link, outgoing))
            self._outgoing = outgoing
            self._link = link
            self.sessions += 1
            self.connected.set()
            if self._link_lost_at is None:
                log.info("connected to %s as %s", creds.coordinator_url, creds.device_id)
            else:
                log.info(
                    "reconnected to %s after %.1f s",
                    creds.coordinator_url,
                    self.clock.time() - self._link_lost_at,
                )
            for message in list(self._outbox.values()):
                if isinstance(message, ResultMsg):
                    await self._send_result(message)
                else:
                    await link.channel.send(message)
            heart = asyncio.create_task(self._heartbeats(link))
            while True:
                await self._on_message(await link.channel.recv())
        finally:
            if self._link is link:
                self.disconnects += 1
                self._link_lost_at = self.clock.time()
            self._link = None
            self._outgoing = None
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            self.connected.clear()
            for receiver in self._receivers.values():
                receiver.abort()
            self._receivers.clear()
            for model_id in list(self._fetches):
                self._end_fetch(model_id, TransportError("the link dropped during the transfer"))
            if heart is not None:
                heart.cancel()
                with contextlib.suppress(asyncio.CancelledError, FogmeshError, OSError):
                    await heart
            with contextlib.suppress(Exception):
                await link.close()

    async def _read(self) -> tuple[DeviceProfile, ResourceOptimization]:
        profile = await asyncio.to_thread(self.sensors.read)
        profile = profile.replace(
            device_id=self.device_id, timestamp=self.clock.time(), accepts=self._accepts
        )
        optimization = await self.manager.optimize_for_device(profile)
        self._optimization = optimization
        self._reading = (self.clock.time(), profile, optimization)
        self._wake_slot_waiters()  # the policy may now admit more at once
        return profile, optimization

    async def _recent_read(self) -> tuple[DeviceProfile, ResourceOptimization]:
        """The last reading if it is at most ``reading_max_age`` old, else a new one."""
        last = self._reading
        if last is not None and self.clock.time() - last[0] <= self.config.reading_max_age:
            return last[1], last[2]
        return await self._read()

    def heartbeat_interval(self) -> float:
        base = self.config.heartbeat
        mode = self._optimization.power_mode if self._optimization else None
        if mode in (PowerMode.POWER_SAVE, PowerMode.CRITICAL):
            return min(base * 2, max(base, self._server_interval * 2))
        return base

    async def _heartbeats(self, link: Link) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval())
            profile, _ = await self._read()
            self._seq += 1
            await link.channel.send(
                Heartbeat(
                    seq=self._seq,
                    profile=profile.to_dict(),
                    running=[RunningRef(*k) for k in self._running],
                )
            )

    async def _send(self, message: Message) -> None:
        outgoing = self._outgoing
        if self._link is None or outgoing is None:
            return  # kept in the outbox (results) or dropped (a started notice is only a hint)
        outgoing.put_nowait(message)

    async def _sender(self, link: Link, outgoing: asyncio.Queue[Message]) -> None:
        """Sends the session's notices and results in order; what queued up meanwhile goes in
        one frame (a burst of tiny tasks' "started"s and results)."""
        loop = asyncio.get_running_loop()
        last_sent = float("-inf")
        while True:
            batch = [await outgoing.get()]
            linger = last_sent + _SEND_LINGER_S - loop.time()
            if linger > 0 and self._executing:
                await asyncio.sleep(linger)
            while not outgoing.empty() and len(batch) < _SEND_BATCH:
                batch.append(outgoing.get_nowait())
            if all(isinstance(m, Started) for m in batch):
                # Only "started" notices: a tiny task's result usually follows within a few
                # milliseconds and then replaces its notice. The wait ends with the next
                # message; results are never held back.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_START_HOLD_S):
                        batch.append(await outgoing.get())
                while not outgoing.empty() and len(batch) < _SEND_BATCH:
                    batch.append(outgoing.get_nowait())
            try:
                await link.channel.send_many(without_overtaken_starts(batch))
                last_sent = loop.time()
            except (FogmeshError, OSError) as exc:
                # Results stay in the outbox and are sent again on the next session.
                log.info("send failed, will retry after reconnecting: %s", exc)

    # -- messages ----------------------------------------------------------------------------
    async def _on_message(self, message: Message) -> None:
        if isinstance(message, Assign):
            await self._assign(message.task)
        elif isinstance(message, Cancel):
            if (message.task_id, message.attempt) in self._running:
                await self.runner.cancel(message.task_id)
        elif isinstance(message, ResultAck):
            key = (message.task_id, message.attempt)
            if not message.accepted and message.retry_after > 0:
                if key in self._outbox:
                    self._send_again_later(key, message.retry_after, message.reason)
                return
            self._report_retries.pop(key, None)
            self._outbox.pop(key, None)
            self._artefacts.pop(key, None)
            if not self._outbox:
                self._all_acked.set()
            if not message.accepted:
                log.info("coordinator did not take %s: %s", message.task_id, message.reason)
        elif isinstance(message, HeartbeatAck):
            pass
        elif isinstance(message, ModelOffer | ModelData | ModelUnavailable):
            self._on_model_message(message)
        elif isinstance(message, ErrorMsg):
            log.warning("coordinator error: %s", message.reason)

    def _send_again_later(self, key: Key, at_least: float, reason: str) -> None:
        """The coordinator could not store this report now: keep it, and send it again after
        ``at_least`` seconds, doubling per try up to ``backoff_max`` (with jitter, so a fleet
        does not hammer a recovering database in step) but at least once per coordinator
        heartbeat interval (it holds the lease while tries keep coming). A new session sends
        it at once."""
        tries = self._report_retries.get(key, 0)
        self._report_retries[key] = tries + 1
        longest = min(self.config.backoff_max, self._server_interval)
        cap = max(at_least, min(at_least * 2 ** min(tries, 16), longest))
        delay = self._rng.uniform(at_least, cap)
        log.info("coordinator could not store the report of %s yet (%s); again in %.1f s",
                 key[0], reason, delay)  # fmt: skip
        previous = self._resends.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._resends[key] = asyncio.create_task(self._send_again(key, delay))

    async def _send_again(self, key: Key, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            message = self._outbox.get(key)
            if message is None:
                return  # answered meanwhile
            if isinstance(message, ResultMsg):
                await self._send_result(message)
            else:
                await self._send(message)
        finally:
            if self._resends.get(key) is asyncio.current_task():
                del self._resends[key]

    async def _assign(self, task: Task) -> None:
        key = (task.id, task.attempt)
        if key in self._running or key in self._outbox:
            return  # a re-sent lease we already hold
        try:
            accepts = self._accepts
            refusal = None if accepts is None else payload_refusal(accepts, task.payload)
            if refusal is not None:  # before anything is fetched or reserved for it
                await self._refuse(task, refusal[1], refusal[0])
                return
            profile, optimization = await self._recent_read()
            reason = self._refusal(optimization)
            if reason is not None:
                await self._refuse(task, reason, "policy")
                return
            limits = compute_limits(
                task,
                optimization,
                profile.capabilities.cpu_cores_logical,
                self.config.timeout_multiplier,
            )
        except Exception as exc:  # a bug here must end the lease with a report, not a hang
            await self._agent_error(task, "accepting", exc)
            return
        self._running[key] = asyncio.create_task(self._execute(task, limits), name=task.id)

    def _log_refused(self, task: Task, reason: str) -> None:
        self._trouble_log.info("refused", "task %s refused: %s", task.id, reason, task_id=task.id)

    async def _refuse(self, task: Task, reason: str, code: str) -> None:
        self._log_refused(task, reason)
        refused = Refused(task_id=task.id, attempt=task.attempt, reason=reason, code=code)
        self._outbox[(task.id, task.attempt)] = refused
        await self._send(refused)

    async def _agent_error(self, task: Task, stage: str, exc: Exception) -> None:
        """Report an error of the agent's own (not the task's) while ``stage`` as the lease's
        failure, with its reason, and log it with its traceback."""
        log.exception("task %s failed while %s", task.id, stage)
        reason = f"agent error while {stage}: {getattr(exc, 'reason', None) or exc!r}"
        await self._report_failure(task, "agent_error", reason)

    async def _report_failure(self, task: Task, code: str, reason: str) -> None:
        self._trouble_log.info("failed", "task %s failed: %s", task.id, reason, task_id=task.id)
        failed = ResultMsg(
            task_id=task.id,
            attempt=task.attempt,
            status="failed",
            error={"code": code, "reason": reason},
        )
        self._outbox[(task.id, task.attempt)] = failed
        await self._send_result(failed)

    def _refusal(self, optimization: ResourceOptimization) -> str | None:
        reason = self._policy_refusal(optimization)
        if reason is not None:
            return reason
        slots = optimization.max_concurrent_tasks
        room = slots * (1 + max(0, self.config.queued_per_slot))
        if len(self._running) >= room:
            return (
                f"busy: {len(self._running)} tasks running or queued, policy allows "
                f"{slots} at once in {optimization.power_mode.value} mode"
            )
        return None

    def _policy_refusal(self, optimization: ResourceOptimization) -> str | None:
        if self._stopping:
            return "the agent is stopping"
        if not optimization.admits_work:
            texts = "; ".join(r.text for r in optimization.reasons) or "policy admits no work"
            return f"{optimization.power_mode.value}: {texts}"
        return None

    def _slot_cap(self, optimization: ResourceOptimization | None) -> int:
        return max(1, optimization.max_concurrent_tasks if optimization is not None else 1)

    async def _take_slot(self, short: bool) -> str | None:
        """Wait for one of the policy's concurrent-task slots; a refusal reason instead if the
        policy forbids work by the time a queued task's turn comes.

        While only short tasks hold the slots and recent tasks ran in milliseconds
        (``prefetch_below_s``), each slot may take ``PREFETCH`` more short ones: they wait in
        the runner's worker queues (the runner still runs at most the policy's number at once),
        so a slot does not idle while this process hands back a result and sends the next
        task."""
        waited = False
        promised = False  # woken for a slot: it counts in self._promised until taken or passed on
        try:
            while True:
                optimization = self._optimization
                if waited:
                    _, optimization = await self._recent_read()
                    reason = self._policy_refusal(optimization)
                    if reason is not None:
                        return reason  # (the finally passes its slot on)
                if self._fits(short, optimization, mine=promised):
                    self._executing += 1
                    if not short:
                        self._executing_long += 1
                    if promised:
                        promised = False
                        self._promised -= 1
                    return None
                if promised:  # the policy shrank meanwhile: wait again, first in line
                    promised = False
                    self._promised -= 1
                woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                entry = (short, woken)
                if waited:
                    self._slot_waiters.appendleft(entry)
                else:
                    self._slot_waiters.append(entry)
                waited = True
                try:
                    await woken
                except asyncio.CancelledError:
                    promised = woken.done() and not woken.cancelled()
                    with contextlib.suppress(ValueError):
                        self._slot_waiters.remove(entry)
                    raise
                promised = True
        finally:
            if promised:  # refused or cancelled after its wake: the next one may have it
                self._promised -= 1
                self._wake_slot_waiters()

    def _fits(
        self, short: bool, optimization: ResourceOptimization | None, *, mine: bool = False
    ) -> bool:
        """Whether one more task may take a slot; ``mine``: the asking task was woken for one
        (and is counted among the promised)."""
        cap = self._slot_cap(optimization)
        if short and self._executing_long == 0 and self._prefetching():
            cap *= 1 + PREFETCH
        return self._executing + self._promised - int(mine) < cap

    def _wake_slot_waiters(self) -> None:
        """Wake, in order, the waiting tasks the slots now admit (each then checks the policy
        itself); the others sleep on — waking them all cost a policy check each for every task
        that ended."""
        waiters = self._slot_waiters
        if not waiters:
            return
        kept: collections.deque[tuple[bool, asyncio.Future[None]]] = collections.deque()
        while waiters:
            short, woken = waiters.popleft()
            if woken.done():
                continue
            if self._fits(short, self._optimization):
                woken.set_result(None)
                self._promised += 1
            else:
                kept.append((short, woken))
        self._slot_waiters = kept

    def _prefetching(self) -> bool:
        ran = self._ran_s
        return ran is not None and ran <= self.config.prefetch_below_s

    def _release_slot(self, short: bool) -> None:
        self._executing -= 1
        if not short:
            self._executing_long -= 1
        self._wake_slot_waiters()

    async def _execute(self, task: Task, limits: RunLimits) -> None:
        key = (task.id, task.attempt)
        short = task.resources.estimated_duration <= PREFETCH_MAX_S
        try:
            reason = await self._take_slot(short)
        except BaseException:
            self._running.pop(key, None)
            raise
        if reason is not None:
            self._running.pop(key, None)
            await self._refuse(task, reason, "policy")
            return
        try:
            try:
                missing = await self._ensure_model(task)
            except Exception as exc:  # e.g. the model cache failing: reported, never a hang
                self._running.pop(key, None)
                await self._agent_error(task, "preparing its model", exc)
                return
            if missing is not None:
                self._running.pop(key, None)
                code, why = missing
                if code == "model_unknown":  # the coordinator has no such model: no device will
                    await self._report_failure(task, code, why)
                else:
                    await self._refuse(task, why, code)
                return
            await self._run_task(task, limits)
        finally:
            self._release_slot(short)

    # -- models over the link -------------------------------------------------------------------
    def model_cache(self) -> Any:
        """This device's model cache (``<data dir>/models``), the runner's model resolver."""
        if self._model_cache is None:
            from fogmesh.edge.cache import ModelCache

            self._model_cache = ModelCache(model_dir(self.config.data_dir))
        return self._model_cache

    def resolve_model(self, model_id: str) -> Path | None:
        resolved: Path | None = self.model_cache().resolve(model_id)
        return resolved

    async def _ensure_model(self, task: Task) -> tuple[str, str] | None:
        """Fetch a ``model`` task's model from the coordinator if this device lacks it; if that
        fails, (code, reason): ``model_unknown`` when the coordinator has no such model (the
        task fails), ``model_unavailable`` when it did not arrive in time (another device may
        do better), ``policy`` when the link or the transfer broke (this device may try again
        later)."""
        payload = task.payload
        if not isinstance(payload, ModelPayload):
            return None
        model_id = payload.model_id
        if await asyncio.to_thread(self.resolve_model, model_id) is not None:
            return None
        fetch = self._fetches.get(model_id)
        if fetch is None:
            link = self._link
            if link is None:
                return (
                    "policy",
                    f"model {model_id} is not on this device and the coordinator is away",
                )
            fetch = self._fetches[model_id] = asyncio.get_running_loop().create_future()
            await link.channel.send(ModelFetch(model_id=model_id))
        try:
            async with asyncio.timeout(self.config.model_fetch_timeout):
                await asyncio.shield(fetch)
        except TimeoutError:
            self._fetches.pop(model_id, None)
            return "model_unavailable", (
                f"model {model_id} did not arrive within {self.config.model_fetch_timeout:g} s"
            )
        except ModelNotFound as exc:
            return "model_unknown", f"model {model_id} unavailable: {exc.reason}"
        except FogmeshError as exc:
            return "policy", f"model {model_id} could not be fetched now: {exc.reason}"
        return None

    def _on_model_message(self, message: ModelOffer | ModelData | ModelUnavailable) -> None:
        from fogmesh.edge.transfer import ModelChunk, ModelReceiver, TransferOffer

        if isinstance(message, ModelUnavailable):
            self._end_fetch(message.model_id, ModelNotFound(message.reason))
            return
        if isinstance(message, ModelOffer):
            try:
                offer = msgspec.convert(msgspec.structs.asdict(message), TransferOffer)
                self._receivers[message.transfer_id] = ModelReceiver(offer, self.model_cache())
            except (FogmeshError, msgspec.ValidationError) as exc:
                self._end_fetch(message.model_id, TransportError(f"bad model offer: {exc}"))
            return
        receiver = self._receivers.get(message.transfer_id)
        if receiver is None:
            return  # a transfer we gave up on
        model_id = receiver.offer.model_id
        try:
            chunk = ModelChunk(**msgspec.structs.asdict(message))  # the same fields
            if receiver.accept(chunk):
                path = receiver.finish(self.clock.time())  # verifies the SHA-256, then installs
                del self._receivers[message.transfer_id]
                log.info("model %s installed (%s)", model_id, receiver.offer.variant.value)
                self._end_fetch(model_id, path)
        except FogmeshError as exc:
            receiver.abort()
            self._receivers.pop(message.transfer_id, None)
            self._end_fetch(model_id, exc)

    def _end_fetch(self, model_id: str, outcome: Path | FogmeshError) -> None:
        fetch = self._fetches.pop(model_id, None)
        if fetch is None or fetch.done():
            return
        if isinstance(outcome, FogmeshError):
            fetch.set_exception(outcome)
            fetch.exception()  # retrieved here too: waiters may have timed out
        else:
            fetch.set_result(outcome)

    async def _run_task(self, task: Task, limits: RunLimits) -> None:
        key = (task.id, task.attempt)
        loop = asyncio.get_running_loop()
        pending_sends: set[asyncio.Task[None]] = set()

        def started() -> None:
            self._task_log.info(
                "started", "task %s started (%s)", task.id, _what(task), task_id=task.id
            )
            notice = loop.create_task(self._send(Started(task_id=task.id, attempt=task.attempt)))
            pending_sends.add(notice)
            notice.add_done_callback(pending_sends.discard)

        try:
            outcome = await self.runner.run(
                task, limits, on_start=started, running_cap=self._slot_cap(self._optimization)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a runner bug must still end the lease with a report
            log.exception("runner failed on %s", task.id)
            outcome = RunOutcome(status="failed", error={"code": "agent_error", "reason": str(exc)})
        finally:
            self._running.pop(key, None)
        if outcome.status == "completed":
            ran, last = outcome.wall_s, self._ran_s
            self._ran_s = ran if last is None else last + 0.2 * (ran - last)
            self._task_log.info(
                "completed",
                "task %s completed in %.3f s",
                task.id,
                outcome.wall_s,
                task_id=task.id,
            )
        else:
            error = outcome.error or {}
            self._trouble_log.info(
                "failed",
                "task %s %s: %s",
                task.id,
                outcome.status,
                error.get("reason") or error.get("code") or "no reason given",
                task_id=task.id,
            )
        artefact: ArtefactRef | None = None
        if outcome.artefact is not None:
            # Too big to travel inline: the bytes go ahead in chunks, the result names them.
            blob = outcome.artefact
            artefact = ArtefactRef(sha256=hashlib.sha256(blob).hexdigest(), size=len(blob))
            self._artefacts[key] = blob
        result = ResultMsg(
            task_id=task.id,
            attempt=task.attempt,
            status=outcome.status,
            result=None if artefact is not None else outcome.result,
            artefact=artefact,
            error=outcome.error,
            wall_s=outcome.wall_s,
            cpu_s=outcome.cpu_s,
            max_rss_mb=outcome.max_rss_mb,
            limiter=outcome.limiter,
        )
        self._outbox[key] = result
        for notice in list(pending_sends):
            with contextlib.suppress(Exception):
                await notice
        await self._send_result(result)

    async def _send_result(self, result: ResultMsg) -> None:
        """The result, preceded by its artefact's chunks when it has one (kept until acked, so
        a reconnect re-sends both)."""
        link = self._link
        blob = self._artefacts.get((result.task_id, result.attempt))
        if blob is not None and link is not None:
            try:
                for offset in range(0, len(blob), ARTEFACT_CHUNK):
                    await link.channel.send(
                        ArtefactChunk(
                            task_id=result.task_id,
                            attempt=result.attempt,
                            offset=offset,
                            total=len(blob),
                            data=blob[offset : offset + ARTEFACT_CHUNK],
                        )
                    )
            except (FogmeshError, OSError) as exc:
                log.info("artefact upload cut off, will retry after reconnecting: %s", exc)
                return
        await self._send(result)


def _what(task: Task) -> str:
    """A task's payload in a few words, for its log line (never its arguments)."""
    payload = task.payload
    if payload is None:
        return f"{task.type.value}, no payload"
    detail = getattr(payload, "function", None) or getattr(payload, "model_id", None)
    if detail is None:
        argv = getattr(payload, "argv", None)
        detail = argv[0] if argv else ""
    return f"{task.type.value}, {type(payload).__name__.removesuffix('Payload').lower()} {detail}"
