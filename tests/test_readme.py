"""Every Python block in README.md runs as written (blocks marked *planned* are skipped)."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(
    r"(?:<!-- planned: (?P<planned>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S
)


def readme_blocks() -> list[tuple[str | None, str]]:
    return [(m["planned"], m["code"]) for m in _BLOCK.finditer(README.read_text())]


def test_readme_has_python_examples() -> None:
    runnable = [code for planned, code in readme_blocks() if planned is None]
    assert len(runnable) >= 2


async def _run_blocks(namespace: dict[str, Any]) -> list[str]:
    skipped = []
    for planned, code in readme_blocks():
        if planned is not None:
            skipped.append(planned)
            continue
        compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, namespace)
        if asyncio.iscoroutine(result):
            await result
    return skipped


async def test_readme_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    await _run_blocks({"__name__": "readme"})
    out = capsys.readouterr().out
    assert re.search(r"^Power mode: (performance|balanced|power_save|critical)$", out, re.M)
    assert re.search(r"^Chunk size: \d+$", out, re.M)
    assert re.search(r"^CPU limit: [\d.]+%$", out, re.M)


def test_planned_blocks_name_an_issue() -> None:
    for planned, _ in readme_blocks():
        if planned is not None:
            assert re.fullmatch(r"issue \d+", planned), planned
