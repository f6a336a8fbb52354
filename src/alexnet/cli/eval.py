"""Evaluate a checkpoint or run folder: alexnet eval CHECKPOINT_OR_RUN_DIR [--data SPEC] [--split val|test] [--tta ...].

Prints loss, top-1/top-5 accuracy and error, per-class accuracy, and writes the confusion matrix
as PNG (into the run folder unless --out says otherwise). The data defaults to the data the
checkpoint was trained on, prepared as it was (input size, channels, normalisation).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from alexnet.cli.common import files_read, number
from alexnet.config import TTA_MODES, VIEW_NAMES
from alexnet.errors import UsageError, printable
from alexnet.limits import MAX_BATCH_SIZE, MAX_WORKERS

EPILOG = """examples:
  alexnet eval runs/alexnet_mini-shapes-YYYYMMDD-HHMMSS
  alexnet eval runs/RUN/best.pt --split test --tta tencrop --json
  alexnet eval runs/RUN --int8                      # int8 on the CPU, to compare with the float top-1
  alexnet eval runs/RUN --data folder:my_photos"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                   help="a .pt checkpoint, or a run folder (its best.pt); also any weights --weights takes "
                        "(a Hub folder, hf-hub:ORG/NAME, .safetensors, .caffemodel; a .pth or imagenet1k with --model)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="the model a bare .pth state_dict or imagenet1k is for")
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="dataset spec (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="val", choices=("val", "test"), help="which held-out split (default val)")
    p.add_argument("--tta", default=None, choices=TTA_MODES,
                   help="test-time views: center, flip, tencrop (section 4.1; where training cropped); default: the "
                        "run's own, as its closing line scored it (center for weights without a run)")
    p.add_argument("--batch-size", type=number(int, 1, MAX_BATCH_SIZE), default=100, metavar="N",
                   help="images per batch (default 100)")
    p.add_argument("--workers", type=number(int, -1, MAX_WORKERS), default=-1, metavar="N",
                   help="data-loading processes (-1: auto)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--int8", action="store_true",
                   help="score the net quantized to int8 on the CPU (static, calibrated on training images)")
    p.add_argument("--calibration-images", type=number(int, 1, 1_000_000), default=512, metavar="N",
                   help="training images that set --int8's activation ranges (default 512)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--out", default=None, metavar="PNG",
                   help="where to write the confusion matrix (default beside the checkpoint)")
    p.add_argument("--force", action="store_true", help="replace the confusion matrix's PNG if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from alexnet.atomic import check_output
    from alexnet.engine.evaluate import evaluate_checkpoint, run_view
    from alexnet.engine.fast import resolve_device
    from alexnet.inference.hub import is_hub_id
    from alexnet.inference.weights import load_weights
    from alexnet.viz.confusion import plot_confusion

    calibrate = None
    if args.int8:
        from alexnet.inference.int8 import quantize_int8 as calibrate

        if args.amp:
            raise UsageError("--int8 and --amp are two precisions: choose one")
        if args.device not in ("auto", "cpu"):
            raise UsageError(
                f"--int8 runs on the CPU (PyTorch's int8 kernels are CPU ones), not {args.device}: use --device cpu"
            )
    device = resolve_device("cpu" if args.int8 else args.device)
    precision = "int8" if args.int8 else "bf16" if args.amp else "fp32"
    if args.model is None and not is_hub_id(args.checkpoint) and not Path(args.checkpoint).exists():
        raise UsageError(f"checkpoint not found: {args.checkpoint}")
    ckpt = load_weights(args.checkpoint, args.model)
    tta = args.tta or run_view(ckpt)
    whose = "as asked" if args.tta else "the run's own" if ckpt.get("config") else "the default for weights"
    suffix = "-int8" if args.int8 else ""
    where = Path(ckpt["path"])  # a checkpoint file: its folder; a Hub folder: itself; a Hub id: here
    beside = where if where.is_dir() else where.parent if where.exists() else Path()
    out = Path(args.out) if args.out else beside / f"confusion-{args.split}-{tta}{suffix}.png"
    try:  # an --out that cannot be written stops here; the default one costs the picture only
        check_output(out, force=args.force, inputs=[ckpt["path"], *files_read([args.data or ckpt.get("data")])])
        not_drawn = None
    except UsageError as e:
        if args.out:
            raise
        not_drawn = str(e)
    result = evaluate_checkpoint(ckpt, data=args.data, split=args.split, tta=tta, batch_size=args.batch_size,
                                 workers=args.workers, device=device, amp=args.amp, strict=args.strict,
                                 calibrate=calibrate, calibration_images=args.calibration_images)
    if result["n"] and not math.isfinite(result["loss"]):  # finite weights whose outputs overflow float32
        raise UsageError(f"{ckpt['path']}: its outputs are not finite numbers (NaN or infinity) on {result['data']}: "
                         "its weights are damaged or far out of range")
    spec, classes = result["data"], result["classes"]
    title = (f"{ckpt['model_name']} on {spec} ({args.split}, {VIEW_NAMES[tta]}{', int8' if args.int8 else ''}): "
             f"top-1 {result['top1']:.2%}")
    try:  # the figures matter more than the picture: a folder that cannot take it costs a warning
        if not not_drawn:
            plot_confusion(result["confusion"].numpy(), classes, out, title=title)
    except UsageError as e:
        not_drawn = str(e)
    bad = sorted({b.path for b in result["bad"]})
    if args.json:
        keys = ("loss", "top1", "top5", "top1_error", "top5_error", "n", "views")
        summary = {k: result[k] for k in keys} | {
            "checkpoint": ckpt["path"], "data": spec, "split": args.split, "tta": tta, "tta_from": whose,
            "precision": precision,
            "per_class": dict(zip(classes, result["per_class"])), "confusion_png": None if not_drawn else str(out),
            "bad_images": bad,
        }
        print(json.dumps(summary))
        warn_not_drawn(not_drawn)
        return 0
    print(printable(f"{ckpt['model_name']} from {ckpt['path']} on {spec} ({args.split}, {result['n']} images, "
                    f"{VIEW_NAMES[tta]} ({tta}, {whose}; --tta to change), {precision})"))
    print(f"  loss   {result['loss']:.4f}")
    print(f"  top-1  {result['top1']:.2%}  (error {result['top1_error']:.2%})")
    print(f"  top-5  {result['top5']:.2%}  (error {result['top5_error']:.2%})")
    rows = sorted(zip(result["per_class"], classes, result["per_class_n"]))
    shown = rows if len(rows) <= 20 else rows[:10]
    print("per-class accuracy" + ("" if len(rows) <= 20 else " (the 10 worst)") + ":")
    for acc, name, n in shown:
        print(f"  {printable(name):<24} {acc:7.2%}  ({n} images)")
    if bad:
        print(f"skipped {len(bad)} unreadable image(s), e.g. {printable(bad[0])}")
    if not not_drawn:
        print(f"confusion matrix: {printable(str(out))}")
    warn_not_drawn(not_drawn)
    return 0


def warn_not_drawn(why: str | None) -> None:
    if why:
        sys.stdout.flush()  # the results, then the warning
        print(printable(f"alexnet eval: warning: the confusion matrix was not drawn: {why}"), file=sys.stderr)
