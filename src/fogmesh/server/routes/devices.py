"""``/v1/devices``: the registry as the coordinator sees it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from fogmesh.server._json import StrictJsonRoute
from fogmesh.server._openapi import AUTHENTICATED, Bool, errors
from fogmesh.server.auth import AdminTicket, ReadTicket
from fogmesh.store import DeviceRecord

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/devices", tags=["devices"], route_class=StrictJsonRoute, responses=AUTHENTICATED
)

DeviceId = Annotated[str, Path(min_length=1, max_length=128)]


class DrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draining: Bool = True


def device_json(record: DeviceRecord, connected: bool) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(record)
    value["connected"] = connected
    return value


@router.get("")
async def list_devices(request: Request, _: ReadTicket) -> dict[str, Any]:
    service = request.app.state.service
    records = await service.coordinator.list_devices()
    return {"devices": [device_json(r, r.device_id in service.hub.sessions) for r in records]}


@router.get("/{device_id}", responses=errors(404))
async def get_device(device_id: DeviceId, request: Request, _: ReadTicket) -> Any:
    service = request.app.state.service
    record = await service.coordinator.get_device(device_id)
    return device_json(record, device_id in service.hub.sessions)


@router.post("/{device_id}/drain", responses=errors(404, 413))
async def drain(
    device_id: DeviceId,
    request: Request,
    _: AdminTicket,
    body: DrainIn | None = None,
) -> Any:
    """Stop (or resume) placing new work on a device; its current leases finish."""
    service = request.app.state.service
    record = await service.coordinator.set_draining(device_id, (body or DrainIn()).draining)
    return device_json(record, device_id in service.hub.sessions)


@router.delete("/{device_id}", status_code=204, responses=errors(404))
async def remove(device_id: DeviceId, request: Request, _: AdminTicket) -> Response:
    """Forget a device; its leased tasks go back to the queue."""
    await request.app.state.service.coordinator.remove_node(device_id)
    return Response(status_code=204)
