"""alexnet viz explain IMAGE (--checkpoint RUN | --model M --weights W) --method gradcam|occlusion|saliency

The photo with an attribution map over it, for the top-1 class or --class K, titled with the class,
its probability and what the map shows (alexnet.inference.explain computes it, by captum).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alexnet.errors import UsageError

METHODS = ("gradcam", "occlusion", "saliency")


def add_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("image", metavar="IMAGE", help="an image file")
    q.add_argument("--method", default="gradcam", choices=METHODS,
                   help="gradcam: a conv layer's maps weighted by the class's gradient (default); occlusion: "
                        "how much a grey square lowers the class's probability; saliency: the input gradient")
    q.add_argument("--layer", default=None, metavar="NAME",
                   help="gradcam's layer: conv1..conv5 (default the last), convK.tower1 / convK.tower2 for one "
                        "of alexnet2012's two towers, or another layer of net.features by name or index")
    q.add_argument("--class", dest="target", default=None, metavar="K",
                   help="the class to explain, by index or name (default: the net's top-1)")


def run(args: argparse.Namespace) -> Path:
    from alexnet.cli.viz import device, net_checkpoint, one_image, who
    from alexnet.inference.explain import METHODS as WHAT
    from alexnet.inference.explain import explanation
    from alexnet.viz.explain import plot_explanation

    if args.layer is not None and args.method != "gradcam":
        raise UsageError(f"--layer chooses gradcam's layer; {args.method} explains the input pixels")
    ckpt = net_checkpoint(args)
    e = explanation(one_image(args.image), ckpt, method=args.method, layer=args.layer, target=args.target,
                    device=device(args))
    title = args.title or f"{who(ckpt)} on {Path(args.image).name}: {e.caption}"
    return plot_explanation(e.view, e.heat, args.out, title=title, what=WHAT[args.method])
