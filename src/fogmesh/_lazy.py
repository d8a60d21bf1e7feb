"""Names a package exports but imports only on first use (PEP 562 module ``__getattr__``).

A device agent must not pay at start-up for what only a coordinator or a tool uses (pyseto, the
store, model registries): a package lists where each such name lives, and ``lazy_exports`` gives
it the ``__getattr__`` and ``__dir__`` that import the home module when the name is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: dict[str, Any], homes: Mapping[str, str], exported: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``: each name in
    ``homes`` is read from its home module on first use and kept in ``namespace`` (later
    lookups never come back here); ``exported`` is the package's ``__all__``."""
    package = namespace["__name__"]
    listed = frozenset(exported)

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | listed)

    return __getattr__, __dir__
