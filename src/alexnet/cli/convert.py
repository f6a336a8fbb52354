"""Caffe's bvlc_alexnet as a shareable model: alexnet convert FILE.caffemodel [--mean FILE.binaryproto] --to-folder DIR.

Reads the .caffemodel as alexnet2012 (Caffe's towers, LRN and inputs: alexnet.inference.caffe) and
writes the Hub's layout into DIR: model.safetensors, config.json and a model card (README.md) that
names the source, its license and how inputs are prepared. DIR then loads as `--weights DIR`, and
`alexnet push DIR ORG/NAME` uploads it. `--weights FILE.caffemodel` keeps working without this.
"""

from __future__ import annotations

import argparse
import json

from alexnet.errors import printable

EPILOG = """examples:
  alexnet convert bvlc_alexnet.caffemodel --to-folder bvlc_alexnet
  alexnet convert bvlc_alexnet.caffemodel --mean imagenet_mean.binaryproto --to-folder bvlc_alexnet \\
      --repo my-org/bvlc_alexnet
  alexnet predict photo.jpg --weights bvlc_alexnet"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("caffemodel", metavar="FILE.caffemodel", help="BVLC's bvlc_alexnet.caffemodel (V1 or V2 layers)")
    p.add_argument("--mean", default=None, metavar="FILE.binaryproto",
                   help="the training set's mean image (default: imagenet_mean.binaryproto beside the model if "
                        "there is one, else Caffe's per-channel ImageNet mean)")
    p.add_argument("--to-folder", required=True, metavar="DIR", help="the folder to write (new, or empty)")
    p.add_argument("--repo", default=None, metavar="ORG/NAME", help="the Hub repo the card names, if you will push it")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alexnet.cli.push import check_new_folder, new_folder
    from alexnet.inference.caffe import BVLC_SHA1, mean_file_beside
    from alexnet.inference.card import caffe_card
    from alexnet.inference.hub import check_repo_id
    from alexnet.inference.weights import caffe_checkpoint, save_hub_folder

    if args.repo is not None:
        check_repo_id(args.repo)
    check_new_folder(args.to_folder)  # before reading 240 MB
    source = Path(args.caffemodel)
    mean = Path(args.mean) if args.mean is not None else mean_file_beside(source)
    ckpt = caffe_checkpoint(source, mean)
    with new_folder(args.to_folder) as folder:
        save_hub_folder(ckpt, folder)
        card = caffe_card(ckpt, source.name, bvlc=_sha1(source) == BVLC_SHA1, repo=args.repo,
                          folder=str(args.to_folder))
        (folder / "README.md").write_text(card)
    norm = "its mean image" if ckpt.get("input_norm") == "mean_image" else "Caffe's per-channel ImageNet mean"
    if args.json:
        print(json.dumps({"path": str(args.to_folder), "model_name": ckpt["model_name"], "mean": str(mean or ""),
                          "input_norm": ckpt.get("input_norm")}))
        return 0
    print(printable(f"wrote {args.to_folder}: alexnet2012 from {source} (inputs minus {norm}): "
                    "model.safetensors, config.json, README.md"))
    print(printable(f"load it with: alexnet predict IMAGE --weights {args.to_folder}"))
    return 0


def _sha1(path) -> str:
    """The file's sha1, as BVLC's model zoo names its files (read in 16 MiB pieces)."""
    import hashlib

    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()
