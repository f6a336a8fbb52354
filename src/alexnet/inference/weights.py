"""Weights from anywhere, as a checkpoint: torchvision's pretrained sets, .pth state_dicts, .safetensors.

Everything that uses a trained net (predict, eval, viz, export) works from one currency, the
checkpoint dict of `alexnet.engine.checkpoint`: the builder name and arguments, the state_dict,
the class names and how inputs were prepared (input_size, mean, std, augment). This module
makes such a dict from

- a name of a pretrained set (`imagenet1k` for alexnet_owt and the VGGs), fetched through
  torchvision's own weights API (`AlexNet_Weights.IMAGENET1K_V1.get_state_dict`, cached in
  $TORCH_HOME/hub/checkpoints), with the class names and eval transform it carries;
- a file: our checkpoint, a torchvision-format state_dict (`torch.save(model.state_dict())`,
  also wrapped as {"model": ...} or {"state_dict": ...} the way training scripts save it,
  with DDP's `module.` prefixes), or a `.safetensors` file (ours carry their description in the
  header metadata, so they need no --model);
- a Caffe `.caffemodel`: BVLC's bvlc_alexnet as alexnet2012 with Caffe's LRN and inputs
  (`alexnet.inference.caffe`), its inputs losing the `imagenet_mean.binaryproto` beside it when
  there is one, else Caffe's per-channel ImageNet mean;
- a folder in the Hugging Face Hub's layout (`save_hub_folder`: model.safetensors + config.json,
  the description and its digest in config.json), or a Hub id `hf-hub:ORG/NAME[@REVISION]`,
  fetched into (or, with HF_HUB_OFFLINE=1, read from) huggingface_hub's cache (`alexnet.inference.hub`).

Nothing is unpickled beyond tensors and plain containers: torch.load(weights_only=True) or
safetensors. A file whose tensors do not fit the model gives a one-line error naming the
first tensor that does not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alexnet.atomic import atomic_path
from alexnet.engine.checkpoint import PREP_KEYS, load_checkpoint, model_state, torch_load, unwrap
from alexnet.engine.checks import (
    FORMAT,
    VERSION,
    check_checkpoint,
    check_digest,
    check_state,
    checkpoint_digest,
    tensor_digest,
)
from alexnet.engine.console import log
from alexnet.engine.run_folder import is_run_folder
from alexnet.errors import UsageError
from alexnet.inference.caffe import caffe_alexnet2012, mean_file_beside
from alexnet.inference.hub import HUB_FILES, hub_snapshot, is_hub_id
from alexnet.limits import (
    STATE_FILE_BYTES,
    WEIGHTS_FILE_BYTES,
    Refused,
    check_regular,
    load_json,
    read_regular,
)
from alexnet.models import build_model

# torchvision's weight enums for the models whose layout is torchvision's (parameter names equal).
PRETRAINED: dict[str, dict[str, str]] = {
    "alexnet_owt": {"imagenet1k": "AlexNet_Weights.IMAGENET1K_V1"},
    "vgg11": {"imagenet1k": "VGG11_Weights.IMAGENET1K_V1"},
    "vgg13": {"imagenet1k": "VGG13_Weights.IMAGENET1K_V1"},
    "vgg16": {"imagenet1k": "VGG16_Weights.IMAGENET1K_V1"},
    "vgg19": {"imagenet1k": "VGG19_Weights.IMAGENET1K_V1"},
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics, in [0,1] units
IMAGENET_STD = (0.229, 0.224, 0.225)
SAFETENSORS_KEY = "alexnet"  # header metadata entry holding our description (JSON)


def select_model(checkpoint: str | os.PathLike | None = None, model: str | None = None,
                 weights: str | os.PathLike | None = None) -> dict[str, Any]:
    """The checkpoint dict for `--checkpoint CKPT_OR_RUN_DIR`, or for `--model NAME --weights W`."""
    if checkpoint is not None:
        if model is not None or weights is not None:
            raise UsageError("give either --checkpoint, or --model with --weights, not both")
        return load_checkpoint(checkpoint)
    if weights is None:
        raise UsageError("say which net to use: --checkpoint CKPT_OR_RUN_DIR, or --model NAME --weights W")
    return load_weights(weights, model)


def load_weights(weights: str | os.PathLike, model: str | None = None) -> dict[str, Any]:
    """A checkpoint dict for the pretrained set `weights` of `model`, or for a weights file."""
    name = str(weights)
    if model is not None and name in PRETRAINED.get(model, {}):
        return pretrained(model, name)
    if is_hub_id(name):
        return _from_hub_folder(hub_snapshot(name, HUB_FILES), model, source=name)
    path = Path(name)
    if not path.exists():
        sets = ", ".join(f"{m}: {', '.join(s)}" for m, s in PRETRAINED.items())
        raise UsageError(
            f"weights {name!r}: no such file, and not a pretrained set of {model or 'any model'} "
            f"(pretrained sets: {sets})"
        )
    if path.is_dir() and any((path / f).exists() for f in HUB_FILES) and not is_run_folder(path):
        return _from_hub_folder(path, model)
    if path.is_dir():
        return _same_model(load_checkpoint(path), model)
    if path.suffix == ".safetensors":
        return _from_safetensors(path, model)
    if path.suffix.lower() == ".caffemodel":
        return _from_caffe(path, model)
    if path.suffix.lower() == ".binaryproto":
        raise UsageError(f"{path} is a Caffe blob (a mean file), not weights: pass the .caffemodel; "
                         "an imagenet_mean.binaryproto beside it is used")
    state = _load_torch_file(path)
    if state.get("format") == FORMAT:
        return _same_model(load_checkpoint(path), model)
    return from_state_dict(_unwrap_state(state, path), model, source=str(path))


def pretrained(model: str, name: str, progress: bool = True) -> dict[str, Any]:
    """torchvision's pretrained set `name` of `model`, through torchvision's weights API."""
    from torchvision.models import get_weight

    enum = get_weight(PRETRAINED[model][name])
    try:
        # check_hash: a download is verified against the hash in its file name before it is kept
        state = enum.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as e:  # no network (URLError), a truncated cache file, a hash mismatch
        cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise UsageError(f"cannot get {enum} ({reason}); download {enum.url} to {cache} "
                         f"on a machine with network, or give that file's path instead") from None
    transform = enum.transforms()
    crop, resize = int(transform.crop_size[0]), int(transform.resize_size[0])
    if abs(resize / crop - 256 / 224) > 1e-6:  # our 'paper' preparation is resize 256/224 x crop, then the centre crop
        raise UsageError(
            f"{enum}: eval transform resize {resize} / crop {crop} is not the 256/224 this package prepares"
        )
    ckpt = from_state_dict(state, model, source=f"torchvision {enum}")
    ckpt.update(classes=list(enum.meta["categories"]), input_size=[3, crop, crop], mean=list(transform.mean),
                std=list(transform.std), augment="paper", weights=str(enum))
    return ckpt


def from_state_dict(state: dict[str, torch.Tensor], model: str | None, *, source: str,
                    classes: list[str] | None = None) -> dict[str, Any]:
    """A checkpoint dict for `model` holding `state`; classes and input statistics get defaults.

    The number of classes and input channels are read off the tensors (the last Linear's rows,
    the first conv's input channels), so a 10-class CIFAR state_dict needs no extra options.
    Defaults: 1000 classes get ImageNet's names, others "0".."K-1"; ImageNet's mean and std for
    3 channels, 0.5/0.5 for one; nets of 224 px and more are prepared as the paper's (resize,
    centre crop), smaller ones resized whole.
    """
    if model is None:
        raise UsageError(f"{source} is a bare state_dict: say which model it is for with --model NAME")
    net = build_model(model)
    args = _shape_args(net, state)
    if args:
        net = build_model(model, **args)
    check_state(net, state, source)
    net.load_state_dict(state)
    return describe_model(net, source=source, classes=classes)


def describe_model(net: nn.Module, *, source: str, classes: list[str] | None = None) -> dict[str, Any]:
    """A checkpoint dict for a built model (from `build_model`) with the defaults of `from_state_dict`."""
    k, (c, h, w) = net.num_classes, net.input_size
    if classes is None:
        classes = _imagenet_names() if k == 1000 else [str(i) for i in range(k)]
    return {
        "format": FORMAT, "version": VERSION, **model_state(net), "classes": list(classes),
        "input_size": [c, h, w], "mean": list(IMAGENET_MEAN if c == 3 else (0.5,) * c),
        "std": list(IMAGENET_STD if c == 3 else (0.5,) * c), "augment": "paper" if h >= 224 else "small",
        "data": None, "path": source,
    }


def as_checkpoint(source: Any, model: str | None = None) -> dict[str, Any]:
    """A checkpoint dict for `source`: a checkpoint dict as it is, a path as `load_weights(source,
    model)`, or a module from `model_from_checkpoint` (which carries its class names and input
    preparation). A module without them is refused: its inputs' statistics would be a guess."""
    if isinstance(source, dict):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_weights(source, model)
    if isinstance(source, nn.Module):
        plain = unwrap(source)
        classes, prep = getattr(plain, "classes", None), getattr(plain, "prep", None)
        if classes is None or not isinstance(prep, dict):
            raise UsageError(
                f"this {getattr(plain, 'arch', type(plain).__name__)} carries no class names or input preparation: "
                "pass its run folder or checkpoint, or a model from alexnet.model_from_checkpoint"
            )
        return {"format": FORMAT, "version": VERSION, **model_state(plain), "classes": list(classes),
                **{key: prep.get(key) for key in PREP_KEYS}, "data": None, "path": f"{plain.arch} (in memory)"}
    raise UsageError(f"expected a checkpoint, a run folder, a weights file or a model; got a {type(source).__name__}")


INPUT_PREFIX = "_alexnet_input."  # safetensors keys of the input statistics, not of the net


def save_safetensors(ckpt: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint's weights as .safetensors with its description in the header metadata."""
    from safetensors.torch import save_file

    state, meta = _described(ckpt)
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={SAFETENSORS_KEY: json.dumps(meta), "format": "pt"})
    return path


def save_hub_folder(ckpt: dict[str, Any], folder: str | os.PathLike) -> Path:
    """Write the Hub's layout into `folder` (which must exist): model.safetensors, and config.json
    holding its description (model name and arguments, classes, input size and preparation, the
    digest over both). The .safetensors carries the same description, so it also loads alone."""
    folder = Path(folder)
    save_safetensors(ckpt, folder / HUB_FILES[0])
    with atomic_path(folder / HUB_FILES[1]) as tmp:
        Path(tmp).write_text(json.dumps(_described(ckpt)[1], indent=2) + "\n")
    return folder


def _described(ckpt: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors a .safetensors holds (the net's, then the inputs' statistics) and its description."""
    state = {k: v.detach().cpu().contiguous() for k, v in ckpt["model"].items()}
    meta = {key: ckpt[key] for key in ("model_name", "model_args", "classes", "input_size", "mean", "std", "augment")}
    meta["input_norm"] = ckpt.get("input_norm") or "channel"
    meta["translate"] = ckpt.get("translate")  # the small crops' shift, for ten-crop's corners (None: size/8)
    # the training set's pixel statistics travel as tensors beside the weights (INPUT_PREFIX keys)
    if ckpt.get("mean_image") is not None:
        state[INPUT_PREFIX + "mean_image"] = torch.as_tensor(ckpt["mean_image"]).float().contiguous()
    if ckpt.get("pca"):
        state.update(
            {INPUT_PREFIX + k: torch.as_tensor(ckpt["pca"][k]).float().contiguous() for k in ("eigval", "eigvec")}
        )
    meta["digest_covers"] = "all"  # every tensor in the file and this description (older files: the tensors)
    meta["digest"] = _file_digest(state, meta)  # verified by _from_description
    return state, meta


def _file_digest(state: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """The digest of our .safetensors: every tensor (the inputs' statistics too) and the description."""
    return checkpoint_digest({"tensors": state, "meta": {k: v for k, v in meta.items() if k != "digest"}})


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a .safetensors file and its header metadata, or a one-line UsageError."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        check_regular(path, WEIGHTS_FILE_BYTES)  # a named pipe would block safetensors for ever
    except Refused as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except Exception as e:  # SafetensorError on a truncated or foreign file
        raise UsageError(f"cannot read {path}: {' '.join(str(e).split())[:120]}") from None


def _from_safetensors(path: Path, model: str | None) -> dict[str, Any]:
    state, meta = _read_safetensors(path)
    if SAFETENSORS_KEY not in meta:
        return from_state_dict(
            {k: v for k, v in state.items() if not k.startswith(INPUT_PREFIX)}, model, source=str(path)
        )
    try:
        info = load_json(meta[SAFETENSORS_KEY])
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise UsageError(f"{path}: the alexnet description in its header is damaged") from None
    return _from_description(state, info, str(path), model)


def _from_hub_folder(folder: Path, model: str | None, source: str | None = None) -> dict[str, Any]:
    """A folder in the Hub's layout (`save_hub_folder`): config.json describes model.safetensors."""
    source = source or str(folder)
    missing = [name for name in HUB_FILES if not (folder / name).exists()]
    if missing:
        raise UsageError(f"{source}: no {' or '.join(missing)} in it (the Hub layout is {' + '.join(HUB_FILES)})")
    try:
        info = load_json(read_regular(folder / HUB_FILES[1], STATE_FILE_BYTES))  # 100,000 class names fit
    except (Refused, ValueError, OSError) as e:
        raise UsageError(f"{source}: cannot read {HUB_FILES[1]}: {' '.join(str(e).split())[:120]}") from None
    if not isinstance(info, dict) or not all(key in info for key in ("model_name", "classes", "input_size")):
        raise UsageError(f"{source}: {HUB_FILES[1]} is not an alexnet description "
                         "(it needs model_name, classes and input_size)")
    if info.get("digest_covers") != "all" or not info.get("digest"):  # a new format: no older files to accept
        raise UsageError(f"{source}: {HUB_FILES[1]} has no digest over the weights and itself (digest_covers "
                         "'all'): write the folder with alexnet push --to-folder")
    state, _ = _read_safetensors(folder / HUB_FILES[0])
    return _from_description(state, info, source, model, pair=f"{HUB_FILES[1]} and {HUB_FILES[0]}")


def _from_description(state: dict[str, torch.Tensor], info: dict[str, Any], source: str, model: str | None,
                      pair: str | None = None) -> dict[str, Any]:
    """A checkpoint dict from a .safetensors' tensors and our description of them, digest verified;
    `pair` names the two files of a Hub folder, whose digest ties the description to the weights."""
    if info.get("digest_covers") == "all":
        if info.get("digest") is None:
            raise UsageError(f"{source}: its description says it has a digest, and it has none: "
                             f"{pair + ' are' if pair else 'the file is'} damaged")
        try:
            check_digest(info.get("digest"), lambda: _file_digest(state, info), source)
        except UsageError:
            if pair is None:
                raise
            raise UsageError(f"{source}: {pair} do not match the digest saved with them (changed since "
                             "they were written, or from different nets)") from None
    else:  # written when the digest covered the tensors only
        check_digest(info.get("digest"), lambda: tensor_digest(state), source)
    inputs = {k[len(INPUT_PREFIX):]: state.pop(k) for k in list(state) if k.startswith(INPUT_PREFIX)}
    described = ("model_name", "model_args", "classes", "input_size", "mean", "std", "augment")
    ckpt = {
        "format": FORMAT, "version": VERSION, **{key: info[key] for key in described if key in info}, "model": state,
        "data": None, "path": source, "input_norm": info.get("input_norm", "channel"),
        "translate": info.get("translate"), "mean_image": inputs.get("mean_image"),
        "pca": (
            {"eigval": inputs["eigval"], "eigvec": inputs["eigvec"]} if "eigval" in inputs and "eigvec" in inputs
            else None
        ),
    }
    check_checkpoint(ckpt, source)
    if ckpt["input_norm"] == "mean_image" and ckpt["mean_image"] is None:  # it would be normalised per channel
        raise UsageError(f"{source}: its description says the inputs lose the training mean image, and it holds "
                         f"none ({INPUT_PREFIX}mean_image)")
    names = [str(c) for c in ckpt["classes"]]
    if len(set(names)) != len(names) or not all(name.strip() for name in names):
        raise UsageError(f"{source}: its class names must be distinct and not empty")
    return _same_model(ckpt, model)


def _from_caffe(path: Path, model: str | None) -> dict[str, Any]:
    """A .caffemodel as an alexnet2012 checkpoint, the mean file beside it used when present."""
    if model not in (None, "alexnet2012"):
        raise UsageError(f"{path} is a Caffe model, which loads as alexnet2012 (Caffe's bvlc_alexnet), not as {model}")
    return caffe_checkpoint(path, mean_file_beside(path))


def caffe_checkpoint(path: str | os.PathLike, mean_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """bvlc_alexnet.caffemodel as an alexnet2012 checkpoint; its inputs lose `mean_file`'s mean
    image (a .binaryproto), or Caffe's per-channel ImageNet mean when there is none."""
    caffe = caffe_alexnet2012(path, mean_file)
    net = build_model("alexnet2012", **caffe.model_args)
    net.load_state_dict(caffe.state)
    ckpt = describe_model(net, source=str(path))
    ckpt.update(caffe.prep)
    log(caffe.note)
    return ckpt


def _load_torch_file(path: Path) -> dict[str, Any]:
    obj = torch_load(path, "weights")
    if not isinstance(obj, dict):
        raise UsageError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    return obj


def _unwrap_state(obj: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The state_dict inside what training scripts save; DDP/compile prefixes removed."""
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise UsageError(f"{path} holds no tensors: not a state_dict")
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _shape_args(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, int]:
    """num_classes / in_channels that make `net` fit `state`, read off the first conv and last Linear."""
    args: dict[str, int] = {}
    first_conv = next((n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)
    last_linear = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    conv_w = state.get(f"{first_conv}.weight")
    fc_w = state.get(f"{last_linear}.weight")
    if isinstance(fc_w, torch.Tensor) and fc_w.ndim == 2 and fc_w.shape[0] != net.num_classes:
        args["num_classes"] = int(fc_w.shape[0])
    if isinstance(conv_w, torch.Tensor) and conv_w.ndim == 4 and conv_w.shape[1] != net.input_size[0]:
        args["in_channels"] = int(conv_w.shape[1])
    return args


def _same_model(ckpt: dict[str, Any], model: str | None) -> dict[str, Any]:
    if model is not None and ckpt["model_name"] != model:
        raise UsageError(f"{ckpt['path']} holds a {ckpt['model_name']}, not a {model}")
    return ckpt


def _imagenet_names() -> list[str]:
    from alexnet.data.imagenet import imagenet_classes

    return list(imagenet_classes()[1])
