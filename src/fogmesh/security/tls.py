"""HTTPS on the client side: pinned certificate fingerprints and the plain-HTTP rule.

A coordinator with a self-signed certificate is trusted the way SSH trusts a host key: its
SHA-256 fingerprint reaches the client over a channel the operator already trusts (the join
token, ``fogmesh coordinator``'s output, the data directory), and the client accepts exactly that
certificate. Python's ``ssl`` has no verify callback, so the check rides on the context's
``sslobject_class``/``sslsocket_class``: ``do_handshake`` returns only once the peer's
certificate matches, which is before any byte of a request (and its bearer ticket) is written.
This covers blocking sockets (httpx sync), memory BIOs (anyio, asyncio: httpx async and
websockets) alike. Without a pin, the system's CA store verifies as usual.

Only the standard library is used here: an agent on a phone pins its coordinator without
loading ``cryptography``'s X.509 code (``fogmesh.security.selfsigned`` makes certificates).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
from typing import Any, Final
from urllib.parse import urlsplit

from fogmesh.errors import ConfigError, TLSError

__all__ = [
    "FingerprintMismatch",
    "client_context",
    "fingerprint_of",
    "format_fingerprint",
    "insecure_http_allowed",
    "is_local_host",
    "is_loopback",
    "is_wildcard",
    "parse_fingerprint",
    "refuse_plain_http",
    "tls_error_in",
]

_PREFIX: Final = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


def fingerprint_of(der: bytes) -> bytes:
    """The SHA-256 digest of a certificate's DER encoding."""
    return hashlib.sha256(der).digest()


def format_fingerprint(digest: bytes) -> str:
    """``sha256:`` and 64 lower-case hex digits, the one form fogmesh prints."""
    return _PREFIX + digest.hex()


def parse_fingerprint(text: str, *, field: str = "--fingerprint") -> bytes:
    """The digest in ``sha256:ab12…``, ``AB:12:…`` (openssl's form) or bare hex."""
    compact = text.strip().lower()
    if compact.startswith(_PREFIX):
        compact = compact[len(_PREFIX) :]
    elif compact.startswith("sha256 fingerprint="):
        compact = compact[len("sha256 fingerprint=") :]
    compact = compact.replace(":", "")
    if not _HEX.fullmatch(compact):
        raise ConfigError(
            "a certificate fingerprint is sha256: followed by 64 hex digits "
            "(as `fogmesh coordinator` prints it)",
            field=field,
        )
    return bytes.fromhex(compact)


class FingerprintMismatch(ssl.SSLCertVerificationError):
    """The server's certificate is not the pinned one. An ``ssl`` error, so every transport
    (httpcore, anyio, asyncio) treats it as the failed handshake it is."""

    def __init__(self, expected: bytes, presented: bytes | None) -> None:
        got = format_fingerprint(presented) if presented else "no certificate"
        super().__init__(
            f"certificate fingerprint mismatch: the server presented {got}, "
            f"expected {format_fingerprint(expected)}"
        )
        self.expected = expected
        self.presented = presented


def _check_pin(context: ssl.SSLContext, der: bytes | None) -> None:
    expected: bytes = getattr(context, "pinned_fingerprint", b"")
    presented = fingerprint_of(der) if der else None
    if presented != expected:
        raise FingerprintMismatch(expected, presented)


class _PinnedSSLObject(ssl.SSLObject):
    def do_handshake(self) -> None:
        super().do_handshake()
        _check_pin(self.context, self.getpeercert(binary_form=True))


class _PinnedSSLSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        _check_pin(self.context, self.getpeercert(binary_form=True))


class _PinnedContext(ssl.SSLContext):
    """Accepts exactly the certificate whose SHA-256 is ``pinned_fingerprint``."""

    sslobject_class = _PinnedSSLObject
    sslsocket_class = _PinnedSSLSocket
    pinned_fingerprint: bytes


def client_context(fingerprint: bytes | None) -> ssl.SSLContext:
    """A client context: pinned to ``fingerprint``, else the system's CA verification.

    A pinned context ignores names and dates: the pin names one certificate, which is a stronger
    statement than any CA's (the self-signed certificate has no CA to check it against).
    """
    if fingerprint is None:
        return ssl.create_default_context()
    if len(fingerprint) != 32:
        raise ConfigError("a certificate fingerprint is 32 bytes (SHA-256)", field="fingerprint")
    context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the pin is checked at the end of every handshake
    context.pinned_fingerprint = fingerprint
    return context


def _address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str | None:
    if not host:
        return None
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return name


def is_loopback(host: str | None) -> bool:
    """True for a loopback name or address: a server bound there is reachable from this
    machine only (the wildcard ``0.0.0.0`` is not: it listens on every interface)."""
    address = _address(host)
    return not isinstance(address, str | None) and address.is_loopback


def is_wildcard(host: str | None) -> bool:
    """True for a bind host that means every interface (no address a client can dial): empty,
    ``*``, or an unspecified address (``0.0.0.0``, ``::``)."""
    if not host or host == "*":
        return True
    address = _address(host)
    return not isinstance(address, str | None) and address.is_unspecified


def is_local_host(host: str | None) -> bool:
    """True when a client dialling ``host`` reaches this machine: loopback, or the unspecified
    address (``0.0.0.0``/``::``). Bytes to such a host never cross a network."""
    address = _address(host)
    return not isinstance(address, str | None) and (address.is_loopback or address.is_unspecified)


def insecure_http_allowed() -> bool:
    """``FOGMESH_INSECURE_HTTP`` set to 1/true/yes: the environment's ``--insecure-http``."""
    return os.environ.get("FOGMESH_INSECURE_HTTP", "").strip().lower() in ("1", "true", "yes")


def refuse_plain_http(url: str, *, insecure_http: bool, field: str = "--url") -> None:
    """ConfigError unless a bearer ticket may travel to ``url``: https, a local host over http,
    or plain http that the caller explicitly accepted."""
    parts = urlsplit(url)
    if parts.scheme != "http" or insecure_http or is_local_host(parts.hostname):
        return
    raise ConfigError(
        f"refusing to send a ticket in clear text to {url}: use https:// (a coordinator on a "
        "non-loopback address serves HTTPS; pin it with --fingerprint or FOGMESH_FINGERPRINT), "
        "or pass --insecure-http if this network is trusted",
        field=field,
    )


def tls_error_in(exc: BaseException, url: str) -> TLSError | None:
    """The ``TLSError`` a transport exception stands for, if a certificate check caused it
    (found along the ``__cause__``/``__context__`` chain the HTTP libraries build)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FingerprintMismatch):
            return TLSError(
                f"{url}: {current.args[0]}; nothing was sent. If the coordinator's certificate "
                "was replaced, get its new fingerprint from `fogmesh coordinator`'s output",
                expected=format_fingerprint(current.expected),
            )
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = getattr(current, "verify_message", None) or str(current)
            return TLSError(
                f"{url}: the coordinator's certificate is not trusted ({detail}); nothing was "
                "sent. For a self-signed coordinator pass --fingerprint (or set "
                "FOGMESH_FINGERPRINT) with the fingerprint `fogmesh coordinator` printed"
            )
        if isinstance(current, ssl.SSLError):
            return TLSError(f"{url}: TLS handshake failed ({current}); nothing was sent")
        nxt: Any = current.__cause__ or current.__context__
        current = nxt
    return None
