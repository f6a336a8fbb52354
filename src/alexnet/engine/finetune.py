"""Fine-tuning: a training run that starts from trained weights (`alexnet train --init-from W`).

The recipe is the common one (PyTorch's "Finetuning Torchvision Models" tutorial; Yosinski et
al. 2014, "How transferable are features in deep neural networks?"): keep every trained layer,
replace the last Linear layer by a fresh one (initialised as the model's builder initialises it)
when the data's classes differ from the weights', optionally keep the first layers fixed
(`freeze`: features, or the first N layers that have weights), and let the new head learn faster
than the body (`head_lr_mult`). Frozen parameters are left out of the optimizer
(engine/optim.py `param_groups`), so neither weight decay nor momentum ever moves them.

A net's features mean something only on inputs prepared as its own were, so `adopt` takes the
input side, the augmentation family and the normalisation (mean/std, mean image, PCA) from the
weights, whatever the preset says; `fit` (engine/train.py) calls it once, at the top, and the
Plan, the loaders and the checkpoints follow. The run records where it started in its config
(`init_from`) and in every checkpoint (`"init_from"`: the source, its model and class count, and
the layers kept, replaced and frozen); `--resume` continues from the run's own state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from alexnet.config import TrainConfig, resolved_input_norm
from alexnet.data import DataSource
from alexnet.engine.console import log
from alexnet.errors import UsageError


def layers(model: nn.Module) -> list[tuple[str, str]]:
    """(module path, name) of each layer that holds parameters, in order. The name is the paper's
    where the model names its layers so (conv1 .. fc8), else the kind and the layer's rank
    (torchvision's alexnet_owt: features.0 is conv1, classifier.6 is fc8)."""
    found = []
    for path, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is None:
            continue
        own = path.rsplit(".", 1)[-1]
        kind = "fc" if isinstance(module, nn.Linear) else "conv"
        found.append((path, own if own and not own.isdigit() else f"{kind}{len(found) + 1}"))
    return found


def head(model: nn.Module) -> str:
    """The module path of the net's last Linear layer: its classifier's output."""
    linears = [path for path, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UsageError(f"{getattr(model, 'arch', type(model).__name__)} has no Linear output layer to fine-tune")
    return linears[-1]


def frozen_layers(model: nn.Module, freeze: str) -> list[str]:
    """The module paths `freeze` keeps fixed: none, features (all of model.features), or the first N
    layers with weights; refuses N past the layers there are and a freeze that takes the head."""
    if freeze == "none":
        return []
    named = layers(model)
    if freeze == "features":
        return [path for path, _ in named if path.split(".")[0] == "features"]
    n, top = int(freeze), head(model)
    names = ", ".join(name for _, name in named)
    if n > len(named):
        raise UsageError(f"freeze {n}: {model.arch} has {len(named)} layers with weights ({names})")
    chosen = [path for path, _ in named[:n]]
    if top in chosen:
        raise UsageError(f"freeze {n} would freeze the head {named[-1][1]} too, leaving nothing to train: "
                         f"freeze at most {len(named) - 1} of {names}")
    return chosen


def frozen_parameters(model: nn.Module, freeze: str) -> set[str]:
    """The parameter names (as model.named_parameters gives them) of the frozen layers."""
    frozen = set(frozen_layers(model, freeze))
    return {name for name, _ in model.named_parameters() if name.rpartition(".")[0] in frozen}


def head_parameters(model: nn.Module) -> set[str]:
    top = head(model)
    return {name for name, _ in model.named_parameters() if name.rpartition(".")[0] == top}


def adopt(cfg: TrainConfig, init: dict[str, Any] | None,
          resume: dict[str, Any] | None) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The config with the weights' architecture and input preparation, and the checkpoint whose
    input statistics the run uses: `init` (the weights) on a fresh fine-tune, the run's own when it
    resumes one, None for a run from scratch (cfg unchanged)."""
    if resume is not None:  # the saved config already holds the adopted fields
        return cfg, resume if resume.get("init_from") else None
    if not cfg.init_from:
        return cfg, None
    if init is None:
        raise UsageError("init_from: the weights are loaded by alexnet.fit (or `alexnet train`), not given here")
    args = {k: v for k, v in init["model_args"].items() if k != "num_classes"}
    augment = init["augment"]
    translate = init.get("translate")
    adopted = replace(
        cfg, model=init["model_name"], model_args=args, image_size=int(init["input_size"][1]), augment=augment,
        input_norm=init.get("input_norm") or "channel",
        # a checkpoint without it predates the field: the small preset's border was then size/8
        translate=cfg.translate if augment != "small" else -1 if translate is None else int(translate))
    before = (cfg.model, cfg.image_size or "its own", cfg.augment, resolved_input_norm(cfg))
    after = (adopted.model, adopted.image_size, adopted.augment, adopted.input_norm)
    same_size = cfg.image_size in (0, adopted.image_size) and cfg.model == adopted.model  # 0: the model's own
    if before[0] != after[0] or before[2:] != after[2:] or not same_size:
        log(f"preparing the images as {init_from_name(cfg, init)} was trained: {after[0]} at {after[1]} px, "
            f"augment {after[2]}, input_norm {after[3]}, its mean/std (the preset said {before[0]}, "
            f"{before[1]} px, augment {before[2]}, input_norm {before[3]})")
    return adopted, init


def init_from_name(cfg: TrainConfig, init: dict[str, Any]) -> str:
    return str(init.get("path") or cfg.init_from)


def with_stats(source: DataSource, start: dict[str, Any] | None) -> DataSource:
    """`source` with the weights' per-channel mean and std, which the run's preparation uses."""
    if start is None:
        return source
    return replace(source, mean=tuple(float(v) for v in start["mean"]), std=tuple(float(v) for v in start["std"]))


def known_stats(start: dict[str, Any] | None) -> dict[str, Any] | None:
    """The weights' mean image and PCA where they have them (data/stats.py reuses a checkpoint's;
    a mean image without PCA is kept, with the new data's components), else None: the new data's
    own are computed, when the preparation needs them."""
    has = start is not None and (start.get("pca") or start.get("mean_image") is not None)
    return start if has else None


def transplant(model: nn.Module, cfg: TrainConfig, start: dict[str, Any] | None, classes: list[str],
               resume: dict[str, Any] | None) -> dict[str, Any] | None:
    """Load the start's weights into `model` (built for `classes`), all but the head when the
    classes differ; freeze cfg.freeze's layers; log what was kept, replaced and frozen. Returns the
    checkpoint's "init_from" record (None for a run from scratch)."""
    frozen = frozen_layers(model, cfg.freeze)
    for name, p in model.named_parameters():
        if name.rpartition(".")[0] in frozen:
            p.requires_grad_(False)  # no gradient computed, and optim.param_groups leaves it out
    if resume is not None:
        saved = resume.get("config") or {}
        for key, default in (("freeze", "none"), ("head_lr_mult", 1.0)):
            if saved.get(key, default) != getattr(cfg, key):
                raise UsageError(f"{resume['path']} was trained with {key} {saved.get(key, default)}; "
                                 f"a resumed run keeps it (got {getattr(cfg, key)})")
        return resume.get("init_from") if start is not None else None
    if start is None:
        return None
    top, named = head(model), dict(layers(model))
    state = dict(start["model"])
    replaced = [] if list(start["classes"]) == list(classes) else [top]
    for path in replaced:
        for key in [k for k in state if k.rpartition(".")[0] == path]:
            del state[key]
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a shape that differs: not the architecture the weights were saved from
        raise UsageError(f"init_from {cfg.init_from}: its weights do not fit {cfg.model} "
                         f"({str(e).strip().splitlines()[-1].strip()[:120]})") from None
    if unexpected or {k.rpartition(".")[0] for k in missing} - set(replaced):
        raise UsageError(f"init_from {cfg.init_from}: its weights do not fit {cfg.model} "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    record = {"source": str(cfg.init_from), "model_name": str(start["model_name"]), "classes": len(start["classes"]),
              "kept": [name for path, name in named.items() if path not in replaced],
              "replaced": [named[path] for path in replaced], "frozen": [named[path] for path in frozen]}
    changed = (f"replaced {', '.join(record['replaced'])} ({record['classes']} -> {len(classes)} classes, "
               f"initialised afresh)" if replaced else f"replaced none (the same {len(classes)} classes)")
    log(f"fine-tuning from {init_from_name(cfg, start)} ({record['model_name']}): kept "
        f"{', '.join(record['kept']) or 'none'}; {changed}; froze {', '.join(record['frozen']) or 'none'}"
        + (f"; head lr x {cfg.head_lr_mult:g}" if cfg.head_lr_mult != 1 else ""))
    return record
