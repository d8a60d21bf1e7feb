"""The join tokens a coordinator's keys have issued, for ``fogmesh token list`` and ``revoke``.

A join token is signed with the coordinator's key, which lives in its data directory; both
``fogmesh token create`` (offline, on that machine) and ``POST /v1/tokens`` append a line to
``join_tokens.jsonl`` there (0600): the token's id, times, scopes and URL — never the token
itself, so the file grants nothing. A revocation appends a line too. Whether a token was used is
not kept here: the coordinator's spent-ticket table is the truth for that (a revoked token is
spent there, so enrolment refuses it across restarts).

Each line is written with one ``O_APPEND`` write, so two writers never interleave within a line;
a line that cannot be parsed (a crash mid-write) is skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from fogmesh.errors import ConfigError

__all__ = ["JOURNAL_FILE", "IssuedToken", "read_journal", "record_issued", "record_revoked"]

JOURNAL_FILE: Final = "join_tokens.jsonl"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: str
    created_at: float
    expires_at: float
    scopes: tuple[str, ...]
    url: str
    revoked_at: float | None = None


def _append(data_dir: Path, entry: dict[str, Any]) -> None:
    path = Path(data_dir) / JOURNAL_FILE
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"cannot record the token in {path}: {exc}", field="--data-dir") from exc


def record_issued(
    data_dir: Path,
    *,
    token_id: str,
    created_at: float,
    expires_at: float,
    scopes: tuple[str, ...] | list[str],
    url: str,
) -> None:
    _append(
        data_dir,
        {
            "id": token_id,
            "created_at": created_at,
            "expires_at": expires_at,
            "scopes": list(scopes),
            "url": url,
        },
    )


def record_revoked(data_dir: Path, token_id: str, now: float) -> None:
    _append(data_dir, {"revoked": token_id, "at": now})


def read_journal(data_dir: Path) -> list[IssuedToken]:
    """The tokens issued, oldest first, with their revocations applied."""
    path = Path(data_dir) / JOURNAL_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}", field="--data-dir") from exc
    found: dict[str, IssuedToken] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            if "revoked" in entry:
                token_id = str(entry["revoked"])
                if token_id in found and found[token_id].revoked_at is None:
                    found[token_id] = replace(found[token_id], revoked_at=float(entry["at"]))
                continue
            token = IssuedToken(
                id=str(entry["id"]),
                created_at=float(entry["created_at"]),
                expires_at=float(entry["expires_at"]),
                scopes=tuple(str(s) for s in entry["scopes"]),
                url=str(entry["url"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a torn or foreign line
        found.setdefault(token.id, token)
    return list(found.values())
