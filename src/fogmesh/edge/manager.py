"""``EdgeManager``: the seed's API for registering devices, deploying models and watching them.

Embedded by default: ``EdgeManager()`` keeps its registry and deployments under the per-user data
directory (``FOGMESH_HOME`` overrides; layout in ``fogmesh.edge.models``) and shares an embedded
``FogCoordinator`` on the same directory (pass one in with ``coordinator=``). Each device it
manages has a device-side ``ModelCache`` (``<data dir>/edge/devices/<id>/models``); in embedded
mode chunks reach it in process, the agent link will carry the same ``ModelChunk`` values.

A deployment really happens: variant choice (``edge.variants``) → chunked transfer sized from the
device's policy and link (``edge.transfer``) → SHA-256 check → ONNX Runtime loads and runs it →
``ready`` and ``coordinator.add_deployed_model``, after which the scheduler prefers the device.

Monitoring: ``monitor_once()`` (the loop calls it every ``monitor_interval``, 30 s by default)
re-reads devices that have a local sensor source, marks devices not heard from within
``offline_after`` (3 intervals) offline, and on a significant change (``edge.monitor``)
re-evaluates the device's policy and redeploys models whose best variant changed.

Client mode: ``EdgeManager(coordinator_url=URL, ticket=...)``, or ``EdgeManager()`` with
``FOGMESH_COORDINATOR`` set (and no ``coordinator=``), opens nothing locally and sends every call
to that coordinator's edge endpoints (``fogmesh.edge.remote``); the ticket is ``ticket``, else
``FOGMESH_TICKET``, else ``admin.ticket`` in the data directory; an HTTPS coordinator's certificate
is pinned by ``fingerprint``, else ``FOGMESH_FINGERPRINT`` (``fogmesh.client.find_fingerprint``),
and a ticket never goes over plain http to another machine unless ``FOGMESH_INSECURE_HTTP=1``.
``register_device`` still reads
THIS machine (or the emulated ``profile``) here and sends the reading, and the monitoring loop
sends fresh readings of such devices to the coordinator, whose own loop does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fogmesh.clock import Clock, WallClock
from fogmesh.config import load_settings
from fogmesh.devices import (
    DeviceCapabilities,
    DeviceProfile,
    DeviceType,
    EmulatedSensors,
    RealSensors,
    parse_device_type,
    resolve_profile,
)
from fogmesh.edge.builtin import BUILTIN_MODELS, write_builtin_model
from fogmesh.edge.cache import ModelCache
from fogmesh.edge.deployments import (
    Deployment,
    DeploymentNotFound,
    DeploymentState,
    DeploymentStore,
)
from fogmesh.edge.device import EdgeDevice
from fogmesh.edge.models import ModelInfo, ModelRegistry, check_model_id
from fogmesh.edge.monitor import ChangeThresholds, significant_changes
from fogmesh.edge.pipeline import DeployContext, run_deployment
from fogmesh.edge.remote import RemoteEdge, segment
from fogmesh.edge.transfer import chunk_size_for
from fogmesh.edge.variants import Variant, choose_variant
from fogmesh.errors import (
    DeviceError,
    DeviceNotFound,
    FogmeshError,
    IllegalTransition,
    InvalidRequest,
    ModelNotFound,
)
from fogmesh.fog.coordinator import FogCoordinator
from fogmesh.fog.tasks import TaskType
from fogmesh.mobile.policy import ResourcePolicy, evaluate
from fogmesh.store import DeviceStatus, profile_from_dict

__all__ = ["DEVICE_ID_PATTERN", "EdgeDevice", "EdgeManager"]

log = logging.getLogger(__name__)

DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LIVE = frozenset({DeploymentState.READY})
_GONE = frozenset({DeploymentState.SUPERSEDED, DeploymentState.REMOVED})


class EdgeManager:
    def __init__(
        self,
        coordinator: FogCoordinator | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        policy: ResourcePolicy | None = None,
        monitor_interval: float = 30.0,
        offline_after: float | None = None,
        thresholds: ChangeThresholds | None = None,
        builtin_models: bool = True,
        monitor: bool = True,
        coordinator_url: str | None = None,
        ticket: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else load_settings().home
        self.clock: Clock = clock or (coordinator.clock if coordinator else WallClock())
        self.policy = policy or ResourcePolicy()
        self.monitor_interval = monitor_interval
        self.offline_after = offline_after if offline_after is not None else 3 * monitor_interval
        self.thresholds = thresholds or ChangeThresholds()
        self._builtin = builtin_models
        self._monitor = monitor and monitor_interval > 0
        self._owns_coordinator = coordinator is None
        if coordinator is not None and coordinator_url is not None:
            raise InvalidRequest(
                "give either coordinator= (embedded) or coordinator_url= (client), not both"
            )
        url = coordinator_url if coordinator is None else None
        if url is None and coordinator is None:
            url = load_settings().coordinator  # FOGMESH_COORDINATOR
        self.coordinator_url = url.rstrip("/") if url else None
        self._remote: RemoteEdge | None = None
        self._coordinator: FogCoordinator | None = None
        self._registry: ModelRegistry | None = None
        self._deployments: DeploymentStore | None = None
        if url:
            from fogmesh.client import find_fingerprint, find_ticket
            from fogmesh.security.tls import insecure_http_allowed

            self._remote = RemoteEdge(
                url,
                find_ticket(ticket, self.data_dir),
                fingerprint=find_fingerprint(url, fingerprint, self.data_dir),
                insecure_http=insecure_http_allowed(),
            )
        else:
            self._coordinator = coordinator or FogCoordinator(
                data_dir=self.data_dir, clock=self.clock
            )
            self._registry = ModelRegistry(self.data_dir)
            self._deployments = DeploymentStore(self._registry.root / "edge.db")
        self._devices: dict[str, EdgeDevice] = {}
        self._real: RealSensors | None = None
        self._builtin_lock: asyncio.Lock | None = None
        self._start_lock: asyncio.Lock | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # -- mode -------------------------------------------------------------------------------
    @property
    def is_client(self) -> bool:
        """True when this manager is a client of a running coordinator (``coordinator_url``)."""
        return self._remote is not None

    @property
    def coordinator(self) -> FogCoordinator:
        """The embedded (or given) coordinator; ``InvalidRequest`` in client mode."""
        if self._coordinator is None:
            raise self._embedded_only("coordinator")
        return self._coordinator

    @property
    def registry(self) -> ModelRegistry:
        """The model registry; ``InvalidRequest`` in client mode (see ``GET /v1/models``)."""
        if self._registry is None:
            raise self._embedded_only("registry")
        return self._registry

    @property
    def deployments(self) -> DeploymentStore:
        """The deployment records; ``InvalidRequest`` in client mode."""
        if self._deployments is None:
            raise self._embedded_only("deployments")
        return self._deployments

    def _embedded_only(self, what: str) -> InvalidRequest:
        return InvalidRequest(
            f"{what} lives on the coordinator at {self.coordinator_url}; this EdgeManager is "
            "its client (use the manager's methods, or the coordinator's REST API)"
        )

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the coordinator, adopt the devices it knows, start the monitoring loop."""
        if self._closed:
            raise InvalidRequest("this EdgeManager is closed")
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            if self._remote is not None:
                if self._monitor:
                    self._monitor_task = asyncio.create_task(
                        self._monitor_loop(), name="fogmesh-edge"
                    )
                self._started = True
                return
            await self.coordinator.start()
            for record in await self.coordinator.list_devices():
                if record.device_id not in self._devices:
                    device = self._adopt_record(
                        record.device_profile(), record.labels, record.last_heartbeat
                    )
                    if record.status in (DeviceStatus.LOST, DeviceStatus.OFFLINE):
                        device.status = "offline"
            if self._monitor:
                self._monitor_task = asyncio.create_task(self._monitor_loop(), name="fogmesh-edge")
            self._started = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
        if self._owns_coordinator and self._coordinator is not None:
            await self._coordinator.close()
        if self._deployments is not None:
            self._deployments.close()
        if self._registry is not None:
            self._registry.close()

    async def __aenter__(self) -> EdgeManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- devices ----------------------------------------------------------------------------
    async def register_device(
        self,
        device_id: str,
        device_name: str | None = None,
        auto_detect: bool = True,
        *,
        profile: str | DeviceProfile | None = None,
        device_type: DeviceType | str | None = None,
        capabilities: DeviceCapabilities | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> EdgeDevice:
        """Register (or re-register) a device with the fog.

        ``auto_detect``: read this machine (or the emulated ``profile`` — a preset name or
        profile file — else ``FOGMESH_PROFILE``); the device keeps that sensor source and the
        monitoring loop re-reads it. A ``DeviceProfile`` is taken as reported (a device whose
        state arrives through ``update_device_state``). Without either, ``device_type`` and
        ``capabilities`` describe it. ``device_type`` overrides classification in every case.
        """
        await self.start()
        if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
            raise InvalidRequest(
                f"device id {device_id!r} must be 1–128 letters, digits, '.', '_', '-'",
                field="device_id",
            )
        source: RealSensors | EmulatedSensors | None = None
        if isinstance(profile, DeviceProfile):
            live = profile.replace(device_id=device_id)
            why = "as reported"
        elif auto_detect:
            source = self._source(profile)
            live = (await asyncio.to_thread(source.read)).replace(device_id=device_id)
            why = source.classification().reason
        elif capabilities is not None and device_type is not None:
            live = DeviceProfile(device_id, parse_device_type(device_type), capabilities)
            why = "given"
        else:
            raise InvalidRequest(
                "without auto_detect, give a profile, or device_type and capabilities"
            )
        if device_type is not None:
            kind = parse_device_type(device_type)
            if kind is not live.device_type:
                live, why = live.replace(device_type=kind), f"set explicitly to {kind.value}"
        if live.timestamp is None:
            live = live.replace(timestamp=self.clock.time())
        name = device_name or device_id
        if self._remote is not None:
            return await self._register_remote(live, name, labels, why, source)
        tags = {**(labels or {}), "name": name}
        record = await self.coordinator.register_node(live, labels=tags)
        device = self._adopt_record(live, record.labels, self.clock.time(), why=why)
        device.source = source
        return device

    async def _register_remote(
        self,
        live: DeviceProfile,
        name: str,
        labels: Mapping[str, str] | None,
        why: str,
        source: RealSensors | EmulatedSensors | None,
    ) -> EdgeDevice:
        assert self._remote is not None
        body: dict[str, Any] = {
            "device_id": live.device_id,
            "device_name": name,
            "profile": live.to_dict(),
        }
        if labels:
            body["labels"] = dict(labels)
        reply = await self._remote.object("POST", "/v1/edge/devices", json=body)
        try:
            profile = profile_from_dict(reply["profile"])
            registered_at = float(reply["registered_at"])
            last_seen = float(reply["last_seen"])
            status = str(reply["status"])
        except (FogmeshError, KeyError, TypeError, ValueError) as exc:
            raise DeviceError(
                f"{self.coordinator_url} answered a registration without a readable device: {exc}",
                device_id=live.device_id,
            ) from exc
        device = EdgeDevice(
            device_id=profile.device_id,
            device_name=str(reply.get("device_name") or name),
            device_type=profile.device_type,
            capabilities=profile.capabilities,
            profile=profile,
            optimization=evaluate(profile, self.policy),
            classification=why,
            registered_at=registered_at,
            last_seen=last_seen,
            status=status,
            # Never filled in client mode (the coordinator holds the device's models); the
            # directory is only created when a model is installed.
            cache=ModelCache(self._device_dir(profile.device_id)),
            baseline=profile,
            source=source,
        )
        self._devices[device.device_id] = device
        return device

    def _source(self, spec: str | None) -> RealSensors | EmulatedSensors:
        spec = spec or load_settings().profile
        if spec:
            emulated, label = resolve_profile(spec, field="profile")
            return EmulatedSensors(emulated, clock=self.clock, label=label)
        if self._real is None:
            self._real = RealSensors(clock=self.clock)
        return self._real

    def _adopt_record(
        self, profile: DeviceProfile, labels: Mapping[str, str], seen: float, *, why: str = ""
    ) -> EdgeDevice:
        prev = self._devices.get(profile.device_id)
        optimization = evaluate(profile, self.policy, prev.optimization if prev else None)
        cache = prev.cache if prev else ModelCache(self._device_dir(profile.device_id))
        device = EdgeDevice(
            device_id=profile.device_id,
            device_name=labels.get("name", profile.device_id),
            device_type=profile.device_type,
            capabilities=profile.capabilities,
            profile=profile,
            optimization=optimization,
            classification=why or (prev.classification if prev else "from the store"),
            registered_at=prev.registered_at if prev else seen,
            last_seen=seen,
            cache=cache,
            baseline=profile,
        )
        self._devices[profile.device_id] = device
        return device

    def _device_dir(self, device_id: str) -> Path:
        root = self._registry.root if self._registry is not None else self.data_dir / "edge"
        return root / "devices" / device_id / "models"

    def model_cache(self, device_id: str) -> ModelCache:
        """The device's model cache; ``.resolve`` is the runner's ``model_resolver``."""
        if self._remote is not None:
            raise self._embedded_only("the model cache of a managed device")
        return self._device(device_id).cache

    def _device(self, device_id: str) -> EdgeDevice:
        device = self._devices.get(device_id)
        if device is None:
            raise DeviceNotFound(f"unknown device {device_id!r}", device_id=device_id)
        return device

    async def update_device_state(self, device_id: str, profile: DeviceProfile) -> list[str]:
        """A device reports its live state (the agent link's path); returns what it triggered."""
        await self.start()
        if self._remote is not None:
            return await self._push_state(device_id, profile)
        device = self._device(device_id)
        return await self._observe(device, profile.replace(device_id=device_id))

    # -- deployments ------------------------------------------------------------------------
    async def deploy_workload(
        self, device_id: str, model_id: str, deployment_type: str = "inference"
    ) -> str:
        """Deploy ``model_id`` to the device; returns the deployment id once it is ``ready``.

        Unknown model → ``ModelNotFound``. A failure on the way (no variant fits, a tampered
        transfer, a model ONNX Runtime cannot run) is recorded as ``failed`` with its reason and
        raised; the error's ``details["deployment_id"]`` names the record.
        """
        await self.start()
        if self._remote is not None:
            body = {
                "device_id": device_id,
                "model_id": model_id,
                "deployment_type": deployment_type,
            }
            reply = await self._remote.object("POST", "/v1/deployments", json=body)
            found = reply.get("deployment_id")
            if not isinstance(found, str):
                raise DeviceError(
                    f"{self.coordinator_url} answered a deployment without its id",
                    device_id=device_id,
                )
            return found
        device = self._device(device_id)
        if device.status != "online":
            raise DeviceError(
                f"device {device_id!r} is offline (last heard from at {device.last_seen:.0f})",
                device_id=device_id,
            )
        try:
            kind = TaskType(deployment_type).value
        except ValueError:
            known = ", ".join(t.value for t in TaskType)
            raise InvalidRequest(
                f"unknown deployment type {deployment_type!r}; known: {known}",
                field="deployment_type",
            ) from None
        variants = await self._variants(check_model_id(model_id))
        deployment = await self._deploy(device, model_id, kind, variants, "requested")
        return deployment.deployment_id

    async def _variants(self, model_id: str) -> dict[Variant, ModelInfo]:
        variants = await asyncio.to_thread(self.registry.variants, model_id)
        if not variants and self._builtin and model_id in BUILTIN_MODELS:
            if self._builtin_lock is None:
                self._builtin_lock = asyncio.Lock()
            async with self._builtin_lock:
                variants = await asyncio.to_thread(self._install_builtin, model_id)
        if not variants:
            raise ModelNotFound(
                f"unknown model {model_id!r}; add it with `fogmesh model add FILE --id {model_id}`",
                model_id=model_id,
            )
        return variants

    def _install_builtin(self, model_id: str) -> dict[Variant, ModelInfo]:
        if found := self.registry.variants(model_id):
            return found
        with tempfile.TemporaryDirectory(dir=self.registry.root) as tmp:
            path = Path(tmp) / f"{model_id}.onnx"
            write_builtin_model(model_id, path)
            self.registry.add(path, model_id, Variant.FP32, make_int8=True, source="built-in")
        return self.registry.variants(model_id)

    async def _deploy(
        self,
        device: EdgeDevice,
        model_id: str,
        deployment_type: str,
        variants: Mapping[Variant, ModelInfo],
        note: str,
    ) -> Deployment:
        return await run_deployment(
            DeployContext(self.registry, self.deployments, self.coordinator, self.clock),
            device,
            model_id,
            deployment_type,
            variants,
            note,
        )

    async def undeploy(self, deployment_id: str) -> dict[str, Any]:
        """Remove a ready deployment: the model leaves the device's cache and the coordinator
        stops preferring the device for it. Anything but ``ready`` → ``IllegalTransition``."""
        await self.start()
        if self._remote is not None:
            return await self._remote.object(
                "DELETE",
                f"/v1/deployments/{segment(deployment_id, 'deployment_id')}",
                not_found=DeploymentNotFound,
            )
        dep = self.deployments.get(deployment_id)
        if dep.state is not DeploymentState.READY:
            raise IllegalTransition(
                f"deployment {deployment_id} is {dep.state.value}; only a ready one is removed"
            )
        device = self._device(dep.device_id)
        device.cache.remove(dep.model_id)
        await self.coordinator.remove_deployed_model(dep.device_id, dep.model_id)
        removed = self.deployments.transition(
            dep, DeploymentState.REMOVED, self.clock.time(), "undeployed on request"
        )
        return removed.to_dict()

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        if self._remote is not None:
            return self._remote.object_sync(
                "GET",
                f"/v1/deployments/{segment(deployment_id, 'deployment_id')}",
                not_found=DeploymentNotFound,
            )
        return self.deployments.get(deployment_id).to_dict()

    # -- status -----------------------------------------------------------------------------
    def get_device_status(self, device_id: str) -> dict[str, Any]:
        if self._remote is not None:
            return self._remote.object_sync(
                "GET",
                f"/v1/edge/devices/{segment(device_id, 'device_id')}",
                not_found=DeviceNotFound,
            )
        device = self._device(device_id)
        opt = device.optimization
        p = device.profile
        return {
            "device_id": device.device_id,
            "device_name": device.device_name,
            "device_type": device.device_type.value,
            "status": device.status,
            "last_seen": device.last_seen,
            "power_mode": opt.power_mode.value,
            "battery_percent": p.battery_percent,
            "charging": p.charging,
            "cpu_temp_c": p.cpu_temp_c,
            "ram_available_mb": p.ram_available_mb,
            "limits": {
                "cpu_limit_percent": opt.cpu_limit_percent,
                "memory_limit_mb": opt.memory_limit_mb,
                "max_concurrent_tasks": opt.max_concurrent_tasks,
                "chunk_size": opt.chunking_config.effective_chunk_size(),
                "model_chunk_size": chunk_size_for(opt),
            },
            "transport_preference": opt.transport_preference.value,
            "reasons": [r.to_dict() for r in opt.reasons],
            "deployments": [
                {
                    "deployment_id": d.deployment_id,
                    "model_id": d.model_id,
                    "variant": d.variant.value if d.variant else None,
                    "state": d.state.value,
                    "reason": d.reason,
                }
                for d in self.deployments.for_device(device_id)
                if d.state not in _GONE
            ],
        }

    def get_system_status(self) -> dict[str, Any]:
        if self._remote is not None:
            return self._remote.object_sync("GET", "/v1/edge/status")
        by_type: dict[str, int] = {}
        for d in self._devices.values():
            by_type[d.device_type.value] = by_type.get(d.device_type.value, 0) + 1
        online = sum(1 for d in self._devices.values() if d.status == "online")
        return {
            "devices": {
                "total": len(self._devices),
                "online": online,
                "offline": len(self._devices) - online,
                "by_type": by_type,
            },
            "deployments": self.deployments.counts(),
            "models": len({m.model_id for m in self.registry.list()}),
            "coordinator": self.coordinator.get_system_status(),
        }

    # -- monitoring -------------------------------------------------------------------------
    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_interval)
            try:
                await self.monitor_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad reading must not end monitoring; logged with traceback
                log.exception("edge monitoring round failed")

    async def monitor_once(self) -> list[str]:
        """One monitoring round; returns what happened, one line per event.

        Client mode: devices registered here with a sensor source are read and their readings
        sent to the coordinator (whose own loop watches silence and re-optimises)."""
        await self.start()
        if self._remote is not None:
            return await self._monitor_remote()
        events: list[str] = []
        now = self.clock.time()
        for device in list(self._devices.values()):
            if device.source is not None:
                try:
                    profile = await asyncio.to_thread(device.source.read)
                except DeviceError as exc:
                    log.warning("cannot read %s: %s", device.device_id, exc.reason)
                else:
                    events += await self._observe(
                        device, profile.replace(device_id=device.device_id)
                    )
                    continue
            silent = now - device.last_seen
            if device.status == "online" and silent > self.offline_after:
                device.status = "offline"
                events.append(f"{device.device_id}: offline (silent {silent:.0f} s)")
        return events

    async def _monitor_remote(self) -> list[str]:
        events: list[str] = []
        for device in list(self._devices.values()):
            if device.source is None:
                continue
            try:
                profile = await asyncio.to_thread(device.source.read)
            except DeviceError as exc:
                log.warning("cannot read %s: %s", device.device_id, exc.reason)
                continue
            events += await self._push_state(device.device_id, profile)
        return events

    async def _push_state(self, device_id: str, profile: DeviceProfile) -> list[str]:
        assert self._remote is not None
        live = profile.replace(device_id=device_id)
        if live.timestamp is None:
            live = live.replace(timestamp=self.clock.time())
        reply = await self._remote.object(
            "POST",
            f"/v1/edge/devices/{segment(device_id, 'device_id')}/state",
            json={"profile": live.to_dict()},
            not_found=DeviceNotFound,
        )
        device = self._devices.get(device_id)
        if device is not None:
            device.profile = live
            device.last_seen = self.clock.time()
            device.status = "online"
        found = reply.get("events")
        return [str(e) for e in found] if isinstance(found, list) else []

    async def _observe(self, device: EdgeDevice, profile: DeviceProfile) -> list[str]:
        events: list[str] = []
        device.last_seen = self.clock.time()
        if device.status != "online":
            device.status = "online"
            events.append(f"{device.device_id}: online")
        await self.coordinator.update_node_state(device.device_id, profile)
        device.profile = profile
        device.optimization = evaluate(profile, self.policy, device.optimization)
        changes = significant_changes(device.baseline, profile, self.thresholds)
        if not changes:
            return events
        device.baseline = profile
        why = ", ".join(changes)
        events.append(f"{device.device_id}: {why} → {device.optimization.power_mode.value}")
        for dep in self.deployments.for_device(device.device_id, states=_LIVE):
            events += await self._reoptimise(device, dep, why)
        return events

    async def _reoptimise(self, device: EdgeDevice, dep: Deployment, why: str) -> list[str]:
        try:
            variants = await self._variants(dep.model_id)
        except ModelNotFound:
            return [f"{dep.deployment_id}: model {dep.model_id} no longer registered; kept"]
        sizes = {v: i.size_bytes for v, i in variants.items()}
        choice = choose_variant(sizes, device.profile, device.optimization)
        if choice.variant is None or choice.variant is dep.variant:
            return []
        try:
            new = await self._deploy(
                device, dep.model_id, dep.deployment_type, variants, f"re-optimised: {why}"
            )
        except FogmeshError as exc:
            return [f"{dep.deployment_id}: re-optimisation failed: {exc.reason}"]
        old = dep.variant.value if dep.variant else "?"
        return [
            f"{dep.model_id} on {device.device_id}: {old} → {choice.variant.value} "
            f"({new.deployment_id})"
        ]
