"""List the models: alexnet models [--json].

Name, parameters (at the default number of classes), input size, and what each one is.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    import torch

    from alexnet.models import MODELS, build_model, list_models

    rows = []
    with torch.device("meta"):  # count parameters without allocating or initialising 140M weights
        for name in list_models():
            model = build_model(name)
            params = sum(p.numel() for p in model.parameters())
            rows.append({"name": name, "params": params, "input_size": list(model.input_size),
                         "num_classes": model.num_classes, "description": MODELS[name].description})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'model':<16} {'parameters':>13}  {'input':<11} {'classes':>7}  description")
    for r in rows:
        size = "x".join(str(v) for v in r["input_size"])
        print(f"{r['name']:<16} {r['params']:>13,}  {size:<11} {r['num_classes']:>7}  {r['description']}")
    return 0
