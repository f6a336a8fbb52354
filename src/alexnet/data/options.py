"""Parsing the ``k=v,k=v`` options of a dataset spec such as ``shapes:size=64,train=2000``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alexnet.config import kv_pairs
from alexnet.errors import UsageError


def parse_options(
    dataset: str, text: str | None, kinds: dict[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """Split `text` on commas into ``key=value`` pairs and convert each value with ``kinds[key]``.

    An unknown key, a part without ``=``, a repeated key or a value that does not convert is a
    `UsageError` naming the part; keys not given are simply absent from the result.
    """
    options: dict[str, Any] = {}
    if not text:
        return options
    for part, key, value in kv_pairs(text):
        key = key.lower()
        if value is None:
            raise UsageError(f"{dataset}: option {part!r} is not key=value (known keys: {', '.join(kinds)})")
        if key not in kinds:
            raise UsageError(f"{dataset}: unknown option {key!r} (known: {', '.join(kinds)})")
        if key in options:
            raise UsageError(f"{dataset}: option {key!r} given twice")
        try:
            options[key] = kinds[key](value)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(kinds[key], "valid")
            raise UsageError(f"{dataset}: {key}={value!r} is not {kind}") from None
    return options


def at_least(dataset: str, key: str, value: float, low: float) -> None:
    """Raise a `UsageError` unless ``value >= low``."""
    if value < low:
        raise UsageError(f"{dataset}: {key}={value} must be at least {low}")


def parse_chw(text: str, what: str) -> tuple[int, int, int]:
    """'3x224x224' -> (3, 224, 224): an image shape with 1 or 3 channels and positive sides."""
    try:
        c, h, w = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"{what} {text!r} is not CxHxW (e.g. 3x224x224)") from None
    if c not in (1, 3):
        raise UsageError(f"{what} {text!r} must have 1 or 3 channels")
    if h < 1 or w < 1:
        raise UsageError(f"{what} {text!r} must have positive height and width")
    return c, h, w
