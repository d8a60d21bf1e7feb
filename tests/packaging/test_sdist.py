"""The sdist holds the project's files and nothing else that happens to sit in the tree.

Following the README in a checkout leaves data directories beside the sources: the
coordinator's keys and ``admin.ticket``, agents' identities, SQLite databases. None of that may
be published.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDED = ("src/fogmesh/", "tests/", "docs/", "benchmarks/")
INCLUDED_FILES = ("README.md", "CHANGELOG.md", "Makefile", "pyproject.toml")
JUNK = (
    "fog/admin.ticket",
    "fog/coordinator.key",
    "fog/fogmesh.db",
    "phone/agent/identity.key",
    "phone/agent/agent.ticket",
    "my-fog/admin.ticket",  # a data dir the .gitignore does not know
    "my-fog/state.db",
    "notes.txt",
    "identity.key",
    "src/fogmesh/identity.key",  # inside an included directory
    "tests/admin.ticket",
    "docs/fogmesh.db",
)


def _tracked() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know which files are the project's")
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def test_the_sdist_contains_only_the_included_paths(tmp_path: Path) -> None:
    from hatchling.builders.sdist import SdistBuilder

    tree = tmp_path / "tree"
    tracked = _tracked()
    for path in tracked:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, tree / path)
    for path in JUNK:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text("secret\n")

    (built,) = SdistBuilder(str(tree)).build(directory=str(tmp_path / "dist"))
    with tarfile.open(built) as archive:
        top = archive.getnames()[0].split("/")[0]
        members = {
            name.removeprefix(f"{top}/")
            for name in archive.getnames()
            if archive.getmember(name).isfile()
        }

    assert not members & set(JUNK)
    expected = {p for p in tracked if p.startswith(INCLUDED) or p in INCLUDED_FILES}
    # hatchling always adds PKG-INFO, and .gitignore so that a build from the sdist ignores alike
    assert members == expected | {"PKG-INFO", ".gitignore"}
