"""The coordinator's HTTPS certificate: an operator's, or one it makes itself on first start.

Layout under ``<data dir>/tls/`` (directory 0700)::

    coordinator.crt     self-signed certificate (ECDSA P-256, PEM; public)
    coordinator.key     its private key (PEM, 0600; refused when group/other may access it)

The self-signed certificate is made once and then kept: its fingerprint is pinned by every join
token and client that was given it, so a new certificate would lock them all out. Its names
(localhost, 127.0.0.1, ::1, this host's name, the bind address and the names given) matter
only to clients that check names (a browser, curl with ``--cacert``); fogmesh clients pin the
fingerprint instead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fogmesh.errors import ConfigError
from fogmesh.security.keyfile import read_private_file, write_private_file
from fogmesh.security.tls import fingerprint_of, format_fingerprint, is_wildcard

if TYPE_CHECKING:  # cryptography's X.509 code loads only when a certificate is made or read
    from cryptography import x509

__all__ = [
    "CoordinatorCertificate",
    "certificate_names",
    "load_or_create_certificate",
    "saved_fingerprint",
]

log = logging.getLogger(__name__)

TLS_DIR: Final = "tls"
CERT_FILE: Final = "coordinator.crt"
KEY_FILE: Final = "coordinator.key"
_VALIDITY: Final = dt.timedelta(days=3650)  # pinned clients ignore dates; browsers do not
_MAX_PEM: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class CoordinatorCertificate:
    cert_path: Path
    key_path: Path
    fingerprint: bytes
    self_signed: bool

    @property
    def fingerprint_text(self) -> str:
        return format_fingerprint(self.fingerprint)


def certificate_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """Names and addresses a self-signed certificate lists: loopback, this host, the bind
    address (unless it is the wildcard) and ``extra``, without duplicates."""
    names = ["localhost", "127.0.0.1", "::1"]
    hostname = socket.gethostname()
    candidates = [hostname, host, *extra]
    for name in candidates:
        name = (name or "").strip().strip("[]")
        if not name or is_wildcard(name) or name in names:
            continue
        names.append(name)
    return names


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _make_self_signed(names: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fogmesh coordinator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _fingerprint_of_pem(path: Path, pem: bytes) -> bytes:
    import ssl

    text = pem.decode("ascii", errors="replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----")
    if start < 0 or end < 0:
        raise ConfigError(f"{path} holds no PEM certificate", field="--tls-cert")
    try:
        der = ssl.PEM_cert_to_DER_cert(text[start : end + len("-----END CERTIFICATE-----")] + "\n")
    except ValueError as exc:
        raise ConfigError(
            f"{path}: the certificate is damaged ({exc})", field="--tls-cert"
        ) from exc
    return fingerprint_of(der)


def _read_cert(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_PEM + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", field="--tls-cert") from exc
    if len(data) > _MAX_PEM:
        raise ConfigError(f"{path} is too large to be a certificate", field="--tls-cert")
    return data


def _names_in(pem: bytes) -> set[str]:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return set()
    found = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return found | set(san.get_values_for_type(x509.DNSName))


def load_or_create_certificate(
    data_dir: Path,
    *,
    host: str,
    names: Iterable[str] = (),
    cert: Path | None = None,
    key: Path | None = None,
) -> CoordinatorCertificate:
    """The certificate to serve: ``cert``/``key`` when given, else the data directory's
    self-signed one, made on first use. The private key file must be owner-only either way."""
    if (cert is None) != (key is None):
        raise ConfigError("give both --tls-cert and --tls-key, or neither", field="--tls-cert")
    if cert is not None and key is not None:
        read_private_file(key, what="TLS private key", max_size=_MAX_PEM)
        return CoordinatorCertificate(cert, key, _fingerprint_of_pem(cert, _read_cert(cert)), False)
    directory = Path(data_dir) / TLS_DIR
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    wanted = certificate_names(host, names)
    try:
        read_private_file(key_path, what="TLS private key", max_size=_MAX_PEM)
        pem = _read_cert(cert_path) if cert_path.exists() else b""
    except FileNotFoundError:
        pem = b""
    if not pem:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        cert_pem, key_pem = _make_self_signed(wanted)
        write_private_file(key_path, key_pem)
        # The certificate is public, but it is also what the pin names: same owner-only rule.
        write_private_file(cert_path, cert_pem)
        log.info("made a self-signed TLS certificate in %s", directory)
        pem = cert_pem
    else:
        present = _names_in(pem)
        missing = [n for n in wanted if n not in present]
        if missing:
            # Kept anyway: a new certificate would break every pinned join token and client.
            log.warning(
                "the self-signed certificate in %s does not name %s; fogmesh clients pin its "
                "fingerprint and do not mind, but browsers will",
                directory,
                ", ".join(missing),
            )
    return CoordinatorCertificate(cert_path, key_path, _fingerprint_of_pem(cert_path, pem), True)


def saved_fingerprint(data_dir: Path) -> bytes | None:
    """The fingerprint of the data directory's self-signed certificate, None if it has none."""
    path = Path(data_dir) / TLS_DIR / CERT_FILE
    if not path.exists():
        return None
    return _fingerprint_of_pem(path, _read_cert(path))
