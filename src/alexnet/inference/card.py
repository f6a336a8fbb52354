"""Model cards: the README.md a Hub repo shows, generated from a run's checkpoint.

The header is the Hub's YAML metadata (huggingface_hub's ModelCard and its model-index format for
results, as in huggingface/huggingface_hub, src/huggingface_hub/repocard_data.py: license,
library_name, tags, datasets, metrics, model-index). The body says what a user needs to trust and
use the weights: the model, the data and how inputs are prepared, the validation figures with the
view that gave them, the training curves, the recipe (the resolved config), the command that
reproduces it and how to load the weights. Every figure comes from the checkpoint itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alexnet.config import VIEW_NAMES
from alexnet.errors import printable

# the Hub's dataset ids of the data sets this package reads by name
HUB_DATASETS = {
    "cifar10": "uoft-cs/cifar10",
    "imagenet": "ILSVRC/imagenet-1k",
    "mnist": "ylecun/mnist",
    "fashion-mnist": "zalando-datasets/fashion_mnist",
}
TRAINING_FILE = "training.yaml"  # the run's resolved config, beside the card
CURVES_FILE = "curves.png"


def recipe(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config as the card publishes it: no run folder, no resume, and local paths
    (the data's folder, the weights a fine-tune started from) reduced to their last names."""
    out = {k: v for k, v in config.items() if k not in ("out", "resume")}
    for key in ("data", "init_from"):
        if isinstance(out.get(key), str):
            out[key] = public(out[key])
    return out


def public(spec: str) -> str:
    """A data spec or weights reference without its local folders: `folder:/home/me/photos` ->
    `folder:photos`, `/home/me/runs/a/best.pt` -> `a/best.pt`; Hub ids and names stay as they are."""
    if spec.startswith("hf-hub:") or "/" not in spec:
        return spec
    kind, colon, rest = spec.partition(":") if ":" in spec.split("/")[0] else ("", "", spec)
    path, comma, options = rest.partition(",")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts and parts[-1] in ("best.pt", "last.pt") else Path(path).name or path
    return f"{kind}{colon}{short}{comma}{options}"


def run_card(ckpt: dict[str, Any], repo: str, *, license: str = "mit", curves: bool = False) -> str:
    """The card of a checkpoint from `alexnet train` (or any checkpoint dict) pushed as `repo`."""
    data = public(str(ckpt.get("data") or "unknown data"))
    metrics = ckpt.get("metrics") or {}
    keys = ("val_top1", "val_top5") if len(ckpt["classes"]) > 5 else ("val_top1",)  # top-5 of <= 5 classes is 100%
    figures = {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}
    dataset = HUB_DATASETS.get(data.split(":")[0].replace("_", "-").replace("fashionmnist", "fashion-mnist"))
    header = _header(ckpt, repo, license=license, dataset=dataset, data_name=data, figures=figures)
    start = ckpt.get("init_from")
    lines = [
        f"# {repo}", "",
        f"`{ckpt['model_name']}` trained with the `alexnet` package on `{data}`"
        + (f", fine-tuned from `{public(str(start['source']))}`" if isinstance(start, dict) and "source" in start
           else "") + ".",
        "", *_model_lines(ckpt), "", "## Results", "",
    ]
    if figures:
        view = VIEW_NAMES["center"]  # training scores each epoch's validation on the centre view
        lines += [
            f"On the run's held-out split after epoch {metrics.get('epoch', '?')}, {view}. That split also chose "
            "this checkpoint (the best top-1 of the run); where the data has no validation split of its own and "
            "none was held out (CIFAR-10, MNIST, shapes with `holdout: 0`), it is the data's test split.", "",
            "| " + " | ".join(k[4:].replace("top", "top-") for k in figures) + " |", "|---" * len(figures) + "|",
            "| " + " | ".join(f"{100 * v:.2f}%" for v in figures.values()) + " |",
        ]
    else:
        lines.append("This checkpoint records no validation figures.")
    if curves:
        lines += ["", "## Training curves", "", f"![loss, top-1 and learning rate per epoch]({CURVES_FILE})"]
    config = ckpt.get("config")
    if isinstance(config, dict):
        text = yaml.safe_dump(recipe(config), sort_keys=False)
        lines += [
            "", "## Recipe", "", f"The run's resolved configuration (also in `{TRAINING_FILE}`):", "",
            "```yaml", text.rstrip(), "```", "", "## Reproduce", "",
            f"With a copy of the data (`{data}`; a local folder is named by its last name only):", "", "```bash",
            f"alexnet train --config {TRAINING_FILE} --out runs/again", "```",
        ]
    return header + "\n".join([*lines, "", *_load_lines(f"hf-hub:{repo}")]) + "\n"


BVLC_README = "https://github.com/BVLC/caffe/blob/master/models/bvlc_alexnet/readme.md"


def caffe_card(ckpt: dict[str, Any], source: str, *, bvlc: bool, repo: str | None = None, folder: str = "DIR") -> str:
    """The card of a .caffemodel converted by `alexnet convert`, to be pushed as `repo` (None: not
    named yet; the card then loads it from `folder`). `bvlc`: the file is BVLC's bvlc_alexnet (its
    sha1 is the model zoo's), so its provenance, license and accuracy can be stated; otherwise the
    card says only what the file shows."""
    title = repo or Path(folder).name
    ref = f"hf-hub:{repo}" if repo else folder
    what = ("alexnet2012, the paper's net: two towers, Caffe's LRN (k = 1), conv1's filters turned from BGR to "
            "RGB, inputs prepared as Caffe prepared them")
    if not bvlc:
        header = _header(ckpt, title, license="other", dataset=None, data_name="", figures={},
                         extra={"license_name": "unknown"})
        lines = [
            f"# {title}", "", f"A Caffe model in bvlc_alexnet's layout, converted by `alexnet convert` from "
            f"`{_literal(source)}` into {what}. It is not BVLC's bvlc_alexnet (its sha1 differs), so where it "
            "comes from, what it was trained on and its license are not known here: say them before sharing it.",
        ]
        return header + "\n".join([*lines, "", *_model_lines(ckpt), "", *_load_lines(ref)]) + "\n"
    header = _header(ckpt, title, license="other", dataset=HUB_DATASETS["imagenet"], data_name="ImageNet (ILSVRC-2012)",
                     figures={}, extra={"license_name": "bvlc-unrestricted", "license_link": BVLC_README})
    lines = [
        f"# {title}", "",
        "BVLC's `bvlc_alexnet` (Caffe Model Zoo, models/bvlc_alexnet in BVLC/caffe; the file's sha1 is the zoo's), "
        f"converted by `alexnet convert` from `{_literal(source)}` into {what}.",
        "", "BVLC released the model \"for unrestricted use\" (its readme); it was trained on ILSVRC-2012, "
        "whose images are for research and teaching only. BVLC's replication differs from the paper in two "
        "ways: no PCA relighting in training, and biases initialised to 0.1 instead of 1. BVLC reports 57.1% "
        "top-1 and 80.2% top-5 on ILSVRC-2012 validation with the centre crop (models/bvlc_alexnet/readme.md).", "",
        *_model_lines(ckpt), "", *_load_lines(ref),
    ]
    return header + "\n".join(lines) + "\n"


def _header(ckpt: dict[str, Any], repo: str, *, license: str, dataset: str | None, data_name: str,
            figures: dict[str, float], extra: dict[str, str] | None = None) -> str:
    """The YAML metadata block the Hub reads (between `---` lines)."""
    meta: dict[str, Any] = {"license": license, **(extra or {}), "library_name": "pytorch",
                            "pipeline_tag": "image-classification",
                            "tags": ["alexnet", "image-classification", ckpt["model_name"]]}
    if dataset:
        meta["datasets"] = [dataset]
    meta["metrics"] = ["accuracy"]
    if figures:
        names = {"val_top1": "top-1 accuracy", "val_top5": "top-5 accuracy"}
        meta["model-index"] = [{"name": repo, "results": [{
            "task": {"type": "image-classification", "name": "Image Classification"},
            "dataset": {"name": data_name, "type": dataset or data_name, "split": "held-out"},
            "metrics": [{"type": "accuracy", "name": f"{names[k]} ({VIEW_NAMES['center']})",
                         "value": round(100 * v, 2)} for k, v in figures.items()],
        }]}]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n"


def _model_lines(ckpt: dict[str, Any]) -> list[str]:
    """The model and the preparation of its inputs."""
    c, h, w = ckpt["input_size"]
    params = sum(t.numel() for t in ckpt["model"].values())
    classes = list(ckpt["classes"])
    shown = ", ".join(f"`{_literal(name)}`" for name in classes[:20])
    shown += f", ... ({len(classes)} in all)" if len(classes) > 20 else ""
    if ckpt.get("input_norm") == "mean_image":
        norm = "the training set's mean image subtracted from 0-255 pixels (stored with the weights)"
    else:
        mean, std = (", ".join(f"{v:.4g}" for v in ckpt[key]) for key in ("mean", "std"))
        norm = f"pixels in [0, 1] normalised with mean ({mean}) and std ({std})"
    resize = ("the shorter side resized to 256/224 of the crop, then the centre crop" if ckpt.get("augment") == "paper"
              else "the whole image resized")
    args = ", ".join(f"{k}={v!r}" for k, v in (ckpt.get("model_args") or {}).items()) or "defaults"
    return [
        "## Model", "",
        f"- architecture: `{ckpt['model_name']}` ({args}), {params:,} parameters",
        f"- input: {c}×{h}×{w}, {resize}; {norm}",
        f"- classes ({len(classes)}): {shown}",
    ]


def _load_lines(ref: str) -> list[str]:
    """How to load the weights `ref` (what --weights takes), from the command line and from Python."""
    return [
        "## Use", "", "With the `alexnet` package installed:", "", "```bash",
        f"alexnet predict photo.jpg --weights {ref}",
        f"alexnet train --init-from {ref} --data folder:my_photos --config finetune", "```", "",
        "```python", "import alexnet", "", f'ckpt = alexnet.load_weights("{ref}")',
        "net = alexnet.model_from_checkpoint(ckpt).eval()",
        f'print(alexnet.predict("photo.jpg", "{ref}"))', "```",
        "", "The files: `model.safetensors` (the weights and the inputs' statistics) and `config.json` (the "
        "model's name and arguments, classes, input size and preparation, and a digest over both).",
    ]


def _literal(name: str) -> str:
    """A class name safe inside a Markdown code span: no backtick to end it, no line break."""
    return printable(str(name)).replace("`", "'")
