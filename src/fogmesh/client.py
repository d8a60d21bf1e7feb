"""``FogClient``: a small typed client of a running coordinator's REST API.

The CLI's ``submit``/``tasks``/``task``/``explain``/``devices``/``clusters`` commands are thin
wrappers over it. Errors come back as the same ``FogmeshError`` types the coordinator raised
(the wire carries ``{"error": {"code", "reason"}}``), and a coordinator that cannot be reached is
one ``TransportError`` that says how to start one; no httpx exception leaves this module.

Finding the coordinator (``connect``): an explicit URL, else ``FOGMESH_COORDINATOR``, else the
``coordinator.json`` a running coordinator writes into its data directory. The ticket: an
explicit one, else ``FOGMESH_TICKET``, else ``admin.ticket`` in that data directory. The
certificate pin (HTTPS with a self-signed certificate): an explicit fingerprint, else
``FOGMESH_FINGERPRINT``, else the one in ``coordinator.json`` when the URL is that file's.
Ticket and runtime files must be owner-only (``chmod 600``), like key files.

A ticket is never sent in clear across a network: an ``http://`` URL to a host other than this
machine is refused before anything is sent, unless ``insecure_http`` says the network is trusted.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx

from fogmesh import errors
from fogmesh.config import load_settings
from fogmesh.errors import (
    ConfigError,
    DeviceNotFound,
    FogmeshError,
    InvalidRequest,
    KeyFileError,
    NotFound,
    SchedulingError,
    StoreError,
    TaskNotFound,
    TicketError,
    TicketScopeError,
    TransportError,
)
from fogmesh.security.keyfile import read_private_file
from fogmesh.security.tls import (
    client_context,
    insecure_http_allowed,
    parse_fingerprint,
    refuse_plain_http,
    tls_error_in,
)

__all__ = [
    "TERMINAL_STATES",
    "FogClient",
    "WaitTimeout",
    "answer_of",
    "connect",
    "error_from_response",
    "find_coordinator",
    "find_fingerprint",
    "find_ticket",
    "read_runtime",
]

TERMINAL_STATES: Final = frozenset({"completed", "failed", "cancelled"})
BATCH_LIMIT: Final = 1000  # tasks per batch request (the server refuses more)
RUNTIME_FILE: Final = "coordinator.json"  # written by the coordinator service at start
TICKET_FILE: Final = "admin.ticket"
_START_HINT: Final = "start one with `fogmesh coordinator`"
# Pauses before sending a keyed submit again after the link failed (then the error is raised).
SUBMIT_RETRY_WAITS: Final = (0.2, 1.0, 3.0)


class WaitTimeout(FogmeshError):
    """A task did not finish within the time the caller was prepared to wait."""

    code = "wait_timeout"


def _error_classes() -> dict[str, type[FogmeshError]]:
    found: dict[str, type[FogmeshError]] = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, FogmeshError):
            found.setdefault(cls.code, cls)
    return found


_BY_CODE: Final = _error_classes()
# When the coordinator answers with a code this client does not know (a newer server), the HTTP
# status still says which family of error it is.
_BY_STATUS: Final[dict[int, type[FogmeshError]]] = {
    401: TicketError,
    403: TicketScopeError,
    404: NotFound,
    409: SchedulingError,
    413: InvalidRequest,
    422: InvalidRequest,
    503: StoreError,  # the coordinator's store is failing: retry after Retry-After
}


def answer_of(
    url: str,
    method: str,
    path: str,
    response: httpx.Response,
    *,
    not_found: type[NotFound] = NotFound,
) -> Any:
    """A coordinator's JSON answer, or the ``FogmeshError`` its error response stands for."""
    if response.is_error:
        raise error_from_response(response, not_found=not_found)
    try:
        return response.json()
    except ValueError as exc:
        raise TransportError(
            f"{url} answered {method} {path} with something other than JSON; "
            "is it a fogmesh coordinator?"
        ) from exc


def error_from_response(
    response: httpx.Response, *, not_found: type[NotFound] = NotFound
) -> FogmeshError:
    """The ``FogmeshError`` an error response stands for. ``not_found`` refines a bare 404
    (an id the route did not know) into the resource's own error, e.g. ``TaskNotFound``."""
    code: str | None = None
    reason: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        raw_code, raw_reason = body["error"].get("code"), body["error"].get("reason")
        code = raw_code if isinstance(raw_code, str) else None
        reason = raw_reason if isinstance(raw_reason, str) else None
    status = response.status_code
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or FogmeshError
    if cls is NotFound:
        cls = not_found
    if reason is None:
        reason = f"coordinator answered HTTP {status} {response.reason_phrase}".rstrip()
    elif status in (401, 403):
        reason = f"{reason} (pass --ticket, or set FOGMESH_TICKET)"
    return cls(reason, status=status)


class FogClient:
    """A synchronous client of one coordinator; use it as a context manager or ``close()`` it."""

    def __init__(
        self,
        url: str,
        ticket: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        fingerprint: bytes | str | None = None,
        insecure_http: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        if ticket:
            refuse_plain_http(self.url, insecure_http=insecure_http)
        headers = {"Authorization": f"Bearer {ticket}"} if ticket else {}
        if isinstance(fingerprint, str):
            fingerprint = parse_fingerprint(fingerprint)
        try:
            self._http = httpx.Client(
                base_url=self.url,
                headers=headers,
                timeout=timeout,
                transport=transport,
                # Without a pin httpx verifies against its CA bundle, as it always did.
                verify=client_context(fingerprint) if fingerprint is not None else True,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise ConfigError(f"not a usable URL {url!r}: {exc}", field="--url") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FogClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API ----------------------------------------------------------------------------
    def submit(
        self,
        task_type: str,
        *,
        priority: str = "normal",
        cpu_cores: float = 1.0,
        memory_mb: int = 256,
        estimated_duration: float = 60.0,
        requires_gpu: bool = False,
        payload: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        max_attempts: int = 3,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit a task; ``{"task_id", "state"}`` once the coordinator has stored it.
        ``deadline`` is in epoch seconds.

        The task carries an idempotency key (``idempotency_key``, else a random one), so a
        request whose answer was lost is sent again and the coordinator stores the task once.
        Pass your own key to make a retry of this call safe as well."""
        body: dict[str, Any] = {
            "type": task_type,
            "priority": priority,
            "cpu_cores": cpu_cores,
            "memory_mb": memory_mb,
            "estimated_duration": estimated_duration,
            "requires_gpu": requires_gpu,
            "max_attempts": max_attempts,
        }
        if payload is not None:
            body["payload"] = dict(payload)
        if constraints is not None:
            body["constraints"] = dict(constraints)
        if deadline is not None:
            body["deadline"] = deadline
        body["idempotency_key"] = idempotency_key or _new_key()
        return self._submit("/v1/tasks", body)

    def submit_many(self, tasks: Sequence[Mapping[str, Any]]) -> list[str]:
        """Submit many tasks; their ids, in order, once all are stored.

        Each item is a ``POST /v1/tasks`` body (``{"type": ..., "payload": ...}``). They travel
        1,000 to a request; each request is all or none, so on an error the ids of the requests
        that went before are already stored (the error says which task was refused).

        Every task carries an idempotency key (its ``idempotency_key``, else a random one), so
        a request whose answer was lost is sent again and stores each task once. Give each
        item its own key to make a retry of this whole call safe as well.
        """
        ids: list[str] = []
        items = [{**t, "idempotency_key": t.get("idempotency_key") or _new_key()} for t in tasks]
        for start in range(0, len(items), BATCH_LIMIT):
            reply = self._submit("/v1/tasks/batch", {"tasks": items[start : start + BATCH_LIMIT]})
            got = reply.get("task_ids")
            if not isinstance(got, list):
                raise TransportError(f"{self.url} answered a batch submit without task ids")
            ids += [str(i) for i in got]
        return ids

    def tasks(
        self, state: str | None = None, limit: int = 100, after: str | None = None
    ) -> list[dict[str, Any]]:
        """Tasks in creation order (one page of at most ``limit``, after the id ``after``)."""
        params: dict[str, str | int] = {"limit": limit}
        if state is not None:
            params["state"] = state
        if after is not None:
            params["after"] = after
        return self._list("GET", "/v1/tasks", "tasks", params=params)

    def task(self, task_id: str) -> dict[str, Any]:
        """The task as stored, with its attempt history."""
        return self._object("GET", f"/v1/tasks/{_segment(task_id)}", not_found=TaskNotFound)

    def artefact(self, task_id: str) -> bytes:
        """The JSON bytes of a completed task's result that was stored as an artefact (results
        over 1 MiB); its ``result.artefact`` has the SHA-256 and size."""
        try:
            response = self._http.get(f"/v1/tasks/{_segment(task_id)}/artefact")
        except httpx.HTTPError as exc:
            raise tls_error_in(exc, self.url) or TransportError(
                f"cannot reach the coordinator at {self.url}: {exc}"
            ) from exc
        if response.status_code != 200:
            raise error_from_response(response)
        return response.content

    def cancel(self, task_id: str, reason: str = "cancelled by request") -> dict[str, Any]:
        """Cancel a live task (its device is told to stop it); the task as it now stands."""
        return self._object(
            "POST",
            f"/v1/tasks/{_segment(task_id)}/cancel",
            json={"reason": reason},
            not_found=TaskNotFound,
        )

    def explain(self, task_id: str) -> dict[str, Any]:
        """The scheduler's reasons for where the task is, or why it is nowhere yet."""
        return self._object("GET", f"/v1/tasks/{_segment(task_id)}/explain", not_found=TaskNotFound)

    def devices(self) -> list[dict[str, Any]]:
        return self._list("GET", "/v1/devices", "devices")

    def device(self, device_id: str) -> dict[str, Any]:
        return self._object("GET", f"/v1/devices/{_segment(device_id)}", not_found=DeviceNotFound)

    def drain(self, device_id: str, draining: bool = True) -> dict[str, Any]:
        """Stop placing new work on a device (its running work finishes), or with
        ``draining=False`` let it take work again; the device as it now stands."""
        return self._object(
            "POST",
            f"/v1/devices/{_segment(device_id)}/drain",
            json={"draining": draining},
            not_found=DeviceNotFound,
        )

    def remove_device(self, device_id: str) -> None:
        """Forget a device; its leased tasks go back to the queue."""
        self._request(
            "DELETE", f"/v1/devices/{_segment(device_id)}", not_found=DeviceNotFound, empty=True
        )

    def create_token(self, ttl: float = 3600.0, url: str | None = None) -> dict[str, Any]:
        """A one-use join token (``{"token", "id", "expires_at"}``)."""
        body: dict[str, Any] = {"ttl": ttl}
        if url is not None:
            body["url"] = url
        return self._object("POST", "/v1/tokens", json=body)

    def tokens(self, include_expired: bool = False) -> list[dict[str, Any]]:
        """Join tokens issued with the coordinator's keys, with their state."""
        params: dict[str, str | int] = {"all": "true"} if include_expired else {}
        return self._list("GET", "/v1/tokens", "tokens", params=params)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Make an unused join token unusable; the token's record as it now stands."""
        return self._object("DELETE", f"/v1/tokens/{_segment(token_id)}")

    def status(self) -> dict[str, Any]:
        """Tasks by state, queue by priority, devices, utilisation and clusters."""
        return self._object("GET", "/v1/status")

    def wait(
        self,
        task_id: str,
        timeout: float = 300.0,
        *,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 1.0,
    ) -> dict[str, Any]:
        """Wait until the task is completed, failed or cancelled; ``WaitTimeout`` after
        ``timeout`` seconds. Long-polls the coordinator (``GET /v1/tasks/{id}?wait=``), so the
        answer comes the moment the task ends; ``on_poll`` sees the task every ``poll``
        seconds meanwhile (progress bars)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            hold = max(0.0, min(poll, remaining))
            task = self._object("GET", f"/v1/tasks/{_segment(task_id)}", params={"wait": hold})
            if on_poll is not None:
                on_poll(task)
            if task.get("state") in TERMINAL_STATES:
                return task
            if deadline - time.monotonic() <= 0:
                raise WaitTimeout(
                    f"task {task_id} is still {task.get('state')} after {timeout:g} s "
                    f"(see `fogmesh explain {task_id}`)",
                    task_id=task_id,
                    state=task.get("state"),
                )

    # -- plumbing ---------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        not_found: type[NotFound] = NotFound,
        empty: bool = False,
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            tls = tls_error_in(exc, self.url)
            if tls is not None:
                raise tls from exc
            raise TransportError(f"no coordinator at {self.url}; {_START_HINT}") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(
                f"not a usable URL {self.url!r} (use http://host:port)", field="--url"
            ) from exc
        except httpx.HTTPError as exc:
            hint = ""
            if isinstance(exc, httpx.RemoteProtocolError) and self.url.startswith("http:"):
                hint = " (does it serve HTTPS? then use https://)"
            raise TransportError(
                f"coordinator at {self.url} did not answer {method} {path}: "
                f"{exc or type(exc).__name__}{hint}"
            ) from exc
        if empty and response.status_code == 204:
            return None
        return answer_of(self.url, method, path, response, not_found=not_found)

    def _submit(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a keyed submit, sending it again when the link fails before an answer: the
        keys make a repeat store nothing new. A refusal (an answer) is never retried."""
        for wait in (*SUBMIT_RETRY_WAITS, None):
            try:
                return self._object("POST", path, json=body)
            except TransportError as exc:
                cause = exc.__cause__
                lost = isinstance(cause, httpx.HTTPError) and not isinstance(
                    cause, httpx.ConnectError | httpx.ConnectTimeout
                )  # sent, maybe stored, no answer (no coordinator at all: said at once)
                if wait is None or not lost:
                    raise
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        value = self._request(method, path, **kwargs)
        if not isinstance(value, dict):
            raise TransportError(f"{self.url} answered {method} {path} with an unexpected shape")
        return value

    def _list(self, method: str, path: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items = self._object(method, path, **kwargs).get(key)
        if not isinstance(items, list):
            raise TransportError(f"{self.url} answered {method} {path} without a {key!r} list")
        return items


def _new_key() -> str:
    # 128 random bits in 22 characters: no two clients' keys meet, and a key costs the request
    # and the coordinator's key index little.
    return secrets.token_urlsafe(16)


def _segment(item_id: str) -> str:
    # An id is one path segment; quoting keeps a stray "/" or "?" from reaching another route.
    if not item_id:
        raise InvalidRequest("an id cannot be empty", field="id")
    return quote(item_id, safe="")


def find_coordinator(url: str | None = None, data_dir: Path | None = None) -> str:
    """The coordinator's URL: ``url``, else ``FOGMESH_COORDINATOR``, else the data directory's
    ``coordinator.json``; a ``ConfigError`` naming all three when none gives one."""
    if url:
        return url
    settings = load_settings(home=data_dir)
    if settings.coordinator:
        return settings.coordinator
    runtime = settings.home / RUNTIME_FILE
    info = read_runtime(runtime)
    if info is None:
        raise TransportError(
            f"no coordinator found: no {runtime} (pass --url or set FOGMESH_COORDINATOR, "
            f"or {_START_HINT})"
        )
    found = info.get("url")
    if not isinstance(found, str) or not found:
        raise ConfigError(f"{runtime} has no coordinator URL", field="--data-dir")
    return found


def read_runtime(runtime: Path) -> dict[str, Any] | None:
    """The running coordinator's ``coordinator.json``, None if there is none. It names the
    server the CLI sends its admin ticket to, so it is held to the owner-only rule."""
    try:
        raw = read_private_file(runtime, what="coordinator runtime file")
    except FileNotFoundError:
        return None
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"cannot read {runtime}: {exc}", field="--data-dir") from exc
    if not isinstance(info, dict):
        raise ConfigError(f"cannot read {runtime}: not a JSON object", field="--data-dir")
    return info


def find_fingerprint(
    url: str, fingerprint: str | None = None, data_dir: Path | None = None
) -> bytes | None:
    """The certificate pin for ``url``: ``fingerprint``, else ``FOGMESH_FINGERPRINT``, else the
    data directory's ``coordinator.json`` when it describes ``url`` (the coordinator on this
    machine); None means the CA store verifies (or the URL is plain http)."""
    if fingerprint:
        return parse_fingerprint(fingerprint)
    from_env = os.environ.get("FOGMESH_FINGERPRINT", "").strip()
    if from_env:
        return parse_fingerprint(from_env, field="FOGMESH_FINGERPRINT")
    if not url.startswith("https:"):
        return None
    runtime = load_settings(home=data_dir).home / RUNTIME_FILE
    try:
        info = read_runtime(runtime)
    except (ConfigError, KeyFileError):
        return None  # find_coordinator reports a damaged file when it is the one to use
    if info is None or str(info.get("url", "")).rstrip("/") != url.rstrip("/"):
        return None
    saved = info.get("fingerprint")
    if not isinstance(saved, str) or not info.get("self_signed", True):
        return None
    return parse_fingerprint(saved, field=str(runtime))


def find_ticket(ticket: str | None = None, data_dir: Path | None = None) -> str:
    """The bearer ticket: ``ticket``, else ``FOGMESH_TICKET``, else ``admin.ticket`` in the
    data directory (readable only on the coordinator's machine, by its user)."""
    if ticket:
        return ticket.strip()
    from_env = os.environ.get("FOGMESH_TICKET", "").strip()
    if from_env:
        return from_env
    path = load_settings(home=data_dir).home / TICKET_FILE
    try:
        text = read_private_file(path, what="ticket file").decode("ascii").strip()
    except FileNotFoundError:
        text = ""
    except UnicodeDecodeError as exc:
        raise TicketError(f"cannot read the admin ticket {path}: {exc}") from exc
    if not text:
        raise TicketError(
            f"no ticket: pass --ticket, set FOGMESH_TICKET, or use --data-dir of the "
            f"coordinator (no {path})"
        )
    return text


def connect(
    url: str | None = None,
    ticket: str | None = None,
    data_dir: Path | None = None,
    *,
    timeout: float = 10.0,
    fingerprint: str | None = None,
    insecure_http: bool = False,
) -> FogClient:
    """A client of the coordinator found as ``find_coordinator``, ``find_ticket`` and
    ``find_fingerprint`` say. ``insecure_http`` (or ``FOGMESH_INSECURE_HTTP=1``) allows a ticket
    over plain http to another machine."""
    found = find_coordinator(url, data_dir)
    pin = find_fingerprint(found, fingerprint, data_dir)
    insecure = insecure_http or insecure_http_allowed()
    return FogClient(
        found,
        find_ticket(ticket, data_dir),
        timeout=timeout,
        fingerprint=pin,
        insecure_http=insecure,
    )
