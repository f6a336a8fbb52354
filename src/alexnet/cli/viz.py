"""Pictures of a net and its training: alexnet viz VERB ... --out FILE.png

filters      the first conv layer's kernels (the paper's Figure 3), or any conv layer's
features     the activation maps of one layer for one image
predictions  a grid of images with predicted (and true) classes, or the paper's Figure 4 left
heatmap      all softmax outputs of one image as a grid, top classes labelled
neighbors    the paper's Figure 4 right: training images nearest in fc7 feature space
curves       loss, top-1 and learning rate per epoch of one or several runs
augment      one image and its random training views (crop, flip, PCA lighting)
confusion    a labelled confusion matrix
explain      where in the photo the net looked: Grad-CAM, occlusion or saliency (cli/viz_explain.py)

Each verb selects its net as predict does (--checkpoint CKPT_OR_RUN_DIR, or --model NAME
--weights W); filters, features and augment also take --model alone: a freshly initialised net.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alexnet.cli.common import DEVICES, add_model_arguments, number
from alexnet.errors import UsageError, printable
from alexnet.limits import MAX_BATCH_SIZE

EPILOG = """examples:
  alexnet viz filters --checkpoint runs/RUN --out filters.png
  alexnet viz filters --before-after runs/RUN --out before-after.png
  alexnet viz features cat.jpg --model alexnet_owt --weights imagenet1k --layer 1 --out maps.png
  alexnet viz predictions photos/ --checkpoint runs/RUN --style top5 --out top5.png
  alexnet viz heatmap cat.jpg --model alexnet_owt --weights imagenet1k --out heatmap.png
  alexnet viz neighbors --checkpoint runs/RUN --queries 5 --out neighbors.png
  alexnet viz curves runs/RUN_A runs/RUN_B --out curves.png
  alexnet viz augment cat.jpg --model alexnet2012 --out augment.png
  alexnet viz confusion --checkpoint runs/RUN --out confusion.png
  alexnet viz explain cat.jpg --checkpoint runs/RUN --method gradcam --layer conv5 --out gradcam.png
(alexnet viz VERB --help for each verb's options)"""

VIZ_VERBS = {
    "filters": "the first (or any) conv layer's kernels as a grid: the paper's Figure 3",
    "features": "the activation maps of a layer for one image",
    "predictions": "images with their predicted classes (grid), or with top-5 bars (Figure 4 left)",
    "heatmap": "all softmax outputs of one image as a grid, top classes labelled",
    "neighbors": "training images nearest in fc7 feature space (Figure 4 right)",
    "curves": "loss, top-1 and learning rate per epoch of one or several run folders",
    "augment": "one image and its random training views (crop, flip, PCA lighting)",
    "confusion": "a labelled confusion matrix of a split",
    "explain": "where in the photo the net looked: a Grad-CAM, occlusion or saliency map over it",
}
OWN_MODULE = {"explain"}  # verbs whose code is alexnet.cli.viz_VERB (add_arguments, run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from alexnet.cli import Parser

    sub = p.add_subparsers(dest="viz_verb", metavar="VERB", parser_class=Parser)
    for verb, help_text in VIZ_VERBS.items():
        q = sub.add_parser(verb, help=help_text, description=help_text)
        _verb(verb, "args")(q)
        if verb != "curves":
            add_model_arguments(q)
            q.add_argument("--device", default="auto", choices=DEVICES)
        q.add_argument("--out", default=f"{verb}.png", metavar="FILE.png",
                       help=f"the picture to write (default {verb}.png)")
        q.add_argument("--force", action="store_true", help="replace --out if it exists")
        q.add_argument("--title", default="", help="a title in place of the default one")


def run(args: argparse.Namespace) -> int:
    if args.viz_verb is None:
        raise UsageError("say which picture: " + ", ".join(VIZ_VERBS) + " (alexnet viz --help)")
    from alexnet.atomic import check_output

    check_output(args.out, force=args.force, inputs=_inputs(args))  # before any work
    path = _verb(args.viz_verb, "run")(args)
    print(printable(f"wrote {path}"))
    return 0


def _verb(verb: str, part: str) -> Any:
    """The function that adds a verb's options ("args") or runs it ("run")."""
    if verb in OWN_MODULE:
        from importlib import import_module

        return getattr(import_module(f"alexnet.cli.viz_{verb}"), {"args": "add_arguments", "run": "run"}[part])
    return globals()[f"_{part}_{verb}"]


NET_ARGUMENTS = ("checkpoint", "weights", "before_after", "runs")  # read as checkpoints, not walked
DATA_ARGUMENTS = ("image", "inputs", "data")  # images and data folders, read whole


def _inputs(args: argparse.Namespace) -> list[str]:
    """Every file the command may read, as named by its arguments; without --data, the data the
    net was trained on (confusion and neighbors read it)."""
    from alexnet.cli.common import files_read

    def values(keys: tuple[str, ...]) -> list[Any]:
        given = [getattr(args, key) for key in keys if hasattr(args, key)]
        return [v for value in given for v in (value if isinstance(value, list) else [value])]

    data = values(DATA_ARGUMENTS)
    if hasattr(args, "data") and not args.data and getattr(args, "checkpoint", None):
        from alexnet.engine.checkpoint import load_checkpoint

        data.append(load_checkpoint(args.checkpoint).get("data"))
    return files_read(data, nets=values(NET_ARGUMENTS))


# ---- the net, the images ---------------------------------------------------------------------

def net_checkpoint(args: argparse.Namespace, *, untrained_ok: bool = False) -> dict[str, Any]:
    """The checkpoint dict the options name; with untrained_ok, --model alone builds a fresh net."""
    from alexnet.cli.common import model_from_args

    if untrained_ok and args.model is not None and args.weights is None and args.checkpoint is None:
        import torch

        from alexnet.inference.weights import describe_model
        from alexnet.models import build_model

        torch.manual_seed(0)
        return describe_model(build_model(args.model), source=f"{args.model} (untrained, seed 0)")
    return model_from_args(args)


def device(args: argparse.Namespace) -> Any:
    from alexnet.engine.fast import resolve_device

    return resolve_device(args.device)


def image_files(inputs: list[str]) -> list[str]:
    from alexnet.inference.predict import expand_inputs

    files = []
    for item in expand_inputs(inputs):
        if not isinstance(item, (str, Path)):
            raise UsageError(f"{item.path}: {item.reason}")
        if not Path(item).exists():
            raise UsageError(f"no such file: {item}")
        files.append(str(item))
    return files


def _title(args: argparse.Namespace, default: str) -> str:
    return args.title or default


def one_image(path: str) -> str:
    """The IMAGE argument of the verbs that draw one photo: a file (a folder is refused, not read
    for its first image, which a title naming the folder would then hide)."""
    if Path(path).is_dir():
        raise UsageError(f"{path} is a folder: give one image file (viz predictions takes folders)")
    return image_files([path])[0]


def who(ckpt: dict[str, Any]) -> str:
    """"alexnet_mini (RUN_NAME)" for a run's checkpoint, else where the weights came from."""
    from alexnet.inference.inspect import net_label

    return net_label(ckpt)


# ---- filters ---------------------------------------------------------------------------------

def _args_filters(q: argparse.ArgumentParser) -> None:
    q.add_argument("--layer", type=number(int, 0), default=0, metavar="I",
                   help="which conv layer, 0 = the first (default 0)")
    q.add_argument("--mode", default="auto", choices=("auto", "rgb", "sum", "channels"),
                   help="rgb: 3-channel kernels as colour; sum: summed over input channels; channels: every slice")
    q.add_argument("--before-after", metavar="RUN_DIR", default=None,
                   help="a run folder: its initial and trained first-layer kernels, their difference (amplified) "
                        "and how far training moved them, ||W - W0|| / ||W0||")


def _run_filters(args: argparse.Namespace) -> Path:
    from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from alexnet.inference.inspect import conv_weights, towers_of
    from alexnet.viz.filters import plot_filters

    before = None
    if args.before_after:
        ckpt = load_checkpoint(args.before_after)
        before = ckpt.get("init_filters")
        if before is None:
            raise UsageError(
                f"{ckpt['path']} keeps no initial kernels (it was trained by an older alexnet); train again to compare"
            )
        if args.layer != 0:
            raise UsageError(
                "--before-after shows the first conv layer only: a run folder keeps the initial kernels of that layer"
            )
    else:
        ckpt = net_checkpoint(args, untrained_ok=True)
    convs = conv_weights(model_from_checkpoint(ckpt))
    if not 0 <= args.layer < len(convs):
        raise UsageError(f"--layer {args.layer}: {ckpt['model_name']} has conv layers 0..{len(convs) - 1}")
    name, weight = convs[args.layer]
    k, c, h, w = weight.shape
    title = _title(args, f"{who(ckpt)}: {name}, {k} kernels of {h}x{w}x{c}")
    return plot_filters(weight, args.out, title=title, mode=args.mode, towers=towers_of(ckpt, k), before=before)


# ---- features --------------------------------------------------------------------------------

def _args_features(q: argparse.ArgumentParser) -> None:
    q.add_argument("image", metavar="IMAGE", help="an image file")
    q.add_argument("--layer", default=None, metavar="NAME_OR_INDEX",
                   help="a layer of net.features by name (relu1, pool2, ...) or index "
                        "(default: the first activation)")
    q.add_argument("--max-maps", type=number(int, 1), default=64, metavar="N",
                   help="maps shown at most, the most active first (default 64)")


def _run_features(args: argparse.Namespace) -> Path:
    from alexnet.inference.inspect import feature_maps, net_view
    from alexnet.viz.features import plot_features

    ckpt = net_checkpoint(args, untrained_ok=True)
    image = one_image(args.image)
    name, maps = feature_maps(ckpt, image, args.layer, device(args))  # C,h,w
    title = _title(args, f"{who(ckpt)}: {name} on {Path(args.image).name}")
    return plot_features(net_view(ckpt, image), maps, args.out, title=title, max_maps=args.max_maps, layer=name)


# ---- predictions -----------------------------------------------------------------------------

def _args_predictions(q: argparse.ArgumentParser) -> None:
    q.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files or folders (a folder named after a class gives the true label)")
    q.add_argument("--style", default="grid", choices=("grid", "top5"),
                   help="grid: the notebooks'; top5: the paper's Figure 4 left")
    q.add_argument("--count", type=number(int, 1), default=16, metavar="N",
                   help="images shown at most (default 16; 8 for top5)")
    q.add_argument("--tta", default="center", choices=("center", "flip", "tencrop"))


def true_label(path: str, classes: list[str]) -> str | None:
    """The class a file's folder names: a class name, or an ImageNet wnid for 1000-class nets."""
    folder = Path(path).parent.name
    if folder in classes:
        return folder
    if len(classes) == 1000:
        from alexnet.data.imagenet import imagenet_classes

        wnids = imagenet_classes()[0]
        if folder in wnids:
            return classes[wnids.index(folder)]
    return None


def _run_predictions(args: argparse.Namespace) -> Path:
    from alexnet.inference.inspect import net_view
    from alexnet.inference.predict import predict
    from alexnet.viz.predictions import file_labels, plot_prediction_grid, plot_top5

    ckpt = net_checkpoint(args)
    count = min(args.count, 8) if args.style == "top5" else args.count
    files = _evenly(image_files(args.inputs), count)
    results = predict(files, ckpt, topk=5, tta=args.tta, device=device(args))
    ok = [(f, r) for f, r in zip(files, results) if "topk" in r]
    if not ok:
        raise UsageError("none of the inputs could be read")
    files, _ = zip(*ok)
    views = [net_view(ckpt, f) for f in files]  # uint8 C,S,S centre views
    truth = [true_label(f, list(ckpt["classes"])) for f in files]
    truth_or_none = truth if any(t is not None for t in truth) else None
    topks = [r["topk"] for _, r in ok]
    names = file_labels(files)
    if args.style == "top5":
        return plot_top5(views, topks, args.out, title=_title(args, f"{who(ckpt)}: top-5 predictions"),
                         true=truth_or_none, names=names)
    return plot_prediction_grid(views, topks, args.out, title=_title(args, f"{who(ckpt)}"), true=truth_or_none,
                                names=names)


def _evenly(files: list[str], count: int) -> list[str]:
    """`count` files spread over the sorted list, so a folder of class folders shows many classes."""
    if len(files) <= count:
        return files
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


# ---- heatmap ---------------------------------------------------------------------------------

def _args_heatmap(q: argparse.ArgumentParser) -> None:
    q.add_argument("image", metavar="IMAGE", help="an image file")
    q.add_argument("--top", type=number(int, 1), default=5, metavar="K", help="classes labelled (default 5)")


def _run_heatmap(args: argparse.Namespace) -> Path:
    from alexnet.inference.inspect import net_view, probabilities
    from alexnet.viz.heatmap import plot_heatmap

    ckpt = net_checkpoint(args)
    view = net_view(ckpt, one_image(args.image))  # uint8 C,S,S
    probs = probabilities(ckpt, view, device(args))  # K
    title = _title(args, f"{who(ckpt)}: all {probs.numel()} softmax outputs for {Path(args.image).name}")
    return plot_heatmap(probs, list(ckpt["classes"]), args.out, title=title, top=args.top, image=view)


# ---- neighbors -------------------------------------------------------------------------------

def _args_neighbors(q: argparse.ArgumentParser) -> None:
    q.add_argument("inputs", nargs="*", metavar="QUERY",
                   help="query image files or folders (default: --queries images of the val split)")
    q.add_argument("--data", default=None, metavar="SPEC",
                   help="the data whose training images are searched (default: the net's)")
    # the picture is a grid of queries x (k + 1) tiles: 50 x 51 is about 5,000 pixels a side; the
    # bank's fc7 features take 16 KB an image (100,000: 1.6 GB)
    q.add_argument("--queries", type=number(int, 1, 50), default=5, metavar="Q",
                   help="held-out images used as queries when no QUERY is given (default 5, at most 50)")
    q.add_argument("-k", type=number(int, 1, 50), default=6, metavar="K",
                   help="neighbours per query (default 6, as in the paper; at most 50)")
    q.add_argument("--bank-size", type=number(int, 1, 100_000), default=2000, metavar="N",
                   help="training images searched at most (default 2000, at most 100,000)")


def _run_neighbors(args: argparse.Namespace) -> Path:
    import torch

    from alexnet.data import open_dataset
    from alexnet.data.loader import make_loader
    from alexnet.data.transforms import eval_prepare, five_crops
    from alexnet.engine.checkpoint import model_from_checkpoint
    from alexnet.inference.inspect import net_inputs, net_view
    from alexnet.viz.neighbors import nearest, plot_neighbors

    ckpt = net_checkpoint(args)
    spec = args.data or ckpt.get("data")
    if not spec:
        raise UsageError("these weights do not say what data they were trained on: give --data SPEC")
    dev = device(args)
    net = model_from_checkpoint(ckpt).to(dev).eval()
    config = ckpt.get("config") or {}
    source = open_dataset(spec, seed=int(config.get("seed", 0)), val_fraction=float(config.get("val_fraction", 0.1)))
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    prepare = eval_prepare(ckpt["augment"], size=size, channels=channels)
    classes = list(source.classes)

    def embed(split: Any, limit: int) -> tuple[list[Any], list[str], Any]:
        """fc7 features (N,D), the uint8 views and the labels of the first `limit` readable images."""
        views, labels, feats = [], [], []
        indices = torch.linspace(0, len(split) - 1, min(limit, len(split))).round().long().unique().tolist()
        subset = torch.utils.data.Subset(split, indices)
        for batch in make_loader(subset, prepare, batch_size=100, shuffle=False, workers=0):
            crops = five_crops(batch.images, size)[4]  # uint8 N,C,S,S
            with torch.no_grad():
                feats.append(net.forward_features(net_inputs(ckpt, list(crops), dev)).float().cpu())
            views += list(crops)
            labels += [classes[int(y)] for y in batch.labels]
        if not views:
            raise UsageError(f"{spec}: no readable images to search")
        return views, labels, torch.cat(feats)

    bank_views, bank_labels, bank = embed(source.split("train"), args.bank_size)
    if args.inputs:
        files = image_files(args.inputs)
        query_views = [net_view(ckpt, f) for f in files]
        query_labels = [true_label(f, list(ckpt["classes"])) or Path(f).name for f in files]
        with torch.no_grad():
            queries = net.forward_features(net_inputs(ckpt, query_views, dev)).float().cpu()
    else:
        held_out = source.split("val") if len(source.split("val")) else source.split("test")
        query_views, query_labels, queries = embed(held_out, args.queries)
    idx, dist = nearest(queries, bank, k=args.k)
    neighbor_views = [[bank_views[j] for j in row] for row in idx.tolist()]
    neighbor_labels = [[bank_labels[j] for j in row] for row in idx.tolist()]
    title = _title(args, f"{who(ckpt)}: nearest training images in fc7 space (of {len(bank_views)} from {spec})")
    return plot_neighbors(query_views, neighbor_views, args.out, title=title, query_labels=query_labels,
                          neighbor_labels=neighbor_labels, distances=dist)


# ---- curves ----------------------------------------------------------------------------------

def _args_curves(q: argparse.ArgumentParser) -> None:
    q.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (their metrics.jsonl)")


def _run_curves(args: argparse.Namespace) -> Path:
    from alexnet.engine.run_folder import read_metrics
    from alexnet.viz.curves import plot_curves

    runs = []
    for run in args.runs:
        if not (Path(run) / "metrics.jsonl").is_file():
            raise UsageError(f"{run} is not a run folder (no metrics.jsonl)")
        runs.append((Path(run).name, read_metrics(Path(run))))
    return plot_curves(runs, args.out, title=_title(args, "training curves"))


# ---- augment ---------------------------------------------------------------------------------

def _args_augment(q: argparse.ArgumentParser) -> None:
    q.add_argument("image", metavar="IMAGE", help="an image file")
    q.add_argument("-n", type=number(int, 1), default=8, metavar="N", help="augmented views (default 8)")
    q.add_argument("--preset", default=None, choices=("paper", "small", "none"),
                   help="augmentation (default: the net's)")
    q.add_argument("--lighting", type=number(float, 0), default=0.1, metavar="STD",
                   help="PCA lighting alpha std, section 4.1 (default 0.1)")
    q.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0, help="seed of the random views (default 0)")


def _run_augment(args: argparse.Namespace) -> Path:
    from alexnet.data.images import BadImage, load_image
    from alexnet.data.transforms import Prepare, TrainAugment, prep_pca, prep_stats
    from alexnet.viz.augment import augment_examples, plot_augmentations

    ckpt = net_checkpoint(args, untrained_ok=True)
    preset = args.preset or ckpt["augment"]
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    image = load_image(one_image(args.image))
    if isinstance(image, BadImage):
        raise UsageError(f"cannot read {args.image}: {image.reason}")
    prepared = Prepare(preset, size, channels)(image)  # uint8 C,R,R
    # the run's own shift, or the preset's default
    translate = ckpt.get("translate") if preset == ckpt["augment"] else None
    augment = TrainAugment(preset, size=size, channels=channels, lighting=args.lighting, pca=prep_pca(ckpt),
                           translate=translate, **prep_stats(ckpt))
    examples = augment_examples(prepared, augment, args.n, ckpt["mean"], ckpt["std"], seed=args.seed)
    what = {"paper": f"random {size}x{size} crop + horizontal flip + PCA lighting (alpha std {args.lighting:g})",
            "small": f"reflect-pad {augment.pad} + random {size}x{size} crop + horizontal flip",
            "none": "no augmentation"}[preset]
    title = _title(args, f"training augmentation '{preset}' ({ckpt['model_name']})")
    return plot_augmentations(prepared, examples, args.out, title=title, caption=what)


# ---- confusion -------------------------------------------------------------------------------

def _args_confusion(q: argparse.ArgumentParser) -> None:
    q.add_argument("--data", default=None, metavar="SPEC", help="dataset spec (default: the net's)")
    q.add_argument("--split", default="val", choices=("val", "test"))
    q.add_argument("--tta", default="center", choices=("center", "flip", "tencrop"))
    q.add_argument("--batch-size", type=number(int, 1, MAX_BATCH_SIZE), default=100, metavar="N")


def _run_confusion(args: argparse.Namespace) -> Path:
    from alexnet.engine.evaluate import evaluate_checkpoint
    from alexnet.viz.confusion import plot_confusion

    ckpt = net_checkpoint(args)
    result = evaluate_checkpoint(ckpt, data=args.data, split=args.split, tta=args.tta, batch_size=args.batch_size,
                                 device=device(args))
    title = _title(args, f"{ckpt['model_name']} on {result['data']} ({args.split}, {args.tta}): "
                         f"top-1 {result['top1']:.2%}")
    return plot_confusion(result["confusion"].numpy(), result["classes"], Path(args.out), title=title)
