"""``fogmesh model add|list|remove`` and ``fogmesh deploy`` through the real CLI entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from edge_models import ModelFactory

from fogmesh.cli import main
from fogmesh.edge import EdgeManager


def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["fogmesh", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_model_add_list_remove(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_model: ModelFactory,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    path = make_model(features=32, outputs=32)
    code, out, err = cli(
        capsys,
        monkeypatch,
        "model",
        "add",
        str(path),
        "--id",
        "tiny",
        "--int8",
        "--data-dir",
        str(data),
        "--json",
    )
    assert code == 0, err
    added = json.loads(out)
    assert [a["variant"] for a in added] == ["fp32", "int8"]
    assert added[0]["size_bytes"] == path.stat().st_size

    code, out, _ = cli(capsys, monkeypatch, "model", "list", "--data-dir", str(data), "--json")
    assert code == 0
    assert [(m["model_id"], m["variant"]) for m in json.loads(out)] == [
        ("tiny", "fp32"),
        ("tiny", "int8"),
    ]
    code, out, _ = cli(capsys, monkeypatch, "model", "list", "--data-dir", str(data))
    assert code == 0 and "tiny" in out and "int8" in out

    code, out, _ = cli(
        capsys,
        monkeypatch,
        "model",
        "remove",
        "tiny",
        "--variant",
        "int8",
        "--data-dir",
        str(data),
        "--json",
    )
    assert code == 0 and [m["variant"] for m in json.loads(out)] == ["int8"]


def test_a_bad_file_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    code, _, err = cli(
        capsys, monkeypatch, "model", "add", str(bad), "--id", "bad", "--data-dir", str(tmp_path)
    )
    assert code == 1
    assert err.strip().startswith("error: bad.onnx is not a valid ONNX model")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_deploy_to_a_registered_device(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_model: ModelFactory,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"

    async def register() -> None:
        async with EdgeManager(data_dir=data, monitor=False) as manager:
            await manager.register_device("phone", "Phone", profile="phone-charging")

    asyncio.run(register())
    code, _, err = cli(
        capsys,
        monkeypatch,
        "model",
        "add",
        str(make_model()),
        "--id",
        "m",
        "--int8",
        "--data-dir",
        str(data),
    )
    assert code == 0, err
    code, out, err = cli(
        capsys,
        monkeypatch,
        "deploy",
        "--device",
        "phone",
        "--model",
        "m",
        "--data-dir",
        str(data),
        "--json",
    )
    assert code == 0, err
    record = json.loads(out)
    assert (record["state"], record["variant"], record["device_id"]) == ("ready", "int8", "phone")
    # A unique prefix of the device id will do, as everywhere an id is taken.
    code, out, err = cli(
        capsys, monkeypatch, "deploy", "--device", "ph", "--model", "m", "--data-dir", str(data),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["device_id"] == "phone"

    code, _, err = cli(
        capsys,
        monkeypatch,
        "deploy",
        "--device",
        "phone",
        "--model",
        "missing",
        "--data-dir",
        str(data),
    )
    assert code == 1
    assert "unknown model 'missing'" in err
