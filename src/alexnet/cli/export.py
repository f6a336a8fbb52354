"""Export a trained net: alexnet export CHECKPOINT --format onnx|pt2|torchscript|safetensors [--out FILE].

The exported net takes float32 N,C,S,S images normalised with the mean and std it prints, and
gives logits. The file is checked after writing: ONNX in onnxruntime (when installed) against
PyTorch on random inputs, PT2 by torch.export.load, TorchScript (legacy) in torch.jit,
safetensors by reading it back.
"""

from __future__ import annotations

import argparse
import json

from alexnet.errors import printable
from alexnet.inference import FORMATS

EPILOG = """examples:
  alexnet export runs/RUN --format onnx
  alexnet export runs/RUN --format pt2                 # torch.export: torch.export.load(path).module()
  alexnet export runs/RUN/best.pt --format safetensors --out mini.safetensors
  alexnet export alexnet-owt-7be5be79.pth --model alexnet_owt --format torchscript   # legacy"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a checkpoint, run folder, .safetensors, or a .pth state_dict (with --model)")
    p.add_argument("--format", required=True, choices=tuple(FORMATS),
                   help="onnx; pt2 (torch.export.save, load with torch.export.load); torchscript "
                   "(legacy: torch.jit, kept while torch ships it; prefer pt2); or safetensors")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default: beside the checkpoint, e.g. runs/RUN/best.onnx)")
    p.add_argument("--model", default=None, metavar="NAME", help="the model a bare .pth/.safetensors state_dict is for")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from alexnet.inference.export import export

    result = export(args.checkpoint, args.format, args.out, model=args.model, force=args.force)
    if args.json:
        print(json.dumps(result))
        return 0
    check = result["check"]
    c, h, w = result["input_size"]
    print(printable(f"wrote {result['path']} ({result['format']}, {result['model_name']}, "
                    f"{len(result['classes'])} classes)"))
    if result["input_norm"] == "mean_image" and result["format"] != "safetensors":
        units = "raw 0-255 pixels of the centre patch (the file subtracts the training set's mean image itself)"
    elif result["input_norm"] == "mean_image":
        units = "raw 0-255 pixels minus the training mean image (stored in the file as _alexnet_input.mean_image)"
    else:
        # 4 significant digits are at most 5e-5 off, 1/80 of a 0-255 grey level; --json prints them whole
        mean, std = (", ".join(f"{v:.4g}" for v in result[key]) for key in ("mean", "std"))
        units = f"normalised with mean ({mean}) and std ({std})"
    print(f"  input: float32 N,{c},{h},{w}, {units}; output: logits N,{len(result['classes'])}")
    if check.get("checker") is None:
        print(f"  not checked: {check['note']}")
    elif "inputs" in check:
        print(f"  checked with {check['checker']} on random inputs {check['inputs']}: largest absolute difference "
              f"from PyTorch {check['max_abs_diff']:.2e} (tolerance {check['tolerance']:g})")
    else:
        print(f"  checked by {check['checker']}: {check['tensors']} tensors equal")
    return 0
