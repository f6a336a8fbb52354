"""Try a net in a web page: alexnet demo (--checkpoint RUN | --model M --weights W) [--host H] [--port P]

A Gradio page (alexnet/demo/app.py): upload a photo, or pick one of --examples; it shows the top-5 as
bars, Grad-CAM and occlusion maps, all softmax outputs, conv1's filters and a layer's feature maps.
--checkpoint and --weights may be given several times: the page offers every net in a picker.
Needs Gradio: pip install -e '.[demo]'. Serves on 127.0.0.1 (this machine only) unless --host says
otherwise, until Ctrl-C.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alexnet.cli.common import number
from alexnet.errors import UsageError, printable

EPILOG = """examples:
  alexnet demo --checkpoint runs/RUN --examples photos/
  alexnet demo --checkpoint runs/RUN_A --checkpoint runs/RUN_B --port 7861
  alexnet demo --model alexnet_owt --weights imagenet1k --examples ../shared/datasets/imagenet-sample/n02099601
  alexnet demo --model alexnet2012 --weights bvlc_alexnet.caffemodel --host 0.0.0.0   (reachable from the network)"""

MAX_EXAMPLES = 48  # photos listed under the upload box at most
INSTALL = "alexnet demo needs Gradio, which is an extra: pip install -e '.[demo]' (or pip install 'gradio>=5')"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the nets (one or more)")
    g.add_argument("--checkpoint", action="append", default=[], metavar="CKPT_OR_RUN_DIR",
                   help="a checkpoint (.pt) or a run folder; give it again to offer several")
    g.add_argument("--model", metavar="NAME", help="a model name (alexnet models), used with --weights")
    g.add_argument("--weights", action="append", default=[], metavar="W",
                   help="weights of --model: 'imagenet1k' or a file (.pth, our checkpoint, .safetensors, "
                        ".caffemodel); give it again to offer several")
    p.add_argument("--examples", metavar="DIR", default=None,
                   help=f"a folder of photos shown as clickable examples (the first {MAX_EXAMPLES}, sorted)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=number(int, 1, 65535), default=7860, metavar="P", help="the port (default 7860)")


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401  (the extra; imported here so its absence is one line)
    except ImportError:
        raise UsageError(INSTALL) from None
    nets = _nets(args)
    examples = _examples(args.examples)
    from alexnet.demo.app import build, serve

    page = build(nets, examples)
    print(printable(f"serving {len(nets)} net{'s' * (len(nets) > 1)} ({', '.join(n.label for n in nets)}) at "
                    f"http://{args.host}:{args.port} (Ctrl-C stops)"), flush=True)
    try:
        serve(page, args.host, args.port)
    except OSError as e:  # the port is taken, or the address is not this machine's
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0


def _nets(args: argparse.Namespace) -> list[Any]:
    """Every net the options name, loaded (and so checked) before the server starts."""
    from alexnet.demo.panels import load_net
    from alexnet.inference.weights import select_model

    if args.weights and args.model is None:
        raise UsageError("--weights needs --model NAME (which net the weights are for)")
    if args.model is not None and not args.weights:
        raise UsageError("--model needs --weights (a pretrained set such as imagenet1k, or a file)")
    if not args.checkpoint and not args.weights:
        raise UsageError("say which net to show: --checkpoint CKPT_OR_RUN_DIR, or --model NAME --weights W")
    nets = [load_net(select_model(c, None, None)) for c in args.checkpoint]
    nets += [load_net(select_model(None, args.model, w)) for w in args.weights]
    seen: dict[str, int] = {}
    for net in nets:  # the picker tells them apart by label
        seen[net.label] = seen.get(net.label, 0) + 1
        if seen[net.label] > 1:
            net.label = f"{net.label} #{seen[net.label]}"
    return nets


def _examples(folder: str | None) -> list[str]:
    if folder is None:
        return []
    from alexnet.data.folder import list_images

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UsageError(f"--examples {folder}: not a folder")
    found = list_images(path)
    if not found:
        raise UsageError(f"--examples {folder}: the folder holds no images")
    return [str(f) for f in found[:MAX_EXAMPLES]]
