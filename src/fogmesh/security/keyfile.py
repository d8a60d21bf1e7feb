"""Key files on disk: owner-only (0600), created atomically, refused when others can read them.

Ticket files and files holding a pinned certificate fingerprint follow the same rule
(``read_private_file``/``write_private_file``): whoever can read a ticket can use it, and
whoever can write a pin can point a client at their own server.

One line of text per file, ``fogmesh-key/1 <kind> <base64url secret> <check>``. The kind stops an
X25519 key being loaded where an Ed25519 key is expected (both are 32 random-looking bytes), and the
check (4 bytes of SHA-256) catches a damaged file instead of silently yielding a different key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from fogmesh.errors import KeyFileError

__all__ = [
    "load_or_create_key_file",
    "read_key_file",
    "read_private_file",
    "write_key_file",
    "write_private_file",
]

_MAGIC = "fogmesh-key/1"
_MAX_FILE = 4096
# Any group/other permission bit is refused, not only "readable": a key file others may write
# could be swapped for a key the attacker knows.
_FORBIDDEN_BITS = 0o077


def _checksum(kind: str, secret: bytes) -> str:
    return hashlib.sha256(f"{kind}\0".encode() + secret).hexdigest()[:8]


def _encode(kind: str, secret: bytes) -> bytes:
    body = base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")
    return f"{_MAGIC} {kind} {body} {_checksum(kind, secret)}\n".encode("ascii")


def _decode(path: Path, kind: str, raw: bytes) -> bytes:
    try:
        magic, found_kind, body, check = raw.decode("ascii").split()
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{path}: not a fogmesh key file (damaged?)") from None
    if magic != _MAGIC:
        raise KeyFileError(f"{path}: unsupported key file format {magic!r}")
    if found_kind != kind:
        raise KeyFileError(f"{path}: holds a {found_kind} key, expected {kind}")
    try:
        secret = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: key body is not base64url (damaged?)") from None
    if _checksum(kind, secret) != check:
        raise KeyFileError(f"{path}: checksum mismatch (the file is damaged)")
    return secret


def read_private_file(path: Path, *, what: str = "key file", max_size: int = _MAX_FILE) -> bytes:
    """The bytes of an owner-only file; FileNotFoundError if absent, KeyFileError if unsafe.

    The rule every secret- or trust-bearing file follows (keys, tickets, pinned fingerprints):
    a regular file, not a symlink, with no group/other permission bit. The check runs on the
    opened descriptor, so the file cannot be swapped between the check and the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open {what} ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _FORBIDDEN_BITS:
            raise KeyFileError(
                f"{path}: {what} is accessible by group/others (mode {mode:o}); "
                f"run 'chmod 600 {path}'"
            )
        raw = os.read(fd, max_size + 1)
    finally:
        os.close(fd)
    if len(raw) > max_size:
        raise KeyFileError(f"{path}: too large to be a {what}")
    return raw


def read_key_file(path: Path, kind: str) -> bytes:
    """Read a key of ``kind``; raises FileNotFoundError if absent, KeyFileError if unsafe/corrupt.

    The permission check runs on the opened descriptor, so the file cannot be swapped between
    the check and the read; symlinks are refused for the same reason.
    """
    return _decode(path, kind, read_private_file(path))


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, written 0600 (fsynced before the rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        if not _create_exclusive(tmp, data):
            raise KeyFileError(f"{path}: temporary file already exists")
        os.replace(tmp, path)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write ({exc.strerror})") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _create_exclusive(path: Path, data: bytes) -> bool:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def write_key_file(path: Path, kind: str, secret: bytes, *, replace: bool = False) -> bool:
    """Write a key file 0600 (its directory 0700 when created); True if this call wrote it.

    With ``replace=False`` an existing file is left alone and False is returned, so two processes
    creating the same key on first use agree on one of them. The content goes to a private
    temporary file first and is then linked into place, so no reader ever sees half a key.
    """
    data = _encode(kind, secret)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _create_exclusive(tmp, data):
            raise KeyFileError(f"{path}: temporary file already exists")
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # Some platforms (Android app storage under SELinux) forbid hard links: create the
            # file exclusively in place instead, accepting a tiny window where a concurrent
            # reader could see it half-written (it would then fail its checksum, not load).
            return _create_exclusive(path, data)
        return True
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file ({exc.strerror})") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_or_create_key_file(path: Path, kind: str, generate: Callable[[], bytes]) -> bytes:
    """The secret in ``path``, written 0600 from ``generate()`` on first use.

    If another process creates the file between our read and our write, its key wins: we read
    the file back rather than trust our own copy.
    """
    try:
        return read_key_file(path, kind)
    except FileNotFoundError:
        pass
    write_key_file(path, kind, generate())
    try:
        return read_key_file(path, kind)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file vanished right after it was written") from None
