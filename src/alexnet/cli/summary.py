"""Layer table of a model: alexnet summary MODEL [--input 3x227x227] [--json].

Per layer: name, kernel and stride, output shape, parameters, multiply-adds; then the totals and the share of the
parameters in the convolutional vs the fully-connected layers (alexnet2012: about 4% / 96%).
"""

from __future__ import annotations

import argparse
import json

from alexnet.cli.common import MergeKeys, kv_option, number
from alexnet.errors import UsageError
from alexnet.limits import MAX_CLASSES

EPILOG = """examples:
  alexnet summary alexnet2012
  alexnet summary alexnet_owt --input 3x224x224 --json
  alexnet summary alexnet_mini --model-args activation=tanh"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model name (see alexnet models)")
    p.add_argument("--input", default=None, metavar="CxHxW", help="input size (default: the model's own)")
    p.add_argument("--num-classes", type=number(int, 1, MAX_CLASSES), default=None, metavar="N",
                   help="number of classes (default: the model's)")
    p.add_argument("--model-args", type=kv_option, action=MergeKeys, default={}, metavar="K=V,...",
                   help="extra builder arguments, e.g. towers=1")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def run(args: argparse.Namespace) -> int:
    from alexnet.data.datasets import parse_chw
    from alexnet.models import build_model
    from alexnet.models.summary import format_summary, summarize

    kwargs = dict(args.model_args)
    if args.num_classes is not None:
        if kwargs.get("num_classes", args.num_classes) != args.num_classes:
            raise UsageError(f"--num-classes {args.num_classes} and --model-args num_classes={kwargs['num_classes']} "
                             "disagree: give one")
        kwargs["num_classes"] = args.num_classes
    size = parse_chw(args.input, "--input") if args.input else None
    if size is not None and "in_channels" not in kwargs:
        kwargs["in_channels"] = size[0]
    model = build_model(args.model, **kwargs)
    table = summarize(model, size)
    print(json.dumps(table) if args.json else format_summary(table))
    return 0
