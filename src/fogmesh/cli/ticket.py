"""``fogmesh ticket``: REST tickets narrower than ``admin.ticket``, and its renewal.

Both commands sign with the data directory's ticket key (as ``fogmesh token create`` does), so
they run where the coordinator's data directory is, by its user. The coordinator verifies the
tickets with the same key; nothing has to be running.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from fogmesh.cli.units import parse_duration
from fogmesh.client import TICKET_FILE
from fogmesh.clock import WallClock
from fogmesh.config import load_settings
from fogmesh.errors import ConfigError
from fogmesh.security.keyfile import write_private_file

__all__ = ["app"]

# Operator scopes only: device scopes (agent, enrol) are tied to device identities and come
# from enrolment, never from this command.
OPERATOR_SCOPES: Final = ("submit", "read", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")

app = typer.Typer(
    help="Issue REST tickets (submit, read, admin) so nobody has to hand out admin.ticket.",
    no_args_is_help=True,
)
err_console = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="coordinator data directory, holds its keys (FOGMESH_HOME)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


@app.callback()
def _group() -> None:
    """REST tickets signed with the coordinator's ticket key."""


def _scopes(values: list[str]) -> list[str]:
    chosen: list[str] = []
    for value in values:
        for scope in filter(None, (part.strip().lower() for part in value.split(","))):
            if scope not in OPERATOR_SCOPES:
                raise ConfigError(
                    f"unknown scope {scope!r}; choose from {', '.join(OPERATOR_SCOPES)}",
                    field="--scope",
                )
            if scope not in chosen:
                chosen.append(scope)
    if not chosen:
        raise ConfigError(f"give one of {', '.join(OPERATOR_SCOPES)}", field="--scope")
    return chosen


def _subject(name: str) -> str:
    if not _NAME.fullmatch(name) or name.startswith("dev-"):
        raise ConfigError(
            "1–64 letters, digits or ._@+- (and not dev-…, which names devices)", field="--name"
        )
    return name


def _issue(
    home: Path, *, subject: str, scopes: list[str], ttl: float, one_shot: bool
) -> tuple[str, dict[str, object]]:
    from fogmesh.security.keys import CoordinatorKeys

    keys = CoordinatorKeys.load_or_create(home)
    token, claims = keys.issuer(WallClock()).issue_with_claims(
        subject=subject, audience=keys.audience, scopes=scopes, ttl=ttl, one_shot=one_shot
    )
    info: dict[str, object] = {
        "subject": claims.subject,
        "scopes": list(claims.scopes),
        "ticket_id": claims.ticket_id,
        "one_shot": claims.one_shot,
        "expires_at": datetime.fromtimestamp(claims.expires_at, UTC).isoformat(),
        "audience": claims.audience,
    }
    return token, info


@app.command("create")
def create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="submit (submit and cancel tasks), read (look only) or admin (everything); "
            "repeat or comma-separate",
        ),
    ],
    ttl: Annotated[
        str, typer.Option("--ttl", help="how long the ticket is valid: 90s, 15m, 24h, 7d (≤ 30d)")
    ] = "24h",
    one_shot: Annotated[
        bool, typer.Option("--one-shot", help="the coordinator accepts the ticket once")
    ] = False,
    name: Annotated[
        str, typer.Option("--name", help="who the ticket is for (its subject)")
    ] = "operator",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Print a REST ticket with only the scopes given.

    The ticket goes to stdout (so `export FOGMESH_TICKET=$(fogmesh ticket create …)` works);
    what it allows and until when goes to stderr.

    Example: fogmesh ticket create --scope submit --ttl 7d --name ci
    """
    lifetime = parse_duration(ttl)
    scopes = _scopes(scope)
    token, info = _issue(
        load_settings(home=data_dir).home,
        subject=_subject(name),
        scopes=scopes,
        ttl=lifetime,
        one_shot=one_shot,
    )
    if as_json:
        typer.echo(json.dumps({"ticket": token, **info}))
        return
    typer.echo(token)
    once = ", accepted once" if one_shot else ""
    err_console.print(
        f"ticket for {info['subject']} (scopes {', '.join(scopes)}{once}), "
        f"valid until {info['expires_at']}\nuse it with --ticket or FOGMESH_TICKET",
        highlight=False,
    )


@app.command("renew-admin")
def renew_admin(
    ttl: Annotated[
        str, typer.Option("--ttl", help="lifetime of the new admin ticket (≤ 30d)")
    ] = "30d",
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Write a fresh admin.ticket (0600) into the data directory.

    The coordinator also renews it at start when less than a week is left; the old ticket stays
    valid until it expires.

    Example: fogmesh ticket renew-admin --data-dir ./fog
    """
    lifetime = parse_duration(ttl)
    home = load_settings(home=data_dir).home
    token, info = _issue(home, subject="admin", scopes=["admin"], ttl=lifetime, one_shot=False)
    path = home / TICKET_FILE
    write_private_file(path, token.encode("ascii") + b"\n")
    if as_json:
        typer.echo(json.dumps({"path": str(path), **info}))
        return
    err_console.print(f"wrote {path}, valid until {info['expires_at']}", highlight=False)
