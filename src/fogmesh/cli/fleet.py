"""``fogmesh devices | clusters``: the fleet as a running coordinator sees it."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from fogmesh.cli.resolve import device_name, device_names
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
from fogmesh.cli.units import celsius, percent

__all__ = ["clusters", "devices"]

_STATUS_STYLE = {"ready": "green", "draining": "yellow", "lost": "red", "offline": "dim"}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, unit: str = "", digits: int = 0) -> Text:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return cell(None)
    return Text(f"{value:.{digits}f}{unit}")


def devices(
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """List the devices the coordinator knows: status, link, battery, heat and capacity.

    Devices show by name (`fogmesh agent --name`, else the hostname) beside their id; either,
    or a unique id prefix, is what `fogmesh drain` and `fogmesh device rm` take.

    Example: fogmesh devices --json
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.devices()
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table()
    # Ids are never shortened: they are what the other commands take (a prefix will do too).
    table.add_column("device", no_wrap=True, min_width=30)
    for column in (
        "name", "type", "status", "link", "battery", "temp", "CPU", "RAM free", "site", "models"
    ):  # fmt: skip
        table.add_column(column, overflow="fold")
    for d in found:
        profile = _mapping(d.get("profile"))
        caps = _mapping(profile.get("capabilities"))
        battery = Text(percent(profile.get("battery_percent")))
        if profile.get("charging"):
            battery.append(" ⚡")
        status = str(d.get("status"))
        table.add_row(
            cell(d.get("device_id")),
            cell(device_name(d)),
            cell(d.get("device_type")),
            Text(status, style=_STATUS_STYLE.get(status, "")),
            Text("connected", style="green") if d.get("connected") else Text("—", style="dim"),
            battery,
            Text(celsius(profile.get("cpu_temp_c"))),
            cell(caps.get("cpu_cores_logical")),
            _number(profile.get("ram_available_mb"), " MB"),
            cell(_mapping(d.get("labels")).get("site")),
            cell(", ".join(map(str, d.get("models") or ()))),
        )
    console.print(table)
    if not found:
        console.print("no devices yet; join one with `fogmesh agent --join TOKEN`", style="dim")


def clusters(
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """List the device clusters the coordinator formed, with their heads and members.

    Example: fogmesh clusters --json
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.status().get("clusters") or []
        names = device_names(client.devices()) if found and not as_json else {}
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table("cluster", "site", "head", "term", "size", "members")
    for c in found:
        # Devices by name where they have one (drain and device rm take names too).
        members = [names.get(str(m), str(m)) for m in c.get("members") or ()]
        head = c.get("head")
        table.add_row(
            cell(c.get("id")),
            cell(c.get("site")),
            cell(names.get(str(head), head) if head else None),
            cell(c.get("term")),
            cell(len(members)),
            cell(", ".join(members)),
        )
    console.print(table)
    if not found:
        console.print("no clusters yet (they form once devices are ready)", style="dim")
