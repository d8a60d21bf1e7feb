"""Finding and killing the processes the containment tests leave behind on purpose."""

from __future__ import annotations

import secrets

import psutil

__all__ = ["kill_marked", "living", "new_marker", "with_marker"]


def with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def living(marker: str) -> list[psutil.Process]:
    out = []
    for proc in with_marker(marker):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def kill_marked(marker: str) -> None:
    for proc in with_marker(marker):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


def new_marker() -> str:
    """A ``sleep`` argument no other process has."""
    return f"300.{secrets.randbelow(10**8):08d}1"
