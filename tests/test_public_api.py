"""The package's public surface is explicit, sorted and importable."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import fogmesh


def isort_order(names: list[str]) -> list[str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions and the rest."""

    def key(name: str) -> tuple[int, str]:
        if name.isupper():
            return (0, name)
        return (1 if name[0].isupper() else 2, name)

    return sorted(set(names), key=key)


PUBLIC_MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(fogmesh.__path__, prefix="fogmesh.")
    if not any(part.startswith("_") for part in name.split("."))
)


def test_top_level_all_is_sorted_and_unique() -> None:
    assert list(fogmesh.__all__) == isort_order(fogmesh.__all__)


def test_top_level_all_names_resolve() -> None:
    for name in fogmesh.__all__:
        assert hasattr(fogmesh, name), name


def test_seed_names_are_exported() -> None:
    for name in ("MobileResourceManager", "ResourcePolicy"):
        assert name in fogmesh.__all__


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_module_declares_a_sorted_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    if module_name.startswith("fogmesh.cli"):
        pytest.skip("CLI modules are entry points, not API")
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert list(exported) == isort_order(exported), f"{module_name}.__all__ is not sorted"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_every_public_name_has_a_home_module() -> None:
    homes = fogmesh._HOME
    assert set(homes) == set(fogmesh.__all__) - {"__version__"}
    for name, module in homes.items():
        assert getattr(importlib.import_module(module), name) is getattr(fogmesh, name)


def test_importing_fogmesh_loads_no_heavy_dependency() -> None:
    # Agents and worker processes import fogmesh; the store, the server and numpy load on use.
    code = (
        "import sys, fogmesh; "
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'fastapi', 'onnxruntime') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
