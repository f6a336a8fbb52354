"""What the viz tests share: the figures a viz module saves, kept to be measured afterwards."""

import importlib
from typing import Any

import pytest


@pytest.fixture
def drawn_by(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The figures each viz module saves, kept so their artists can be measured after the file is written."""
    figs: dict[str, list[Any]] = {}
    for name in ("filters", "features", "predictions", "heatmap", "neighbors", "curves", "augment", "confusion"):
        module = importlib.import_module(f"alexnet.viz.{name}")
        real = module.finish

        def keep(fig: Any, path: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            figs.setdefault(_name, []).append(fig)
            return _real(fig, path, **kw)

        monkeypatch.setattr(module, "finish", keep)
    return figs
