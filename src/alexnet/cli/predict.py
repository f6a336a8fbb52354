"""Classify pictures: alexnet predict INPUT... (--checkpoint CKPT_OR_RUN_DIR | --model NAME --weights W).

INPUTs are image files or folders (searched recursively). Prints each image's top-k classes with
their probabilities, or with --json one JSON object per line. An unreadable file gets an error
entry and the others are still classified; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from alexnet.cli.common import DEVICES, add_model_arguments, model_from_args, number
from alexnet.config import TTA_MODES
from alexnet.errors import printable
from alexnet.limits import MAX_BATCH_SIZE

EPILOG = """examples:
  alexnet predict cat.jpg photos/ --checkpoint runs/RUN
  alexnet predict cat.jpg --model alexnet_owt --weights imagenet1k --topk 3
  alexnet predict photos/ --model alexnet_owt --weights alexnet-owt-7be5be79.pth --tta tencrop --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    add_model_arguments(p)
    p.add_argument("--topk", type=number(int, 1), default=5, metavar="K", help="classes shown per image (default 5)")
    p.add_argument("--tta", default="center", choices=TTA_MODES,
                   help="test-time views: center, flip, tencrop (section 4.1)")
    p.add_argument("--batch-size", type=number(int, 1, MAX_BATCH_SIZE), default=32, metavar="N",
                   help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true",
                   help='one JSON object per line: {"path", "topk": [{"class", "index", "prob"}]}')


def run(args: argparse.Namespace) -> int:
    from alexnet.engine.fast import resolve_device
    from alexnet.inference.predict import predict_iter

    ckpt = model_from_args(args)
    device = resolve_device(args.device)
    failed = total = 0
    results = predict_iter(args.inputs, ckpt, topk=args.topk, tta=args.tta, batch_size=args.batch_size, device=device)
    for result in results:
        total += 1
        failed += "error" in result
        if args.json:
            print(json.dumps(result), flush=True)
        elif "error" in result:
            print(printable(f"{result['path']}: error: {result['error']}"), flush=True)
        else:
            print(printable(result["path"]))
            for rank, entry in enumerate(result["topk"], 1):
                print(f"  {rank}. {entry['prob']:7.2%}  {printable(entry['class'])}  ({entry['index']})")
            sys.stdout.flush()
    if failed:
        print(f"alexnet predict: {failed} of {total} input(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
