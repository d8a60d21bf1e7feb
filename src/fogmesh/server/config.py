"""Settings of one coordinator service process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fogmesh.errors import ConfigError
from fogmesh.fog.coordinator import CoordinatorConfig
from fogmesh.security.tls import is_loopback

__all__ = ["ADMIN_TICKET_FILE", "STORE_RETRY_AFTER_S", "ServerConfig"]

ADMIN_TICKET_FILE = "admin.ticket"
# What a client is told to wait (Retry-After) after a 503 from a failing store: long enough for
# PostgreSQL to restart or a disk to be freed, short enough that a retrying client sees recovery.
STORE_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8700
    db_url: str | None = None  # None: SQLite in data_dir
    coordinator: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    max_body_bytes: int = 2 << 20  # a 1 MiB payload as JSON plus headroom
    agent_ticket_ttl: float = 30 * 86_400.0
    # The admin ticket in the data dir: 30 days, renewed (at start, then hourly while running)
    # when under a week is left, or by `fogmesh ticket renew-admin`; narrower tickets come from
    # `fogmesh ticket create`.
    admin_ticket_ttl: float = 30 * 86_400.0
    admin_ticket_renew_before: float = 7 * 86_400.0
    admin_ticket_check_interval: float = 3600.0  # how often a running coordinator checks it
    public_url: str | None = None  # the URL written into join tokens; default http://host:port
    knowledge_k: int = 10  # k-anonymity threshold of the global knowledge store
    # Handshake steps the agent endpoint works on at once; registrations go first (see
    # server/_admission.py). A step is CPU work of about a millisecond, plus the enrolment's
    # commit: a few keep the event loop busy without making registered devices wait.
    handshakes_at_once: int = 4
    # HTTPS (docs/security.md): on by default whenever the bind address is not loopback, so a
    # ticket never crosses a network in clear; on loopback plain HTTP stays (nothing leaves the
    # machine) unless ``tls`` asks for it. ``insecure_http`` is the explicit, logged opt-out.
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_names: tuple[str, ...] = ()  # extra names/addresses for the self-signed certificate
    insecure_http: bool = False
    # A client has this long from connecting (or from the first byte of its next request) to
    # finish sending a request's headers; then it gets 408 and is closed (see server/_http.py).
    header_timeout: float = 10.0
    # Open connections (REST and agent WebSockets together) beyond which new ones get 503 and
    # are closed; a fleet needs one per agent, so size it above the fleet (and below ulimit -n).
    max_connections: int = 10_000

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65_535:
            raise ConfigError("must be 0–65535", field="port")
        if isinstance(self.knowledge_k, bool) or not (
            isinstance(self.knowledge_k, int) and self.knowledge_k >= 2
        ):
            raise ConfigError("must be an integer ≥ 2", field="knowledge_k")
        if self.max_body_bytes < 1024:
            raise ConfigError("must be at least 1024", field="max_body_bytes")
        if not (isinstance(self.header_timeout, int | float) and 0 < self.header_timeout <= 3600):
            raise ConfigError("must be > 0 and ≤ 3600 seconds", field="header_timeout")
        if isinstance(self.max_connections, bool) or not (
            isinstance(self.max_connections, int) and self.max_connections >= 1
        ):
            raise ConfigError("must be an integer ≥ 1", field="max_connections")
        if isinstance(self.handshakes_at_once, bool) or not (
            isinstance(self.handshakes_at_once, int) and self.handshakes_at_once >= 1
        ):
            raise ConfigError("must be an integer ≥ 1", field="handshakes_at_once")
        if self.insecure_http and (self.tls or self.tls_cert is not None):
            raise ConfigError(
                "cannot be combined with --tls or --tls-cert", field="--insecure-http"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither", field="--tls-cert")
        if self.uses_tls and self.public_url and not self.public_url.startswith(("https:", "wss:")):
            raise ConfigError(
                f"{self.public_url!r} is not https://, but this coordinator serves HTTPS",
                field="--url",
            )

    @property
    def uses_tls(self) -> bool:
        """Whether the coordinator serves HTTPS (see the field comments above)."""
        if self.tls or self.tls_cert is not None:
            return True
        return not self.insecure_http and not is_loopback(self.host)

    @property
    def url(self) -> str:
        scheme = "https" if self.uses_tls else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"

    @property
    def heartbeat_interval(self) -> float:
        return self.coordinator.lifecycle.heartbeat_interval
