"""Try a net in a web page: alexnet demo (--checkpoint RUN | --model M --weights W) [--host H] [--port P]

A Gradio page (alexnet/demo/app.py): upload a photo, or pick one of --examples; it shows the top-5 as
bars, Grad-CAM and occlusion maps, all softmax outputs, conv1's filters and a layer's feature maps.
--checkpoint and --weights may be given several times: the page offers every net in a picker.
Needs Gradio: pip install -e '.[demo]'. Serves on 127.0.0.1 (this machine only) unless --host says
otherwise, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import warnings
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
    _check_address(args.host, args.port)
    nets = _nets(args)
    examples = _examples(args.examples)
    from alexnet.demo.app import build, serve

    page = build(nets, examples)
    _check_address(args.host, args.port)  # still free after the nets loaded
    print(printable(f"serving {len(nets)} net{'s' * (len(nets) > 1)} ({', '.join(n.label for n in nets)}) at "
                    f"http://{args.host}:{args.port} (Ctrl-C stops)"), flush=True)
    serve(page, args.host, args.port)
    return 0


def _check_address(host: str, port: int) -> None:
    """Bind host:port once, so a busy port, an unknown name or another machine's address is one
    line before Gradio starts (whose own messages name its internals, and which takes IPv4
    addresses and host names only)."""
    import errno
    import socket

    if not host.strip() or ":" in host or "/" in host:
        raise UsageError(f"--host {host!r}: give an IPv4 address or a host name of this machine, "
                         "such as 127.0.0.1, 0.0.0.0 or localhost")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            s.bind((host, port))
    except socket.gaierror:
        raise UsageError(f"--host {host}: no such host") from None
    except OSError as e:
        why = {errno.EADDRINUSE: "the port is in use (give another with --port)",
               errno.EADDRNOTAVAIL: "that address is not one of this machine's",
               errno.EACCES: "permission denied (ports under 1024 need root)"}.get(e.errno, e.strerror or str(e))
        raise UsageError(f"cannot serve on {host}:{port}: {why}") from None


def _nets(args: argparse.Namespace) -> list[Any]:
    """Every net the options name, loaded (and so checked) before the server starts."""
    from alexnet.demo.panels import load_net
    from alexnet.inference.weights import select_model

    if args.model is not None and not args.weights:
        raise UsageError("--model needs --weights (a pretrained set such as imagenet1k, or a file)")
    if not args.checkpoint and not args.weights:
        raise UsageError("say which net to show: --checkpoint CKPT_OR_RUN_DIR, or --model NAME --weights W")
    nets = [load_net(select_model(c, None, None)) for c in args.checkpoint]
    nets += [load_net(select_model(None, args.model, w)) for w in args.weights]
    labels = [n.label for n in nets]
    for net in nets:  # the picker tells them apart by label: where two share one, by the file's path
        if labels.count(net.label) > 1:
            net.label = f"{net.ckpt['model_name']} ({net.ckpt['path']})"
    taken: set[str] = set()
    for net in nets:  # the same file given twice
        label, n = net.label, 1
        while net.label in taken:
            n += 1
            net.label = f"{label} #{n}"
        taken.add(net.label)
    return nets


def _examples(folder: str | None) -> list[str]:
    if folder is None:
        return []
    from alexnet.data.folder import list_images
    from alexnet.data.images import BadImage, load_image

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UsageError(f"--examples {folder}: not a folder")
    found = list_images(path)
    if not found:
        raise UsageError(f"--examples {folder}: the folder holds no images")
    readable, skipped = [], []
    for f in found:  # Gradio reads each example whole: a pipe or a device would hang it
        if len(readable) == MAX_EXAMPLES:
            break
        image = load_image(f)
        if isinstance(image, BadImage):
            skipped.append(image)
        else:
            readable.append(str(f))
    if not readable:
        raise UsageError(f"--examples {folder}: none of its files is a readable image "
                         f"({skipped[0].path}: {skipped[0].reason})")
    if skipped:
        some = f"{len(skipped)} files that are not readable images" if len(skipped) > 1 else \
            "1 file that is not a readable image"
        warnings.warn(f"--examples: skipped {some} (first: {skipped[0].path}: {skipped[0].reason})", stacklevel=1)
    return readable
