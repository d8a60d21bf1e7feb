"""The HTTP side of ``EdgeManager``'s client mode: the coordinator's edge endpoints.

``EdgeManager(coordinator_url=...)`` (or ``FOGMESH_COORDINATOR``) sends every call here instead
of to an embedded coordinator. Errors come back as the ``FogmeshError`` types the coordinator
raised (``fogmesh.client.error_from_response``); a coordinator that cannot be reached is one
``TransportError``. No httpx exception leaves this module.

Each call opens its own connection: an ``EdgeManager`` may outlive the event loop it was first
used on (the README example never closes it), and a pooled ``AsyncClient`` is tied to one loop.
The synchronous status reads (``get_device_status`` and friends are synchronous in the seed's
API) use a blocking ``httpx.Client``; do not call them from the event loop that serves the
coordinator itself.
"""

from __future__ import annotations

import ssl
from typing import Any, Final
from urllib.parse import quote

import httpx

from fogmesh.client import answer_of
from fogmesh.errors import ConfigError, InvalidRequest, NotFound, TLSError, TransportError
from fogmesh.security.tls import client_context, refuse_plain_http, tls_error_in

__all__ = ["DEFAULT_TIMEOUT", "RemoteEdge", "segment"]

# A deployment answers once the model is transferred, verified and loaded: allow for that.
DEFAULT_TIMEOUT: Final = 120.0
_START_HINT: Final = "start one with `fogmesh coordinator`, or unset FOGMESH_COORDINATOR"


def segment(value: str, what: str) -> str:
    """An id as one URL path segment (a stray '/' or '?' must not reach another route)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"a {what} cannot be empty", field=what)
    return quote(value, safe="")


class RemoteEdge:
    """Calls to one coordinator's edge endpoints with one bearer ticket."""

    def __init__(
        self,
        url: str,
        ticket: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        fingerprint: bytes | None = None,
        insecure_http: bool = False,
    ) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ConfigError(
                f"not a usable coordinator URL {url!r}: {exc}", field="coordinator_url"
            ) from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(
                f"not a usable coordinator URL {url!r} (use http://host:port)",
                field="coordinator_url",
            )
        self.url = str(url).rstrip("/")
        refuse_plain_http(self.url, insecure_http=insecure_http, field="coordinator_url")
        self._headers = {"Authorization": f"Bearer {ticket}"}
        # One context for every call: loading it is the slow part of opening a connection.
        self._verify: ssl.SSLContext | bool = (
            client_context(fingerprint) if fingerprint is not None else True
        )
        self._timeout = timeout
        self._transport = transport
        self._async_transport = async_transport

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        not_found: type[NotFound] = NotFound,
    ) -> Any:
        try:
            async with httpx.AsyncClient(
                base_url=self.url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._async_transport,
                verify=self._verify,
            ) as http:
                response = await http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise self._transport_error(method, path, exc) from exc
        return answer_of(self.url, method, path, response, not_found=not_found)

    def request_sync(self, method: str, path: str, *, not_found: type[NotFound] = NotFound) -> Any:
        try:
            with httpx.Client(
                base_url=self.url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
                verify=self._verify,
            ) as http:
                response = http.request(method, path)
        except httpx.HTTPError as exc:
            raise self._transport_error(method, path, exc) from exc
        return answer_of(self.url, method, path, response, not_found=not_found)

    async def object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._dict(method, path, await self.request(method, path, **kwargs))

    def object_sync(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._dict(method, path, self.request_sync(method, path, **kwargs))

    # -- plumbing ---------------------------------------------------------------------------
    def _transport_error(
        self, method: str, path: str, exc: httpx.HTTPError
    ) -> TransportError | TLSError:
        tls = tls_error_in(exc, self.url)
        if tls is not None:
            return tls
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return TransportError(f"no coordinator at {self.url}; {_START_HINT}")
        return TransportError(
            f"coordinator at {self.url} did not answer {method} {path}: {exc or type(exc).__name__}"
        )

    def _dict(self, method: str, path: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TransportError(f"{self.url} answered {method} {path} with an unexpected shape")
        return value
