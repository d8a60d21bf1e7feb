"""``fogmesh model add|list|remove``: the model registry in the data directory.

Thin over ``fogmesh.edge.ModelRegistry``; an invalid file or unknown id is a ``FogmeshError`` and
becomes one line on stderr in ``fogmesh.cli.app.main``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fogmesh.config import load_settings
from fogmesh.edge.models import ModelInfo, ModelRegistry

__all__ = ["app"]

app = typer.Typer(
    help="Register ONNX models (fp32/int8 variants) that deployments send to devices.",
    no_args_is_help=True,
)
console = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="data directory holding the registry (FOGMESH_HOME)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _registry(data_dir: Path | None) -> ModelRegistry:
    return ModelRegistry(load_settings(home=data_dir).home)


def _row(info: ModelInfo) -> dict[str, object]:
    return info.to_dict()


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="the .onnx file")],
    model_id: Annotated[str, typer.Option("--id", help="model id, e.g. tutor_v1")],
    variant: Annotated[str, typer.Option("--variant", help="fp32 or int8")] = "fp32",
    int8: Annotated[
        bool, typer.Option("--int8", help="also store an int8 variant quantised from this fp32")
    ] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Validate an ONNX file and store it, content-addressed by SHA-256.

    Example: fogmesh model add tutor.onnx --id tutor_v1 --int8
    """
    registry = _registry(data_dir)
    try:
        info = registry.add(file, model_id, variant, make_int8=int8)
        added = [info] + ([registry.get(model_id, "int8")] if int8 else [])
    finally:
        registry.close()
    if as_json:
        typer.echo(json.dumps([_row(i) for i in added]))
        return
    for i in added:
        console.print(
            f"added [bold]{i.model_id}[/] {i.variant.value}: {i.size_bytes} bytes, "
            f"sha256 {i.sha256[:16]}…, opset {i.opset}",
            highlight=False,
        )


@app.command("list")
def list_models(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List registered models and their variants.

    Example: fogmesh model list --json
    """
    registry = _registry(data_dir)
    try:
        infos = registry.list()
    finally:
        registry.close()
    if as_json:
        typer.echo(json.dumps([_row(i) for i in infos]))
        return
    if not infos:
        console.print("no models registered; add one with `fogmesh model add FILE --id ID`")
        return
    table = Table("model", "variant", "bytes", "sha256", "opset", "inputs", "outputs")
    for i in infos:
        table.add_row(
            i.model_id,
            i.variant.value,
            str(i.size_bytes),
            i.sha256[:16] + "…",
            str(i.opset),
            ", ".join(f"{t.name}:{t.dtype}{list(t.shape)}" for t in i.inputs),
            ", ".join(f"{t.name}:{t.dtype}{list(t.shape)}" for t in i.outputs),
        )
    console.print(table)


@app.command("remove")
def remove(
    model_id: Annotated[str, typer.Argument(help="model id")],
    variant: Annotated[
        str | None, typer.Option("--variant", help="only this variant (fp32 or int8)")
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Forget a model (or one variant); its bytes go once nothing else uses them.

    Example: fogmesh model remove tutor_v1 --variant int8
    """
    registry = _registry(data_dir)
    try:
        removed = registry.remove(model_id, variant)
    finally:
        registry.close()
    if as_json:
        typer.echo(json.dumps([_row(i) for i in removed]))
        return
    for i in removed:
        console.print(f"removed {i.model_id} {i.variant.value}", highlight=False)
