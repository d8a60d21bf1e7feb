"""Every ``FOGMESH_*`` environment variable the source reads is listed in docs/configuration.md,
the table the README links to, and the table lists none that nothing reads."""

from __future__ import annotations

import re
from pathlib import Path

from fogmesh import config

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"FOGMESH_[A-Z0-9_]*[A-Z0-9]")


def names_in(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        found |= set(NAME.findall(path.read_text(encoding="utf-8")))
    return found


def source_names() -> set[str]:
    names = names_in(sorted((ROOT / "src" / "fogmesh").rglob("*.py")))
    # fogmesh.config builds its names from a prefix and its field names (FOGMESH_<FIELD>).
    names |= {f"FOGMESH_{field.upper()}" for field in config._FIELDS}
    return names


def documented() -> set[str]:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return {m.group(1) for line in rows if (m := re.match(r"\| `(FOGMESH_[A-Z0-9_]+)` \|", line))}


def test_every_variable_the_source_reads_is_in_the_table() -> None:
    missing = source_names() - documented()
    assert not missing, f"add these to the table in {DOC.relative_to(ROOT)}: {sorted(missing)}"


def test_the_table_lists_only_variables_something_reads() -> None:
    used = source_names() | names_in(sorted((ROOT / "tests").rglob("*.py")))
    stale = documented() - used
    assert not stale, f"nothing reads {sorted(stale)}; remove them from {DOC.name}"


def test_the_readme_links_to_the_table() -> None:
    assert "(docs/configuration.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
