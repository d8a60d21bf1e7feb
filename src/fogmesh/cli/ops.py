"""``fogmesh cancel ID | drain DEVICE | device rm DEVICE``: change what a running fog does.

Ids may be given as a unique prefix (and devices by name), as everywhere (``fogmesh.cli.resolve``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from fogmesh.cli.resolve import device_name, pick_device, resolve_device, resolve_task
from fogmesh.cli.tasks import (
    DataDirOption,
    FingerprintOption,
    InsecureHttpOption,
    JsonOption,
    TicketOption,
    UrlOption,
    client_for,
    console,
)

__all__ = ["cancel", "drain", "remove_device"]


def cancel(
    task_id: Annotated[str, typer.Argument(help="task id or a unique prefix", show_default=False)],
    reason: Annotated[
        str, typer.Option("--reason", help="why, kept with the task")
    ] = "cancelled by request",
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Cancel a task that has not finished; a device running it is told to stop.

    Example: fogmesh cancel 01JD5V7Q --reason "wrong input"
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.cancel(resolve_task(client, task_id), reason)
    if as_json:
        typer.echo(json.dumps(found))
        return
    console.print(Text(f"task {found.get('id')} {found.get('state')}: {reason}"))


def drain(
    device: Annotated[
        str, typer.Argument(help="device id, unique id prefix or name", show_default=False)
    ],
    undo: Annotated[
        bool, typer.Option("--undo", help="let the device take new work again")
    ] = False,
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Stop placing new work on a device; the work it is running finishes. Needs an admin ticket.

    Example: fogmesh drain laptop-1        (and later: fogmesh drain laptop-1 --undo)
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        found = client.drain(resolve_device(client, device), draining=not undo)
    if as_json:
        typer.echo(json.dumps(found))
        return
    what = "takes new work again" if undo else "is draining: no new work, running work finishes"
    console.print(Text(f"{_label(found)} {what} (status {found.get('status')})"))


def remove_device(
    device: Annotated[
        str, typer.Argument(help="device id, unique id prefix or name", show_default=False)
    ],
    url: UrlOption = None,
    ticket: TicketOption = None,
    data_dir: DataDirOption = None,
    fingerprint: FingerprintOption = None,
    insecure_http: InsecureHttpOption = False,
    as_json: JsonOption = False,
) -> None:
    """Forget a device: its leased tasks go back to the queue. Needs an admin ticket.

    The device's agent ticket still verifies: if its agent runs on, it registers again. Stop
    the agent first (and delete its data directory to retire the device for good).

    Example: fogmesh device rm dev-7k3p --json
    """
    with client_for(url, ticket, data_dir, fingerprint, insecure_http) as client:
        devices = client.devices()
        device_id = pick_device(devices, device)
        record = next(d for d in devices if str(d.get("device_id")) == device_id)
        client.remove_device(device_id)
    if as_json:
        typer.echo(json.dumps({"device_id": device_id, "removed": True}))
        return
    console.print(Text(f"removed {_label(record)}; its tasks went back to the queue"))


def _label(device: dict[str, Any]) -> str:
    name = device_name(device)
    device_id = str(device.get("device_id"))
    return f"device {device_id}" + (f" ({name})" if name else "")
