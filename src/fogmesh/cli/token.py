"""``fogmesh token``: join tokens that let a device enrol with this coordinator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fogmesh.cli._reach import reach_warning, runtime_url
from fogmesh.cli.resolve import resolve_token
from fogmesh.cli.tasks import (
    DataDirOption,
    FingerprintOption,
    InsecureHttpOption,
    JsonOption,
    TicketOption,
    UrlOption,
    cell,
    client_for,
    console,
)
from fogmesh.cli.units import parse_duration
from fogmesh.client import RUNTIME_FILE, read_runtime
from fogmesh.clock import WallClock
from fogmesh.config import load_settings
from fogmesh.errors import ConfigError, KeyFileError
from fogmesh.security.keys import CoordinatorKeys
from fogmesh.security.tickets import SCOPES
from fogmesh.security.token_journal import record_issued
from fogmesh.security.tokens import create_join_token

__all__ = ["app", "parse_duration"]

DEFAULT_URL = "http://127.0.0.1:8700"
_URL_HELP = (
    "URL devices use to reach the coordinator (else FOGMESH_COORDINATOR, else the running "
    f"coordinator's, else {DEFAULT_URL}); warns when it cannot reach where the coordinator listens"
)
_SCOPE_LIST = ", ".join(SCOPES)

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


def _running_coordinator(home: Path) -> dict[str, Any]:
    """The ``coordinator.json`` of the coordinator running on this data directory ({} if none),
    read once for the URL check and the pin, under the owner-only rule (``read_runtime``)."""
    path = home / RUNTIME_FILE
    try:
        return read_runtime(path) or {}
    except KeyFileError as exc:
        raise ConfigError(f"cannot read {path}: {exc}", field="--data-dir") from exc


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


def _pin(home: Path, target: str, given: str | None, served: dict[str, Any]) -> bytes | None:
    """The certificate fingerprint the token carries: ``given``, else the one the coordinator
    running on ``home`` serves (``served``: its ``coordinator.json``), else the data directory's
    self-signed certificate. A certificate the operator gave is CA-verified: no pin."""
    from fogmesh.security.selfsigned import saved_fingerprint
    from fogmesh.security.tls import format_fingerprint, parse_fingerprint

    if given:
        return parse_fingerprint(given)
    runtime = home / RUNTIME_FILE
    https = urlsplit(target).scheme in ("https", "wss")
    if "fingerprint" in served and not https:
        raise ConfigError(
            f"the coordinator in {home} serves HTTPS: give --url https://<address devices "
            f"reach>:<port> (got {target})",
            field="--url",
        )
    if not https:
        return None
    if "fingerprint" in served:
        if served.get("self_signed") is False:
            return None
        return parse_fingerprint(str(served["fingerprint"]), field=str(runtime))
    pin = saved_fingerprint(home)
    if pin is not None:
        err_console.print(
            f"pinning the self-signed certificate in {home / 'tls'} ({format_fingerprint(pin)})",
            highlight=False,
            soft_wrap=True,
        )
    return pin


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
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            help="certificate fingerprint devices pin (default: the self-signed certificate "
            "of the coordinator in the data directory)",
        ),
    ] = None,
) -> None:
    """Print a one-use join token for a new device.

    The coordinator's keys are created in the data directory on first use (files 0600).

    For a coordinator serving HTTPS with its self-signed certificate, the token carries that
    certificate's fingerprint and the device accepts no other.

    Example: fogmesh token create --ttl 1h --url https://192.168.1.20:8700
    """
    lifetime = parse_duration(ttl)
    extra = _scopes(scope)
    settings = load_settings(home=data_dir)
    runtime = _running_coordinator(settings.home)
    target = url or settings.coordinator or runtime_url(runtime) or DEFAULT_URL
    unreachable = reach_warning(target, runtime)
    if unreachable is not None:
        err_console.print(f"[yellow]warning[/]: {unreachable}", highlight=False, soft_wrap=True)
    pin = _pin(settings.home, target, fingerprint, runtime)
    keys = CoordinatorKeys.load_or_create(settings.home)
    join, ticket = create_join_token(
        keys, url=target, ttl=lifetime, clock=WallClock(), extra_scopes=extra, tls_fingerprint=pin
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
            "tls_fingerprint": pin.hex() if pin else None,
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
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """List the join tokens issued with the coordinator's keys: unused, used, revoked.

    The tokens themselves are not kept anywhere; their ids are (revoke takes an id or a
    unique prefix). Needs an admin ticket.

    Example: fogmesh token list --all --json
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
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
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Revoke an unused join token: the coordinator refuses it from now on, restarts included.

    A token already used cannot be revoked: remove its device (fogmesh device rm) instead.
    Needs an admin ticket.

    Example: fogmesh token revoke Xq3v
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.revoke_token(resolve_token(client, token_id))
    if as_json:
        typer.echo(json.dumps(found))
        return
    console.print(Text(f"join token {found.get('id')} is {found.get('state')}"))
