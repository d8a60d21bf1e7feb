"""``fogmesh token``: join tokens that let a device enrol with this coordinator."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fogmesh.cli.resolve import resolve_token
from fogmesh.cli.tasks import (
    DataDirOption,
    JsonOption,
    TicketOption,
    UrlOption,
    cell,
    client_for,
    console,
)
from fogmesh.clock import WallClock
from fogmesh.config import load_settings
from fogmesh.errors import ConfigError
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.tickets import SCOPES
from fogmesh.security.token_journal import record_issued
from fogmesh.security.tokens import create_join_token

__all__ = ["app", "parse_duration"]

DEFAULT_URL = "http://127.0.0.1:8700"
MAX_TTL = 30 * 86_400.0
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_URL_HELP = f"URL devices use to reach the coordinator (else FOGMESH_COORDINATOR, {DEFAULT_URL})"
_SCOPE_LIST = ", ".join(SCOPES)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")

app = typer.Typer(
    help="Join tokens that let a device enrol with this coordinator: create, list, revoke.",
    no_args_is_help=True,
)
err_console = Console(stderr=True)
_TOKEN_STYLE = {"unused": "green", "used": "dim", "revoked": "magenta", "expired": "dim"}


@app.callback()
def _group() -> None:
    """Join tokens for enrolling devices (coordinator URL + its Noise key + a one-shot ticket).

    Example: fogmesh token create --ttl 1h; fogmesh token list; fogmesh token revoke ID
    """


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``24h`` or ``7d``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ConfigError(
            f"cannot read {text!r} as a duration (e.g. 90s, 15m, 24h, 7d)", field="--ttl"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TTL:
        raise ConfigError("must be more than 0 and at most 30d", field="--ttl")
    return seconds


def _scopes(values: list[str] | None) -> list[str]:
    extra: list[str] = []
    for value in values or []:
        for scope in filter(None, (part.strip() for part in value.split(","))):
            if scope not in SCOPES:
                raise ConfigError(
                    f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}", field="--scope"
                )
            if scope != "enrol" and scope not in extra:
                extra.append(scope)
    return extra


@app.command("create")
def create(
    ttl: Annotated[
        str, typer.Option("--ttl", help="how long the token can be used: 90s, 15m, 24h, 7d")
    ] = "24h",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help=f"extra scope granted with 'enrol' (repeat or comma-separate): {_SCOPE_LIST}",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help=_URL_HELP,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="coordinator data directory, holds its keys (FOGMESH_HOME)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Print a one-use join token for a new device.

    The coordinator's keys are created in the data directory on first use (files 0600).

    Example: fogmesh token create --ttl 1h --url http://192.168.1.20:8700
    """
    lifetime = parse_duration(ttl)
    extra = _scopes(scope)
    settings = load_settings(home=data_dir)
    target = url or settings.coordinator or DEFAULT_URL
    keys = CoordinatorKeys.load_or_create(settings.home)
    join, ticket = create_join_token(
        keys, url=target, ttl=lifetime, clock=WallClock(), extra_scopes=extra
    )
    token = join.encode()
    record_issued(  # so that `fogmesh token list` shows it and `revoke` can take it back
        settings.home,
        token_id=ticket.ticket_id,
        created_at=ticket.issued_at,
        expires_at=ticket.expires_at,
        scopes=ticket.scopes,
        url=target,
    )
    expires = datetime.fromtimestamp(ticket.expires_at, UTC).isoformat()
    if as_json:
        info = {
            "token": token,
            "coordinator_url": target,
            "coordinator_key": keys.noise.public.hex(),
            "audience": keys.audience,
            "scopes": list(ticket.scopes),
            "ticket_id": ticket.ticket_id,
            "expires_at": expires,
        }
        typer.echo(json.dumps(info))
        return
    # The token alone goes to stdout (so `$(fogmesh token create)` works); the rest to stderr.
    typer.echo(token)
    err_console.print(
        f"one-use join token for {target} (scopes {', '.join(ticket.scopes)}), "
        f"valid until {expires}\non the device: fogmesh agent --join <token>",
        highlight=False,
        soft_wrap=True,
    )


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, int | float):
        return None
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_tokens(
    include_all: Annotated[bool, typer.Option("--all", help="also tokens that expired")] = False,
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the join tokens issued with the coordinator's keys: unused, used, revoked.

    The tokens themselves are not kept anywhere; their ids are (revoke takes an id or a
    unique prefix). Needs an admin ticket.

    Example: fogmesh token list --all --json
    """
    with client_for(url, ticket, data_dir) as client:
        found = client.tokens(include_expired=include_all)
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table()
    table.add_column("token id", no_wrap=True)
    for column in ("state", "created", "expires", "scopes", "url"):
        table.add_column(column, overflow="fold")
    for t in found:
        state = str(t.get("state"))
        table.add_row(
            cell(t.get("id")),
            Text(state, style=_TOKEN_STYLE.get(state, "")),
            cell(_iso(t.get("created_at"))),
            cell(_iso(t.get("expires_at"))),
            cell(", ".join(map(str, t.get("scopes") or ()))),
            cell(t.get("url")),
        )
    console.print(table)
    if not found:
        console.print("no join tokens" + ("" if include_all else " that are still valid"))


@app.command("revoke")
def revoke(
    token_id: Annotated[
        str, typer.Argument(help="token id (see token list) or a unique prefix", show_default=False)
    ],
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an unused join token: the coordinator refuses it from now on, restarts included.

    A token already used cannot be revoked: remove its device (fogmesh device rm) instead.
    Needs an admin ticket.

    Example: fogmesh token revoke Xq3v
    """
    with client_for(url, ticket, data_dir) as client:
        found = client.revoke_token(resolve_token(client, token_id))
    if as_json:
        typer.echo(json.dumps(found))
        return
    console.print(Text(f"join token {found.get('id')} is {found.get('state')}"))
