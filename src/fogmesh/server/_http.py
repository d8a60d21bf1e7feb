"""uvicorn's HTTP/1.1 protocol with a deadline for request headers and a cap on connections.

uvicorn closes a keep-alive connection that stays idle between requests, but it gives a client
unlimited time to send a request's headers: a connection that sends half a request line (or
nothing) is held open forever, and a few thousand of them exhaust the process's file
descriptors while everyone else waits (slowloris). uvicorn has no setting for this, so the
protocol class it is given (``uvicorn.Config(http=...)``) adds two rules:

* **header deadline**: from the moment a connection opens, and from the first byte of each next
  request on a kept-alive connection, the request line and headers must be complete within
  ``header_timeout`` seconds, or the connection is answered ``408`` and closed. Time spent on the
  body and on the response is not counted (bodies are bounded by the body limit, and the work
  by the route itself).
* **connection cap**: while ``max_connections`` connections are open (HTTP and agent WebSockets
  together), a new one is answered ``503`` with ``Retry-After`` and closed at once, before any
  work is done for it.

The parser (httptools, else h11) is uvicorn's own; the completed headers are detected by the
protocol starting a new request cycle, which both of uvicorn's implementations do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final, cast

from uvicorn.protocols.http.auto import AutoHTTPProtocol

if TYPE_CHECKING:
    # Checked as the httptools protocol; at run time a mixin over either of uvicorn's (both
    # have the attributes used here).
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
else:
    _Base = object

__all__ = ["guarded_http_protocol"]

log = logging.getLogger(__name__)


def _reply(status: bytes, text: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 " + status, b"content-type: text/plain; charset=utf-8", *extra]
    head += [b"content-length: %d" % len(text), b"connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + text


_TIMEOUT_REPLY: Final = _reply(b"408 Request Timeout", b"request headers were not sent in time\n")
_FULL_REPLY: Final = _reply(
    b"503 Service Unavailable", b"too many connections; retry shortly\n", b"retry-after: 5"
)


_last_warning = [-1e9]


def _warn_turned_away(now: float, cap: int) -> None:
    # Once a minute at most: under a flood this line would otherwise be the flood.
    if now - _last_warning[0] >= 60.0:
        _last_warning[0] = now
        log.warning("%d connections open: turning new ones away (--max-connections)", cap)


class _Guarded(_Base):
    """Mixed into uvicorn's HTTP protocol class (httptools' or h11's); see the module doc."""

    header_timeout: float = 10.0
    max_connections: int = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._turned_away = False
        self._upgraded = False  # the connection is a WebSocket's now: no more headers to time

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        if len(self.server_state.connections) >= self.max_connections:
            self._turned_away = True
            _warn_turned_away(self.loop.time(), self.max_connections)
            writer.write(_FULL_REPLY)
            writer.close()
            return
        super().connection_made(writer)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._turned_away:
            return
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._turned_away or self._upgraded:
            return
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are complete
            self._disarm_header_timer()
        elif (
            self._header_timer is None
            and not self._upgraded  # set inside the call above when these bytes upgraded it
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self._arm_header_timer()  # the first bytes of the next request on this connection

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._upgraded = True
        self._disarm_header_timer()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade(*args)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.debug("closing %s: headers not complete in %s s", self.client, self.header_timeout)
            self.transport.write(_TIMEOUT_REPLY)
            self.transport.close()


def guarded_http_protocol(
    *,
    header_timeout: float,
    max_connections: int,
    base: type[asyncio.Protocol] = AutoHTTPProtocol,
) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)`` for these limits; ``base`` is
    uvicorn's protocol it extends (httptools' when installed, else h11's)."""
    return type(
        "GuardedHTTPProtocol",
        (_Guarded, base),
        {"header_timeout": float(header_timeout), "max_connections": int(max_connections)},
    )
