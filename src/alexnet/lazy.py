"""Names a package exports but imports on first use (PEP 562's module `__getattr__` and `__dir__`),
so that importing the package stays cheap: `import alexnet` and `alexnet bench --help` load no
torch, while dir(), help() and tab completion still list every name."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str],
                 own: dict[str, Any]) -> tuple[Callable[[], list[str]], Callable[[str], Any]]:
    """`__dir__` and `__getattr__` for `package`: `exports` maps each name to the module that
    defines it; `own` is the package's globals()."""

    def __dir__() -> list[str]:
        return sorted(set(own) | set(exports))

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __dir__, __getattr__
