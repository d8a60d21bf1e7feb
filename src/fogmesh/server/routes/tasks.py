"""``/v1/tasks``: submit (one or a batch), list, read (optionally long-polling), cancel, explain."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from fogmesh.devices.model import DeviceType
from fogmesh.errors import NotFound
from fogmesh.fog.tasks import MODEL_ID_PATTERN, Task, TaskState, TaskType
from fogmesh.server._json import SafeJSONResponse, StrictJsonRoute, safe_value
from fogmesh.server._openapi import AUTHENTICATED, END, Bool, Integer, Number, errors
from fogmesh.server.auth import ReadTicket, SubmitTicket

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/tasks", tags=["tasks"], route_class=StrictJsonRoute, responses=AUTHENTICATED
)

TaskId = Annotated[str, Path(min_length=1, max_length=64, description="task id (ULID)")]
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, regex_engine="python-re")


MODEL_ID_SCHEMA_PATTERN = "^" + MODEL_ID_PATTERN.pattern + END
FUNCTION_SCHEMA_PATTERN = (
    r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*" + END
)
_MODEL_ID_TEXT = "a model id: letters, digits, '.', '_', '-', starting with a letter or digit"


class PythonPayloadIn(BaseModel):
    model_config = _STRICT
    type: Literal["python"]
    # The patterns are the coordinator's own rules (fog.tasks), stated for clients; the
    # coordinator checks them, so the 422 names the rule in words.
    function: str = Field(
        min_length=3,
        max_length=300,
        description="module:function, public dotted ASCII names (no leading '_')",
        json_schema_extra={"pattern": FUNCTION_SCHEMA_PATTERN},
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments: JSON nested at most 32 levels, at most 1 MiB encoded",
    )


class ModelPayloadIn(BaseModel):
    model_config = _STRICT
    type: Literal["model"]
    model_id: str = Field(
        min_length=1,
        max_length=200,  # the pattern says 128: the coordinator's words for a longer one
        description=_MODEL_ID_TEXT,
        json_schema_extra={"pattern": MODEL_ID_SCHEMA_PATTERN},
    )
    input: Any = Field(
        default=None, description="JSON nested at most 32 levels, at most 1 MiB encoded"
    )


class CommandPayloadIn(BaseModel):
    model_config = _STRICT
    type: Literal["command"]
    argv: list[str] = Field(min_length=1, max_length=1000)


class ConstraintsIn(BaseModel):
    model_config = _STRICT
    device_types: list[DeviceType] | None = Field(default=None, min_length=1)
    min_battery_percent: Annotated[Number, Field(ge=0, le=100)] | None = None
    requires_charging: Bool = False
    requires_unmetered: Bool = False
    requires_model: str | None = Field(
        default=None,
        max_length=200,  # the pattern says 128: the coordinator's words for a longer one
        description=_MODEL_ID_TEXT,
        json_schema_extra={"pattern": MODEL_ID_SCHEMA_PATTERN},
    )
    site: str | None = Field(default=None, max_length=200)


class TaskSubmit(BaseModel):
    model_config = _STRICT
    type: TaskType
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    cpu_cores: Number = Field(default=1.0, gt=0, le=1024)
    memory_mb: Integer = Field(default=256, gt=0, le=1 << 24)
    estimated_duration: Number = Field(default=60.0, gt=0, le=7 * 86_400)
    requires_gpu: Bool = False
    payload: PythonPayloadIn | ModelPayloadIn | CommandPayloadIn | None = Field(
        default=None, discriminator="type"
    )
    constraints: ConstraintsIn | None = None
    deadline: Annotated[Number, Field(gt=0)] | None = Field(
        default=None,
        description="epoch seconds; must still be ahead when the task arrives (a deadline "
        "already past is refused with 422: JSON Schema cannot compare with the clock)",
    )
    max_attempts: Integer = Field(default=3, ge=1, le=100)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="A key of the client's choosing (e.g. a UUID), unique per task: a submit "
        "repeated with the same key and the same spec stores nothing and answers the task "
        "the key's first submit stored (keys are held 24 h); the same key with a different "
        "spec is refused with 409 `idempotency_conflict`.",
    )


class Submitted(BaseModel):
    task_id: str
    state: str


MAX_BATCH = 1000


class TaskBatch(BaseModel):
    model_config = _STRICT
    tasks: list[TaskSubmit] = Field(min_length=1, max_length=MAX_BATCH)


class SubmittedBatch(BaseModel):
    task_ids: list[str]
    state: str


class CancelIn(BaseModel):
    model_config = _STRICT
    reason: str = Field(default="cancelled by request", max_length=500)


def task_json(task: Task) -> dict[str, Any]:
    """The task as JSON-ready builtins; a stored value too deep to render becomes a marker."""
    value: dict[str, Any] = msgspec.to_builtins(task)
    payload = value.get("payload")
    if isinstance(payload, dict):
        for key in ("args", "input"):
            if key in payload:
                payload[key] = safe_value(payload[key])
    for key in ("result", "error"):
        value[key] = safe_value(value.get(key))
    return value


def _spec(body: TaskSubmit) -> dict[str, Any]:
    return {
        "task_type": body.type,
        "priority": body.priority,
        "cpu_cores": body.cpu_cores,
        "memory_mb": body.memory_mb,
        "estimated_duration": body.estimated_duration,
        "requires_gpu": body.requires_gpu,
        "payload": None if body.payload is None else body.payload.model_dump(),
        "deadline": body.deadline,
        "constraints": None
        if body.constraints is None
        else body.constraints.model_dump(exclude_none=True),
        "max_attempts": body.max_attempts,
        "idempotency_key": body.idempotency_key,
    }


@router.post("", status_code=201, response_model=Submitted, responses=errors(409, 413))
async def submit(body: TaskSubmit, request: Request, _: SubmitTicket) -> Submitted:
    """Accept a task; answers once it is durable. With an ``idempotency_key`` the key's
    first submit is answered again (same task id) and nothing new is stored."""
    coordinator = request.app.state.service.coordinator
    task_id = await coordinator.submit_task(**_spec(body))
    return Submitted(task_id=task_id, state="pending")


@router.post("/batch", status_code=201, response_model=SubmittedBatch, responses=errors(409, 413))
async def submit_batch(body: TaskBatch, request: Request, _: SubmitTicket) -> SubmittedBatch:
    """Accept up to 1,000 tasks at once, all or none; answers once all are durable. Ids come
    back in the order given. A task whose ``idempotency_key`` is held is not stored again:
    its place holds the id of the task stored under that key, so a batch retried after a lost
    reply (or with only some tasks new) stores each task once. One key twice in a batch: 422."""
    coordinator = request.app.state.service.coordinator
    ids = await coordinator.submit_tasks([_spec(t) for t in body.tasks])
    return SubmittedBatch(task_ids=ids, state="pending")


@router.get("")
async def list_tasks(
    request: Request,
    _: ReadTicket,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Tasks in creation order; page with ``after`` = the last id of the previous page."""
    store = request.app.state.service.coordinator.store
    tasks = await store.list_tasks(state, limit=limit, after=after)
    return SafeJSONResponse(
        {"tasks": [task_json(t) for t in tasks], "next": tasks[-1].id if tasks else None}
    )


@router.get("/{task_id}", responses=errors(404))
async def get_task(
    task_id: TaskId,
    request: Request,
    _: ReadTicket,
    wait: Annotated[
        float,
        Query(ge=0, le=60, description="long poll: answer when the task ends or after this many s"),
    ] = 0.0,
) -> Any:
    """The task as stored, with its attempt history. With ``wait``, the answer comes as soon as
    the task is completed, failed or cancelled, or after ``wait`` seconds as it then stands."""
    coordinator = request.app.state.service.coordinator
    if wait > 0:
        with contextlib.suppress(TimeoutError):
            return SafeJSONResponse(task_json(await coordinator.wait_for(task_id, timeout=wait)))
    return SafeJSONResponse(task_json(await coordinator.get_task(task_id)))


@router.get("/{task_id}/artefact", response_class=FileResponse, responses=errors(404))
async def get_artefact(task_id: TaskId, request: Request, _: ReadTicket) -> FileResponse:
    """A completed task's result that was too large to store inline (JSON; its SHA-256 and size
    are in the task's ``result.artefact``)."""
    service = request.app.state.service
    await service.coordinator.get_task(task_id)  # unknown task → 404 task_not_found
    if service.artefacts is None:
        raise NotFound(f"task {task_id} has no artefact")
    path = service.artefacts.path(task_id)
    return FileResponse(path, media_type="application/json", filename=f"{task_id}.json")


@router.post("/{task_id}/cancel", responses=errors(404, 409, 413))
async def cancel(
    task_id: TaskId,
    request: Request,
    _: SubmitTicket,
    body: CancelIn | None = None,
) -> Any:
    """Cancel a live task; its device is told to stop."""
    service = request.app.state.service
    return SafeJSONResponse(
        task_json(await service.cancel_task(task_id, (body or CancelIn()).reason))
    )


@router.get("/{task_id}/explain", responses=errors(404))
async def explain(task_id: TaskId, request: Request, _: ReadTicket) -> Any:
    """Why the task is where it is (or why it is nowhere yet)."""
    return request.app.state.service.coordinator.explain(task_id)
