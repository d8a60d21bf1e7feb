"""The one exception tree of fogmesh.

    FogmeshError                      code, reason (safe to show a user; never key material)
    ├── ConfigError                   bad configuration, policy, profile file (names the field)
    ├── InvalidRequest                a malformed or out-of-range request from a caller
    │   └── IdempotencyConflict       an idempotency key reused for a different task
    ├── NotFound                      an unknown id
    │   ├── DeviceNotFound
    │   ├── TaskNotFound
    │   └── ModelNotFound
    ├── DeviceError                   a device cannot be read, classified or reached
    ├── SchedulingError               placement is impossible or a lifecycle rule was broken
    │   ├── IllegalTransition         task state change not allowed (state unchanged)
    │   └── StaleAttempt              a result/status from a fenced-off (older) attempt
    ├── StoreError                    the durable store failed or holds something unreadable
    │   └── MigrationError
    ├── SecurityError                 (messages never carry keys or plaintext)
    │   ├── HandshakeError            Noise handshake failed (wrong key, bad frame, unbound key)
    │   ├── FrameError                transport frame tampered, truncated, reordered or too big
    │   ├── TicketError               PASETO ticket invalid
    │   │   ├── TicketExpired
    │   │   ├── TicketNotYetValid
    │   │   ├── TicketScopeError
    │   │   └── TicketAudienceError
    │   ├── ReplayError               a counter, nonce or one-shot id seen before
    │   ├── IntegrityError            sealed data or signature failed verification
    │   ├── KeyFileError              key file missing, corrupt or readable by others
    │   ├── TokenError                a join token is damaged (says which part)
    │   └── TLSError                  a server's certificate is not the pinned one, or untrusted
    ├── TransportError                a link or mesh could not carry a message
    └── TwinError
        ├── ConsentError              a source without the owner's consent
        └── PrivacyBudgetExceeded     a release would exceed the differential-privacy budget

Third-party exceptions are translated at the edge with ``raise ... from exc``. Across the wire an
error travels as a value: ``{"code": err.code, "reason": err.reason}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "ConsentError",
    "DeviceError",
    "DeviceNotFound",
    "FogmeshError",
    "FrameError",
    "HandshakeError",
    "IdempotencyConflict",
    "IllegalTransition",
    "IntegrityError",
    "InvalidRequest",
    "KeyFileError",
    "MigrationError",
    "ModelNotFound",
    "NotFound",
    "PrivacyBudgetExceeded",
    "ReplayError",
    "SchedulingError",
    "SecurityError",
    "StaleAttempt",
    "StoreError",
    "TLSError",
    "TaskNotFound",
    "TicketAudienceError",
    "TicketError",
    "TicketExpired",
    "TicketNotYetValid",
    "TicketScopeError",
    "TokenError",
    "TransportError",
    "TwinError",
]


class FogmeshError(Exception):
    """Base of every error fogmesh raises on purpose."""

    code: ClassVar[str] = "error"

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details

    def to_value(self) -> dict[str, Any]:
        """The error as a wire value (never a traceback)."""
        value: dict[str, Any] = {"code": self.code, "reason": self.reason}
        if self.details:
            value["details"] = self.details
        return value


class ConfigError(FogmeshError):
    """Configuration, policy or profile value is invalid; ``field`` names it."""

    code = "config_error"

    def __init__(self, reason: str, *, field: str | None = None, **details: Any) -> None:
        if field is not None and not reason.startswith(field):
            reason = f"{field}: {reason}"
        super().__init__(reason, **details)
        self.field = field


class InvalidRequest(FogmeshError):
    code = "invalid_request"


class IdempotencyConflict(InvalidRequest):
    code = "idempotency_conflict"


class NotFound(FogmeshError):
    code = "not_found"


class DeviceNotFound(NotFound):
    code = "device_not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class DeviceError(FogmeshError):
    code = "device_error"


class SchedulingError(FogmeshError):
    code = "scheduling_error"


class IllegalTransition(SchedulingError):
    code = "illegal_transition"


class StaleAttempt(SchedulingError):
    code = "stale_attempt"


class StoreError(FogmeshError):
    code = "store_error"


class MigrationError(StoreError):
    code = "migration_error"


class SecurityError(FogmeshError):
    code = "security_error"


class HandshakeError(SecurityError):
    code = "handshake_failed"


class FrameError(SecurityError):
    code = "bad_frame"


class TicketError(SecurityError):
    code = "bad_ticket"


class TicketExpired(TicketError):
    code = "ticket_expired"


class TicketNotYetValid(TicketError):
    code = "ticket_not_yet_valid"


class TicketScopeError(TicketError):
    code = "ticket_scope"


class TicketAudienceError(TicketError):
    code = "ticket_audience"


class ReplayError(SecurityError):
    code = "replay"


class IntegrityError(SecurityError):
    code = "integrity"


class KeyFileError(SecurityError):
    code = "key_file"


class TokenError(SecurityError):
    code = "bad_token"


class TLSError(SecurityError):
    """The coordinator's certificate does not match the pinned fingerprint, or no CA vouches
    for it; raised before any request byte (and so any ticket) was sent."""

    code = "tls_untrusted"


class TransportError(FogmeshError):
    code = "transport_error"


class TwinError(FogmeshError):
    code = "twin_error"


class ConsentError(TwinError):
    code = "no_consent"


class PrivacyBudgetExceeded(TwinError):
    code = "privacy_budget_exceeded"
