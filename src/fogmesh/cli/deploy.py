"""``fogmesh deploy --device ID --model ID``: deploy a registered model to a device.

Embedded: opens an ``EdgeManager`` on the data directory (the device must be registered there);
the deployment really transfers, verifies and runs the model before this returns.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fogmesh.config import load_settings

__all__ = ["deploy"]

console = Console()


async def _deploy(data_dir: Path, device_id: str, model_id: str, kind: str) -> dict[str, Any]:
    # Imported here: the manager pulls in the coordinator, numpy and ONNX tooling, which other
    # commands (and `--help`) should not pay for.
    from fogmesh.edge.manager import EdgeManager

    async with EdgeManager(data_dir=data_dir, monitor=False) as manager:
        if not manager.is_client:  # a unique id prefix or a name, as everywhere
            import msgspec

            from fogmesh.cli.resolve import pick_device

            records = await manager.coordinator.list_devices()
            device_id = pick_device([msgspec.to_builtins(r) for r in records], device_id)
        deployment_id = await manager.deploy_workload(device_id, model_id, kind)
        return manager.get_deployment(deployment_id)


def deploy(
    device: Annotated[str, typer.Option("--device", help="device id, unique id prefix or name")],
    model: Annotated[str, typer.Option("--model", help="registered model id")],
    kind: Annotated[
        str, typer.Option("--type", help="inference, training, embedding ...")
    ] = "inference",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="data directory (FOGMESH_HOME)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Deploy a model to a device: variant choice, chunked transfer, SHA-256 check, ORT run.

    Example: fogmesh deploy --device my_phone --model tutor_v1 --json
    """
    record = asyncio.run(_deploy(load_settings(home=data_dir).home, device, model, kind))
    if as_json:
        typer.echo(json.dumps(record))
        return
    console.print(
        f"{record['deployment_id']}: {record['model_id']} {record['variant']} on "
        f"{record['device_id']} is {record['state']} ({record['bytes_transferred']} bytes in "
        f"{record['chunks']} chunks of {record['chunk_size']} B)",
        highlight=False,
    )
    for reason in record["reasons"]:
        console.print(f"  {reason}", highlight=False)
