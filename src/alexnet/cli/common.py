"""Options several verbs share: which trained net to use (--checkpoint, or --model with --weights),
and range-checked numbers (`number`), so a bad value is argparse's one-line error, exit 2,
before any work is done."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from alexnet.errors import UsageError
from alexnet.limits import MAX_COUNT

DEVICES = ("auto", "cpu", "cuda", "mps")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the net (one of)")
    g.add_argument("--checkpoint", metavar="CKPT_OR_RUN_DIR", help="a checkpoint (.pt), or a run folder (its best.pt)")
    g.add_argument("--model", metavar="NAME", help="a model name (alexnet models), used with --weights")
    g.add_argument("--weights", metavar="W", help="'imagenet1k' (torchvision's pretrained alexnet_owt / vgg), "
                   "or a file: torchvision-format .pth state_dict, our checkpoint, .safetensors, Caffe's .caffemodel; "
                   "or a folder in the Hub's layout (alexnet push --to-folder), or hf-hub:ORG/NAME[@REVISION]")


def model_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The checkpoint dict the options name (see alexnet.inference.weights)."""
    from alexnet.inference.weights import select_model

    if args.model is not None and args.weights is None and args.checkpoint is None:
        raise UsageError("--model needs --weights (a pretrained set such as imagenet1k, or a file)")
    if args.checkpoint is None and args.weights is None:
        raise UsageError("say which net to use: --checkpoint CKPT_OR_RUN_DIR, or --model NAME --weights W")
    return select_model(args.checkpoint, args.model, args.weights)


def add_switch(p: argparse.ArgumentParser, name: str, help: str, default: Any = argparse.SUPPRESS) -> None:
    """A switch option as every verb takes it: `--NAME` (on), `--NAME auto|on|off`, `--no-NAME` (off)."""
    flag = "--" + name.replace("_", "-")
    p.add_argument(flag, dest=name, nargs="?", const="on", choices=("auto", "on", "off"), metavar="auto|on|off",
                   default=default, help=help)
    p.add_argument("--no-" + flag[2:], action="store_const", const="off", dest=name, default=argparse.SUPPRESS,
                   help=f"the same as {flag} off")


def number(kind: type[int] | type[float], low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse `type`: the text as `kind`, finite and in [low, high], or a one-line error.

    Integers are bounded even without a `high` (MAX_COUNT, a billion), so no value reaches
    torch's int64 arguments; '1e3' is read as the integer 1000.
    """
    given, high = high is not None, (MAX_COUNT if kind is int else math.inf) if high is None else high
    what = "an integer" if kind is int else "a number"
    rule = f"in [{low:g}, {high:,}]" if kind is int else f"in [{low:g}, {high:g}]"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = _integral(text) if kind is int else None
            if value is None:
                raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if not (math.isfinite(value) and low <= value <= high):
            shown = rule if given else f"at most {high:,}" if value > high else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"must be {shown}, got '{text}'")
        return kind(value)

    convert.__name__ = kind.__name__
    convert.low, convert.high = low, high  # type: ignore[attr-defined]  # read by the tests
    return convert


def _integral(text: str) -> float | None:
    """'1e20' -> 1e20 (range-checked next, as a number, never turned into a huge int); None if not integral."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if not math.isfinite(value) or value.is_integer() else None


def files_read(values: list[Any], *, nets: list[Any] = ()) -> list[str]:
    """What a command reads, as its arguments name it, for `atomic.check_output`: `values` (images,
    data) as files, or folders read whole, or dataset specs `name:DIR` as their folder;
    `nets` (checkpoints, weights, run folders) as files, a folder as its checkpoints and metrics."""
    from pathlib import Path

    from alexnet.engine.run_folder import CHECKPOINTS

    named: list[str] = []
    from alexnet.data.registry import parse_spec

    for value in values:
        if isinstance(value, str) and value and ":" in value and not Path(value).exists():
            try:  # a dataset spec: the folder readers take its argument whole as their folder
                value = parse_spec(value)[1]
            except UsageError:
                pass
        if isinstance(value, str) and value:
            named.append(str(Path(value).expanduser()))  # as the data readers expand it
    for value in nets:
        if isinstance(value, str) and value:
            folder = Path(value).is_dir()
            named += [str(Path(value) / n) for n in (*CHECKPOINTS, "metrics.jsonl")] if folder else [value]
    return named


class MergeKeys(argparse.Action):
    """A K=V,... option given twice: the two merged, a key in both an error (argparse would keep the last
    flag whole, and a key set in the first would vanish without a word)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        seen = getattr(namespace, self.dest, None)
        if isinstance(seen, dict):
            twice = sorted(set(seen) & set(values))
            if twice:
                parser.error(f"{option_string}: the key {twice[0]!r} is given twice")
            values = {**seen, **values}
        setattr(namespace, self.dest, values)


def kv_option(text: str) -> dict[str, Any]:
    """A K=V,... option's value as a dict (config.parse_kv), or argparse's one-line refusal."""
    from alexnet.config import parse_kv

    try:
        return parse_kv(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
