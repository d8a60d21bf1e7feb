"""The OpenAPI schema tells the truth: schemathesis runs every check it has (no 5xx, declared
status codes, content types, headers and response schemas, schema-valid data accepted and
schema-invalid data refused, 405 with Allow, auth …) against a real coordinator process on
127.0.0.1 with the admin ticket, and finds nothing.

The examples per operation are bounded (``-n``) and the seed fixed, so a run takes well under a
minute on a quiet machine and a failure reproduces. ``schemathesis_hooks.py`` applies the one
rule the schema can only say in words (a deadline lies ahead) and keeps long polls short.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import Fog

pytest.importorskip("schemathesis", reason="schemathesis comes with the dev extra")

HERE = Path(__file__).resolve().parent
EXAMPLES_PER_OPERATION = 10


def test_schemathesis_finds_no_failure_with_every_check(fog: Fog) -> None:
    fog.start_coordinator()
    ticket = (fog.coord_dir / "admin.ticket").read_text().strip()
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "NO_COLOR": "1",
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{fog.url}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {ticket}",
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", "14",
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=fog.root, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    report = run.stdout[-12_000:] + run.stderr[-3_000:]
    assert run.returncode == 0, report
    summary = run.stdout.strip().splitlines()[-1]
    assert "failure" not in summary and "error" not in summary, report
