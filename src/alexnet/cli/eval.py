"""Evaluate a checkpoint or run folder: alexnet eval CHECKPOINT_OR_RUN_DIR [--data SPEC] [--split val|test] [--tta ...].

Prints loss, top-1/top-5 accuracy and error, per-class accuracy, and writes the confusion matrix
as PNG (into the run folder unless --out says otherwise). The data defaults to the data the
checkpoint was trained on, prepared as it was (input size, channels, normalisation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alexnet.config import TTA_MODES
from alexnet.errors import UsageError

EPILOG = """examples:
  alexnet eval runs/alexnet_mini-shapes-20261122-101500
  alexnet eval runs/RUN/best.pt --split test --tta tencrop --json
  alexnet eval runs/RUN --data folder:my_photos"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR", help="a .pt checkpoint, or a run folder (its best.pt)")
    p.add_argument("--data", default=None, metavar="SPEC", help="dataset spec (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="val", choices=("val", "test"), help="which held-out split (default val)")
    p.add_argument("--tta", default="center", choices=TTA_MODES, help="test-time views: center, flip, tencrop (section 4.1)")
    p.add_argument("--batch-size", type=int, default=100, metavar="N", help="images per batch (default 100)")
    p.add_argument("--workers", type=int, default=-1, metavar="N", help="data-loading processes (-1: auto)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--out", default=None, metavar="PNG", help="where to write the confusion matrix")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1; got {args.batch_size}")
    if args.workers < -1:
        raise UsageError(f"--workers must be >= 0 (or -1 for auto); got {args.workers}")
    from alexnet.data import open_dataset
    from alexnet.data.loader import default_workers, make_loader
    from alexnet.data.transforms import EvalViews, eval_prepare
    from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from alexnet.engine.evaluate import evaluate
    from alexnet.engine.train import autocast_for, resolve_device
    from alexnet.viz.confusion import plot_confusion

    ckpt = load_checkpoint(args.checkpoint)
    device = resolve_device(args.device)
    model = model_from_checkpoint(ckpt).to(device)
    config = ckpt.get("config") or {}
    spec = args.data or ckpt["data"]
    source = open_dataset(spec, seed=int(config.get("seed", 0)), val_fraction=float(config.get("val_fraction", 0.1)))
    classes = list(ckpt["classes"])
    if len(source.classes) != len(classes):
        raise UsageError(f"{spec} has {len(source.classes)} classes but the checkpoint was trained on {len(classes)}")
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels, tta=args.tta)
    views = EvalViews(size=size, channels=channels, mean=ckpt["mean"], std=ckpt["std"], tta=args.tta).to(device)
    workers = default_workers() if args.workers < 0 else args.workers
    loader = make_loader(source.split(args.split), prepare, batch_size=args.batch_size, shuffle=False, workers=workers)
    autocast, _ = autocast_for(device, args.amp)
    result = evaluate(model, loader, device=device, num_classes=len(classes), views=views, autocast=autocast, strict=args.strict)
    if result["n"] == 0:
        raise UsageError(f"{spec} ({args.split}) has no readable images")

    out = Path(args.out) if args.out else Path(ckpt["path"]).parent / f"confusion-{args.split}-{args.tta}.png"
    plot_confusion(result["confusion"].numpy(), classes, out, title=f"{ckpt['model_name']} on {spec} ({args.split}, {args.tta}): top-1 {result['top1']:.2%}")
    bad = sorted({b.path for b in result["bad"]})
    if args.json:
        keys = ("loss", "top1", "top5", "top1_error", "top5_error", "n", "views")
        summary = {k: result[k] for k in keys} | {
            "checkpoint": ckpt["path"], "data": spec, "split": args.split, "tta": args.tta,
            "per_class": dict(zip(classes, result["per_class"])), "confusion_png": str(out), "bad_images": bad,
        }
        print(json.dumps(summary))
        return 0
    print(f"{ckpt['model_name']} from {ckpt['path']} on {spec} ({args.split}, {result['n']} images, {args.tta}, {result['views']} view(s))")
    print(f"  loss   {result['loss']:.4f}")
    print(f"  top-1  {result['top1']:.2%}  (error {result['top1_error']:.2%})")
    print(f"  top-5  {result['top5']:.2%}  (error {result['top5_error']:.2%})")
    rows = sorted(zip(result["per_class"], classes, result["per_class_n"]))
    shown = rows if len(rows) <= 20 else rows[:10]
    print("per-class accuracy" + ("" if len(rows) <= 20 else " (the 10 worst)") + ":")
    for acc, name, n in shown:
        print(f"  {name:<24} {acc:7.2%}  ({n} images)")
    if bad:
        print(f"skipped {len(bad)} unreadable image(s), e.g. {bad[0]}")
    print(f"confusion matrix: {out}")
    return 0
