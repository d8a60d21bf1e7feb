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
  acknowledges them (a fenced-off attempt is acknowledged as refused, and dropped too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fogmesh.agent.link import AgentCredentials, Link, LinkRefused, open_link
from fogmesh.agent.runner import RunLimits, RunOutcome
from fogmesh.clock import Clock, WallClock
from fogmesh.devices.model import DeviceProfile
from fogmesh.devices.sensors import SensorSource, sensor_source_from_env
from fogmesh.errors import FogmeshError, TransportError
from fogmesh.fog.tasks import Task
from fogmesh.mobile.modes import PowerMode
from fogmesh.mobile.policy import ResourceOptimization
from fogmesh.mobile.resource_manager import MobileResourceManager
from fogmesh.wire.messages import (
    Assign,
    Cancel,
    Enrolled,
    ErrorMsg,
    Goodbye,
    Heartbeat,
    HeartbeatAck,
    Message,
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

Key = tuple[str, int]  # (task id, attempt): one lease


class Runner(Protocol):
    """What the daemon needs from ``fogmesh.agent.runner.TaskRunner``."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def run(
        self, task: Task, limits: RunLimits, *, on_start: Callable[[], None] | None = None
    ) -> RunOutcome: ...
    async def cancel(self, task_id: str) -> bool: ...
    def capabilities(self) -> dict[str, Any]: ...


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


def compute_limits(
    task: Task, optimization: ResourceOptimization, device_cores: int | None, multiplier: float
) -> RunLimits:
    """Task's request capped by the policy: cores × CPU %, the policy's memory cap, a wall limit."""
    cores = task.resources.cpu_cores
    if device_cores:
        cores = min(cores, device_cores * optimization.cpu_limit_percent / 100.0)
    memory: int | None = task.resources.memory_mb
    if optimization.memory_limit_mb is not None:
        memory = min(task.resources.memory_mb, optimization.memory_limit_mb)
    return RunLimits(
        cpu_cores=max(cores, 0.01),
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
        self._link: Link | None = None
        self._optimization: ResourceOptimization | None = None
        self._server_interval = config.heartbeat
        self._seq = 0
        self.connected = asyncio.Event()
        self._stopping = False
        self._all_acked = asyncio.Event()
        self.sessions = 0  # sessions that reached Welcome
        self.disconnects = 0  # of those, how many have ended
        self.creds: AgentCredentials | None = None

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
                )
            )
            welcome = await link.channel.recv()
            if not isinstance(welcome, Welcome):
                raise TransportError("coordinator did not welcome the session")
            if welcome.ticket:
                await asyncio.to_thread(creds.save_enrolment, welcome.ticket)
            self._server_interval = welcome.heartbeat_interval
            self._link = link
            self.sessions += 1
            self.connected.set()
            for message in list(self._outbox.values()):
                await link.channel.send(message)
            heart = asyncio.create_task(self._heartbeats(link))
            while True:
                await self._on_message(await link.channel.recv())
        finally:
            if self._link is link:
                self.disconnects += 1
            self._link = None
            self.connected.clear()
            if heart is not None:
                heart.cancel()
                with contextlib.suppress(asyncio.CancelledError, FogmeshError, OSError):
                    await heart
            with contextlib.suppress(Exception):
                await link.close()

    async def _read(self) -> tuple[DeviceProfile, ResourceOptimization]:
        profile = await asyncio.to_thread(self.sensors.read)
        profile = profile.replace(device_id=self.device_id, timestamp=self.clock.time())
        optimization = await self.manager.optimize_for_device(profile)
        self._optimization = optimization
        return profile, optimization

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
        link = self._link
        if link is None:
            return  # kept in the outbox (results) or dropped (a started notice is only a hint)
        try:
            await link.channel.send(message)
        except (FogmeshError, OSError) as exc:
            log.info("send failed, will retry after reconnecting: %s", exc)

    # -- messages ----------------------------------------------------------------------------
    async def _on_message(self, message: Message) -> None:
        if isinstance(message, Assign):
            await self._assign(message.task)
        elif isinstance(message, Cancel):
            if (message.task_id, message.attempt) in self._running:
                await self.runner.cancel(message.task_id)
        elif isinstance(message, ResultAck):
            self._outbox.pop((message.task_id, message.attempt), None)
            if not self._outbox:
                self._all_acked.set()
            if not message.accepted:
                log.info("coordinator did not take %s: %s", message.task_id, message.reason)
        elif isinstance(message, HeartbeatAck):
            pass
        elif isinstance(message, ErrorMsg):
            log.warning("coordinator error: %s", message.reason)

    async def _assign(self, task: Task) -> None:
        key = (task.id, task.attempt)
        if key in self._running or key in self._outbox:
            return  # a re-sent lease we already hold
        profile, optimization = await self._read()
        reason = self._refusal(optimization)
        if reason is not None:
            refused = Refused(task_id=task.id, attempt=task.attempt, reason=reason)
            self._outbox[key] = refused
            await self._send(refused)
            return
        limits = compute_limits(
            task,
            optimization,
            profile.capabilities.cpu_cores_logical,
            self.config.timeout_multiplier,
        )
        self._running[key] = asyncio.create_task(self._execute(task, limits), name=task.id)

    def _refusal(self, optimization: ResourceOptimization) -> str | None:
        if self._stopping:
            return "the agent is stopping"
        if not optimization.admits_work:
            texts = "; ".join(r.text for r in optimization.reasons) or "policy admits no work"
            return f"{optimization.power_mode.value}: {texts}"
        if len(self._running) >= optimization.max_concurrent_tasks:
            return (
                f"busy: {len(self._running)} tasks running, policy allows "
                f"{optimization.max_concurrent_tasks} in {optimization.power_mode.value} mode"
            )
        return None

    async def _execute(self, task: Task, limits: RunLimits) -> None:
        key = (task.id, task.attempt)
        loop = asyncio.get_running_loop()
        pending_sends: set[asyncio.Task[None]] = set()

        def started() -> None:
            notice = loop.create_task(self._send(Started(task_id=task.id, attempt=task.attempt)))
            pending_sends.add(notice)
            notice.add_done_callback(pending_sends.discard)

        try:
            outcome = await self.runner.run(task, limits, on_start=started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a runner bug must still end the lease with a report
            log.exception("runner failed on %s", task.id)
            outcome = RunOutcome(status="failed", error={"code": "agent_error", "reason": str(exc)})
        finally:
            self._running.pop(key, None)
        if outcome.artefact is not None:
            # Artefact upload is not built yet: say so rather than report an empty success.
            outcome = RunOutcome(
                status="failed",
                error={
                    "code": "result_too_large",
                    "reason": f"result of {len(outcome.artefact)} bytes needs artefact upload",
                },
                wall_s=outcome.wall_s,
                cpu_s=outcome.cpu_s,
            )
        result = ResultMsg(
            task_id=task.id,
            attempt=task.attempt,
            status=outcome.status,
            result=outcome.result,
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
        await self._send(result)
