"""Model cards: the README.md a Hub repo shows, generated from a run's checkpoint.

The header is the Hub's YAML metadata (huggingface_hub's ModelCard and its model-index format for
results, as in huggingface/huggingface_hub, src/huggingface_hub/repocard_data.py: license,
library_name, tags, datasets, metrics, model-index). The body says what a user needs to trust and
use the weights: the model, the data and how inputs are prepared, the validation figures with the
view that gave them, the training curves, the recipe (the resolved config), the command that
reproduces it and how to load the weights. Every figure comes from the checkpoint itself.
"""

from __future__ import annotations

from typing import Any

import yaml

from alexnet.config import VIEW_NAMES

# the Hub's dataset ids of the data sets this package reads by name
HUB_DATASETS = {
    "cifar10": "uoft-cs/cifar10",
    "imagenet": "ILSVRC/imagenet-1k",
    "mnist": "ylecun/mnist",
    "fashion-mnist": "zalando-datasets/fashion_mnist",
}
TRAINING_FILE = "training.yaml"  # the run's resolved config, beside the card
CURVES_FILE = "curves.png"


def run_card(ckpt: dict[str, Any], repo: str, *, license: str = "mit", curves: bool = False) -> str:
    """The card of a checkpoint from `alexnet train` (or any checkpoint dict) pushed as `repo`."""
    data = ckpt.get("data") or "unknown data"
    metrics = ckpt.get("metrics") or {}
    figures = {k: metrics[k] for k in ("val_top1", "val_top5") if isinstance(metrics.get(k), (int, float))}
    dataset = HUB_DATASETS.get(str(data).split(":")[0].replace("_", "-").replace("fashionmnist", "fashion-mnist"))
    header = _header(ckpt, repo, license=license, dataset=dataset, data_name=str(data), figures=figures)
    start = ckpt.get("init_from")
    lines = [
        f"# {repo}", "",
        f"`{ckpt['model_name']}` trained with the `alexnet` package on `{data}`"
        + (f", fine-tuned from `{start['source']}`" if isinstance(start, dict) and "source" in start else "") + ".",
        "", *_model_lines(ckpt), "", "## Results", "",
    ]
    if figures:
        view = VIEW_NAMES["center"]  # training scores each epoch's validation on the centre view
        lines += [
            f"Validation after epoch {metrics.get('epoch', '?')} of the run (the checkpoint's epoch), {view}:", "",
            "| top-1 | top-5 |", "|---|---|",
            "| " + " | ".join(f"{100 * figures[k]:.2f}%" if k in figures else "-" for k in ("val_top1", "val_top5"))
            + " |",
        ]
    else:
        lines.append("This checkpoint records no validation figures.")
    if curves:
        lines += ["", "## Training curves", "", f"![loss, top-1 and learning rate per epoch]({CURVES_FILE})"]
    config = ckpt.get("config")
    if isinstance(config, dict):
        recipe = yaml.safe_dump({k: v for k, v in config.items() if k not in ("out", "resume")}, sort_keys=False)
        lines += [
            "", "## Recipe", "", f"The run's resolved configuration (also in `{TRAINING_FILE}`):", "",
            "```yaml", recipe.rstrip(), "```", "", "## Reproduce", "",
            f"With the data at the same place (`{data}`):", "", "```bash",
            f"alexnet train --config {TRAINING_FILE} --out runs/again", "```",
        ]
    return header + "\n".join([*lines, "", *_load_lines(f"hf-hub:{repo}")]) + "\n"


def caffe_card(ckpt: dict[str, Any], source: str, *, repo: str | None = None, folder: str = "DIR") -> str:
    """The card of BVLC's bvlc_alexnet converted from its .caffemodel (`alexnet convert`), to be
    pushed as `repo` (None: not named yet; the card then loads it from `folder`)."""
    header = _header(ckpt, repo or "bvlc_alexnet", license="other", dataset=HUB_DATASETS["imagenet"],
                     data_name="ImageNet (ILSVRC-2012)", figures={}, extra={"license_name": "bvlc-unrestricted"})
    lines = [
        f"# {repo or 'bvlc_alexnet'}", "",
        "BVLC's `bvlc_alexnet` (Caffe Model Zoo, models/bvlc_alexnet in BVLC/caffe), converted by "
        f"`alexnet convert` from `{source}` into the `alexnet2012` net of the paper: two towers, Caffe's LRN "
        "(k = 1), conv1's filters turned from BGR to RGB.",
        "", "BVLC released the model \"for unrestricted use\" (its readme); it was trained on ILSVRC-2012, "
        "whose images are for research and teaching only. BVLC's replication differs from the paper in two "
        "ways: no PCA relighting in training, and biases initialised to 0.1 instead of 1. BVLC reports 57.1% "
        "top-1 and 80.2% top-5 on ILSVRC-2012 validation with the centre crop (models/bvlc_alexnet/readme.md).", "",
        *_model_lines(ckpt), "",
        *_load_lines(f"hf-hub:{repo}" if repo else folder),
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
            "dataset": {"name": data_name, "type": dataset or data_name, "split": "validation"},
            "metrics": [{"type": "accuracy", "name": f"{names[k]} ({VIEW_NAMES['center']})",
                         "value": round(100 * v, 2)} for k, v in figures.items()],
        }]}]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n"


def _model_lines(ckpt: dict[str, Any]) -> list[str]:
    """The model and the preparation of its inputs."""
    c, h, w = ckpt["input_size"]
    params = sum(t.numel() for t in ckpt["model"].values())
    classes = list(ckpt["classes"])
    shown = ", ".join(f"`{name}`" for name in classes[:20]) + (f", ... ({len(classes)} in all)" if len(classes) > 20
                                                              else "")
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
