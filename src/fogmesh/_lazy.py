"""Names a package exports but imports only on first use (PEP 562 module ``__getattr__``).

A device agent must not pay at start-up for what only a coordinator or a tool uses (pyseto, the
store, model registries): a package lists where each such name lives, and ``lazy_exports`` gives
it the ``__getattr__`` and ``__dir__`` that import the home module when the name is first read.

``defer_imports`` does the same for modules a dependency imports at its top but uses late or
never (the agent process defers what websockets imports that way: docs/performance.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["defer_imports", "lazy_exports"]


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


class _Deferred(types.ModuleType):
    """A module whose code has not run yet: the first attribute it lacks runs it (in place)."""

    def __getattr__(self, attr: str) -> Any:
        spec = self.__spec__
        self.__class__ = types.ModuleType  # type: ignore[assignment]  # a plain module again
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(self)
        return getattr(self, attr)


def defer_imports(*names: str) -> None:
    """Bind each module in ``names`` that is not imported yet to a stand-in whose code runs on
    its first use (the first attribute read beyond what the import system itself sets): an
    ``import`` of it then costs nothing until the module is used.

    ``importlib.util.LazyLoader`` is not enough: on Python 3.11 the ``import`` statement itself
    reads the module's ``__spec__`` through its loading hook and so loads it. Neither has a
    lock on 3.11: a module deferred here must be first used from one thread at a time.
    """
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _Deferred
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)  # as an eager import binds it
