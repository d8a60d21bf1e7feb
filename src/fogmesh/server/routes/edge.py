"""Edge management over REST: the model registry, edge devices and deployments.

The coordinator service owns one ``EdgeManager`` sharing its ``FogCoordinator`` and data
directory; these routes are that manager's methods, and ``EdgeManager(coordinator_url=...)`` is
their client. Reads need the ``read`` scope, changes ``admin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from fogmesh.devices import preset_names
from fogmesh.devices.emulated import profile_from_mapping
from fogmesh.devices.model import DeviceProfile, DeviceType
from fogmesh.edge.manager import DEVICE_ID_PATTERN
from fogmesh.errors import ConfigError, FogmeshError, InvalidRequest
from fogmesh.fog.tasks import MODEL_ID_PATTERN, TaskType
from fogmesh.server._json import StrictJsonRoute
from fogmesh.server._openapi import AUTHENTICATED, errors
from fogmesh.server._profile_schema import (
    FILE_ONLY_KEYS,
    integral_numbers,
    profile_json_schema,
)
from fogmesh.server.auth import AdminTicket, ReadTicket

if TYPE_CHECKING:
    from fogmesh.edge.device import EdgeDevice
    from fogmesh.edge.manager import EdgeManager

__all__ = ["router"]

router = APIRouter(
    tags=["edge"], route_class=StrictJsonRoute, responses={**AUTHENTICATED, **errors(400)}
)

# Python's regex engine: the one the edge manager checks ids with (and the schema's readers use).
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, regex_engine="python-re")
DeviceId = Annotated[str, Path(min_length=1, max_length=128, description="edge device id")]
DeploymentId = Annotated[str, Path(min_length=1, max_length=128, description="deployment id")]
ProfileBody = Annotated[dict[str, Any], WithJsonSchema(profile_json_schema())]
_PRESETS = preset_names()


# The edge manager's and model registry's id rules (edge/manager.py, edge/models.py), said in
# the schema; Python's "$" (which also passes a final newline) is what the server applies.
EDGE_DEVICE_ID_PATTERN = DEVICE_ID_PATTERN.pattern
EDGE_MODEL_ID_PATTERN = "^" + MODEL_ID_PATTERN.pattern + "$"


class EdgeDeviceIn(BaseModel):
    """Give exactly one of ``profile`` (the device's own reading) or ``emulate`` (a preset the
    coordinator reads and monitors itself)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        regex_engine="python-re",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["profile"],
                    "properties": {"profile": {"type": "object"}, "emulate": {"type": "null"}},
                },
                {
                    "required": ["emulate"],
                    "properties": {"emulate": {"type": "string"}, "profile": {"type": "null"}},
                },
            ]
        },
    )
    device_id: str = Field(min_length=1, max_length=128, pattern=EDGE_DEVICE_ID_PATTERN)
    device_name: str | None = Field(default=None, min_length=1, max_length=200)
    profile: ProfileBody | None = None
    emulate: Annotated[
        str | None,
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "enum": list(_PRESETS)}, {"type": "null"}],
                "description": "an emulation preset name",
            }
        ),
    ] = None
    device_type: DeviceType | None = None
    labels: dict[str, Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=32
    )


class DeviceStateIn(BaseModel):
    model_config = _STRICT
    profile: ProfileBody


class DeploymentIn(BaseModel):
    model_config = _STRICT
    device_id: str = Field(min_length=1, max_length=128)
    model_id: str = Field(min_length=1, max_length=128, pattern=EDGE_MODEL_ID_PATTERN)
    deployment_type: TaskType = TaskType.INFERENCE


class Deployed(BaseModel):
    deployment_id: str


def _edge(request: Request) -> EdgeManager:
    manager: EdgeManager = request.app.state.service.edge
    return manager


def _profile(data: Mapping[str, Any]) -> DeviceProfile:
    file_keys = sorted(FILE_ONLY_KEYS & set(data))
    if file_keys:
        raise InvalidRequest(
            f"profile.{file_keys[0]}: unknown field (base and unset are for profile files; "
            "over REST send the profile's fields)"
        )
    try:
        return profile_from_mapping(integral_numbers(dict(data)))
    except FogmeshError as exc:
        raise InvalidRequest(f"profile.{exc.reason}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # anything the validator did not foresee
        raise InvalidRequest(f"profile is not a device profile: {exc}") from exc


def _registered(manager: EdgeManager, device: EdgeDevice) -> dict[str, Any]:
    return {
        **manager.get_device_status(device.device_id),
        "classification": device.classification,
        "registered_at": device.registered_at,
        "profile": device.profile.to_dict(),
    }


@router.get("/v1/models")
async def list_models(request: Request, _: ReadTicket) -> dict[str, Any]:
    """Registered models with their variants (content-addressed: SHA-256 and size in bytes),
    and the built-in models a deployment installs on first use."""
    from fogmesh.edge.builtin import BUILTIN_MODELS

    manager = _edge(request)
    models: dict[str, list[dict[str, Any]]] = {}
    for info in manager.registry.list():
        models.setdefault(info.model_id, []).append(
            {
                "variant": info.variant.value,
                "sha256": info.sha256,
                "size_bytes": info.size_bytes,
                "opset": info.opset,
                "added_at": info.added_at,
                "source": info.source,
            }
        )
    return {
        "models": [{"model_id": m, "variants": v} for m, v in sorted(models.items())],
        "builtin": sorted(BUILTIN_MODELS),
    }


@router.post("/v1/edge/devices", status_code=201, responses=errors(413))
async def register_device(body: EdgeDeviceIn, request: Request, _: AdminTicket) -> dict[str, Any]:
    """Register (or re-register) an edge device: with ``profile``, its own reading (taken as
    reported; fresh readings go to ``/state``), or with ``emulate``, an emulation preset the
    coordinator reads and monitors itself."""
    manager = _edge(request)
    if (body.profile is None) == (body.emulate is None):
        raise InvalidRequest(
            "give exactly one of profile (the device's reading) or emulate (a preset name)"
        )
    if body.emulate is not None:
        if body.emulate not in preset_names():
            known = ", ".join(preset_names())
            raise InvalidRequest(f"unknown emulation preset {body.emulate!r}; known: {known}")
        try:
            device = await manager.register_device(
                body.device_id,
                body.device_name,
                auto_detect=True,
                profile=body.emulate,
                device_type=body.device_type,
                labels=body.labels,
            )
        except ConfigError as exc:
            raise InvalidRequest(exc.reason) from exc
    else:
        assert body.profile is not None
        device = await manager.register_device(
            body.device_id,
            body.device_name,
            auto_detect=False,
            profile=_profile(body.profile),
            device_type=body.device_type,
            labels=body.labels,
        )
    return _registered(manager, device)


@router.get("/v1/edge/devices/{device_id}", responses=errors(404))
async def device_status(device_id: DeviceId, request: Request, _: ReadTicket) -> dict[str, Any]:
    """Power mode, limits, readings and live deployments of one edge device."""
    return _edge(request).get_device_status(device_id)


@router.post("/v1/edge/devices/{device_id}/state", responses=errors(404, 413))
async def device_state(
    device_id: DeviceId, body: DeviceStateIn, request: Request, _: AdminTicket
) -> dict[str, Any]:
    """A device's fresh reading; returns what it triggered (power mode change, re-optimised
    deployments), one line per event."""
    manager = _edge(request)
    events = await manager.update_device_state(device_id, _profile(body.profile))
    return {"device_id": device_id, "events": events}


@router.get("/v1/edge/status")
async def edge_status(request: Request, _: ReadTicket) -> dict[str, Any]:
    """Edge devices by status and type, deployments by state, models, and the coordinator."""
    return _edge(request).get_system_status()


@router.post("/v1/deployments", status_code=201, responses=errors(404, 409, 413))
async def deploy(body: DeploymentIn, request: Request, _: AdminTicket) -> Deployed:
    """Deploy a model to an edge device; answers once it is ready (variant chosen, chunks
    transferred, SHA-256 verified, loaded in ONNX Runtime)."""
    manager = _edge(request)
    deployment_id = await manager.deploy_workload(
        body.device_id, body.model_id, body.deployment_type.value
    )
    return Deployed(deployment_id=deployment_id)


@router.get("/v1/deployments/{deployment_id}", responses=errors(404))
async def get_deployment(
    deployment_id: DeploymentId, request: Request, _: ReadTicket
) -> dict[str, Any]:
    """A deployment record with its transition history."""
    return _edge(request).get_deployment(deployment_id)


@router.delete("/v1/deployments/{deployment_id}", responses=errors(404, 409))
async def undeploy(deployment_id: DeploymentId, request: Request, _: AdminTicket) -> dict[str, Any]:
    """Remove a ready deployment (anything else → 409); answers the record, now ``removed``."""
    return await _edge(request).undeploy(deployment_id)
