"""The deployment pipeline: one model to one device, each state entered because its work ran.

variant choice (pure) → ``transferring``: chunks from the registry's blob to the device's
receiver (in embedded mode over the in-process link) → ``verifying``: SHA-256 of the whole file,
then ONNX Runtime loads and runs it → ``ready`` and ``coordinator.add_deployed_model``. Any
failure is recorded as ``failed`` with its reason, the partial file is dropped, and the error is
raised with ``details["deployment_id"]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from fogmesh.clock import Clock
from fogmesh.edge.deployments import (
    Deployment,
    DeploymentState,
    DeploymentStore,
    new_deployment_id,
)
from fogmesh.edge.device import EdgeDevice
from fogmesh.edge.models import ModelInfo, ModelRegistry
from fogmesh.edge.runtime import prove_runs
from fogmesh.edge.transfer import ModelReceiver, ModelSender, chunk_size_for, link_for
from fogmesh.edge.variants import Variant, choose_variant
from fogmesh.errors import FogmeshError, SchedulingError
from fogmesh.fog.coordinator import FogCoordinator

__all__ = ["DeployContext", "run_deployment"]

_LIVE = frozenset({DeploymentState.READY})


@dataclass(frozen=True, slots=True)
class DeployContext:
    registry: ModelRegistry
    deployments: DeploymentStore
    coordinator: FogCoordinator
    clock: Clock


async def run_deployment(
    ctx: DeployContext,
    device: EdgeDevice,
    model_id: str,
    deployment_type: str,
    variants: Mapping[Variant, ModelInfo],
    note: str,
) -> Deployment:
    """Deploy one of ``variants`` of ``model_id`` to ``device``; the record once ``ready``."""
    store = ctx.deployments
    now = ctx.clock.time()
    dep = Deployment(
        deployment_id=new_deployment_id(now),
        device_id=device.device_id,
        model_id=model_id,
        deployment_type=deployment_type,
        state=DeploymentState.PENDING,
        created_at=now,
        updated_at=now,
    )
    dep = store.create(dep)
    receiver: ModelReceiver | None = None
    try:
        if not device.optimization.admits_work:
            # A transfer costs the energy the policy is saving (a critical battery): the
            # deployment waits for a better moment rather than draining the device.
            raise SchedulingError(
                f"{device.device_id} admits no work now (power mode "
                f"{device.optimization.power_mode.value})"
            )
        sizes = {v: i.size_bytes for v, i in variants.items()}
        choice = choose_variant(sizes, device.profile, device.optimization)
        if choice.variant is None:
            raise SchedulingError(f"no variant of {model_id} fits: {choice.text}")
        info = variants[choice.variant]
        link = link_for(device.optimization)
        sender = ModelSender(ctx.registry, info, chunk_size_for(device.optimization, link))
        offer = sender.offer
        dep = store.transition(
            dep,
            DeploymentState.TRANSFERRING,
            ctx.clock.time(),
            f"{note}; {offer.total_chunks} chunks of {offer.chunk_size} B over {link.value}",
            variant=info.variant,
            sha256=info.sha256,
            link=link.value,
            chunk_size=offer.chunk_size,
            chunks=offer.total_chunks,
            reasons=choice.reasons,
        )
        receiver = ModelReceiver(offer, device.cache)
        await asyncio.to_thread(_pump, sender, receiver)
        dep = store.transition(
            dep,
            DeploymentState.VERIFYING,
            ctx.clock.time(),
            f"{receiver.bytes_received} bytes received",
            bytes_transferred=receiver.bytes_received,
        )
        path = await asyncio.to_thread(receiver.finish, ctx.clock.time())
        ran = await asyncio.to_thread(prove_runs, path)
        await ctx.coordinator.add_deployed_model(device.device_id, model_id)
    except FogmeshError as exc:
        if receiver is not None:
            receiver.abort()
        exc.details["deployment_id"] = dep.deployment_id
        store.transition(dep, DeploymentState.FAILED, ctx.clock.time(), reason=exc.reason)
        raise
    except BaseException:
        if receiver is not None:
            receiver.abort()
        store.transition(dep, DeploymentState.FAILED, ctx.clock.time(), reason="interrupted")
        raise
    dep = store.transition(dep, DeploymentState.READY, ctx.clock.time(), f"sha256 verified; {ran}")
    for old in store.for_device(device.device_id, states=_LIVE):
        if old.model_id == model_id and old.deployment_id != dep.deployment_id:
            store.transition(
                old,
                DeploymentState.SUPERSEDED,
                ctx.clock.time(),
                reason=f"replaced by {dep.deployment_id}",
            )
    return dep


def _pump(sender: ModelSender, receiver: ModelReceiver) -> None:
    """The in-process link: every chunk from the sender to the receiver, in order."""
    for chunk in sender.chunks():
        receiver.accept(chunk)
