"""What a checkpoint may hold, checked before anything uses it: its fields, its tensors, its digest.

Nothing in a file is trusted. `check_checkpoint` checks each field's type and range, and the
tensors' names, shapes, layout and dtypes against the net built on the meta device (shapes only:
a `num_classes: 10**11` costs no memory); weights, optimizer moments and input statistics must
be finite and in range. `check_digest` recomputes the sha256 saved with the file, so flipped
bytes are refused: from version 2 (`checkpoint_digest`) it covers every entry a command uses
(weights, class names, input preparation, optimizer and RNG states, config, counters); a version
1 file's (`tensor_digest`) covers its weights only, and such a file still loads.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from alexnet.config import AUGMENT_PRESETS, make_config
from alexnet.errors import UsageError, brief
from alexnet.limits import MAX_COUNT, MAX_IMAGE_SIZE
from alexnet.models import MODELS, build_model, check_input_size, first_conv

FORMAT = "alexnet-checkpoint"
VERSION = 2  # 2: the digest covers every entry; 1: the model's tensors only
NOT_DIGESTED = ("digest", "path")  # the digest itself, and where the file was found (added on loading)


DESCRIPTION = ("model_name", "model_args", "model", "classes", "input_size", "mean", "std", "augment")
TRAINING = ("config", "optimizer", "epoch", "step", "best_top1")  # a training checkpoint holds all of these
INPUT_NORMS = (None, "mean_image", "channel")  # as resolved when the run started (config.resolved_input_norm)


def check_checkpoint(ckpt: dict[str, Any], source: str | None = None) -> nn.Module:
    """Raise a one-line UsageError naming the first field of `ckpt` whose type or range is wrong;
    return the net it describes, built on the meta device (shapes only, no memory).

    The description (DESCRIPTION keys, and input_norm, mean_image, pca, data, version where
    present) is checked in every checkpoint; the training state (TRAINING keys, and rng, partial,
    init_filters, the schedules where present) in a checkpoint that has any of it, against what
    `fit` does with it on --resume.
    """
    source = source or str(ckpt.get("path") or "checkpoint")
    missing = [key for key in DESCRIPTION if key not in ckpt]
    if missing:
        raise UsageError(f"{source}: the checkpoint has no {missing[0]!r}: "
                         "it is damaged, or not one this package wrote")
    need = _needer(source)
    name, args, state = ckpt["model_name"], ckpt["model_args"], ckpt["model"]
    need("model_name", name, isinstance(name, str) and name in MODELS, f"must be one of {', '.join(MODELS)}")
    single = (str, int, float, type(None))
    need("model_args", args, isinstance(args, dict) and all(isinstance(k, str) and isinstance(v, single)
                                                           for k, v in args.items()),
         "must map option names to single values")
    try:
        with torch.device("meta"):
            net = build_model(name, **args)  # bounded there: classes, channels, weights in all
    except UsageError as e:
        raise UsageError(f"{source}: model_args: {e}") from None
    need("model", state, isinstance(state, dict) and all(isinstance(k, str) for k in state),
         "must be a state_dict (tensors by name)")
    check_state(net, state, source)
    classes = ckpt["classes"]
    need("classes", classes, isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes),
         "must be a list of class names")
    need("classes", classes, len(classes) == net.num_classes, f"must name the net's {net.num_classes} outputs")
    channels, size = net.input_size[0], ckpt["input_size"]
    need("input_size", size, isinstance(size, (list, tuple)) and len(size) == 3 and all(is_count(s) for s in size)
         and size[0] == channels and size[1] == size[2] and 8 <= size[1] <= MAX_IMAGE_SIZE,
         f"must be [{channels}, S, S] with S in [8, {MAX_IMAGE_SIZE}]")
    try:
        check_input_size(name, size[1], **args)
    except UsageError as e:
        raise UsageError(f"{source}: input_size: {e}") from None
    for key, (low, high) in STATS_RANGE.items():
        stats = ckpt[key]
        need(key, stats, isinstance(stats, (list, tuple)) and len(stats) in (1, 3)
             and all(_real(v) and low <= v <= high for v in stats),
             f"must be 1 or 3 numbers from {low:g} to {high:g} (pixels in 0-1 units)")
    need("augment", ckpt["augment"], ckpt["augment"] in AUGMENT_PRESETS,
         f"must be one of {', '.join(AUGMENT_PRESETS)}")
    shift = ckpt.get("translate")  # absent from older checkpoints: the small preset's size/8
    need("translate", shift, shift is None or (is_count(shift) and ckpt["augment"] == "small" and 0 <= shift < size[1]),
         f"must be the small augmentation's border in pixels, 0 to {size[1] - 1}")
    need("input_norm", ckpt.get("input_norm"), ckpt.get("input_norm") in INPUT_NORMS, "must be mean_image or channel")
    mean_image = ckpt.get("mean_image")
    need("mean_image", mean_image,
         mean_image is None or (_floats(mean_image) and mean_image.ndim == 3 and mean_image.shape[0] == channels
                                and size[1] <= mean_image.shape[1] == mean_image.shape[2] <= 2 * MAX_IMAGE_SIZE
                                and _within(mean_image, *MEAN_IMAGE_RANGE)),
         f"must be a float {channels},R,R tensor with R from {size[1]} to {2 * MAX_IMAGE_SIZE}, "
         f"of 0-255 pixel values")
    pca = ckpt.get("pca")
    need("pca", pca,
         pca is None or (isinstance(pca, dict) and _floats(pca.get("eigval")) and _floats(pca.get("eigvec"))
                         and tuple(pca["eigval"].shape) == (channels,)
                         and tuple(pca["eigvec"].shape) == (channels, channels)
                         and _within(pca["eigval"], 0, EIGVAL_MAX) and _within(pca["eigvec"], -1.001, 1.001)),
         f"must hold eigval ({channels}, variances from 0 to {EIGVAL_MAX:g}) and eigvec "
         f"({channels}x{channels}, unit vectors) float tensors")
    need("data", ckpt.get("data"), ckpt.get("data") is None or isinstance(ckpt["data"], str), "must be a dataset spec")
    version = ckpt.get("version")
    need("version", version, version is None or (is_count(version) and 1 <= version <= VERSION),
         f"must be 1 to {VERSION} (a newer alexnet wrote this file?)")
    if any(key in ckpt for key in TRAINING):
        _check_training(ckpt, net, source)
    return net


def check_resumable(ckpt: dict[str, Any]) -> None:
    """Refuse, in one line, a checkpoint without training state (a model saved for predicting only)."""
    missing = [key for key in TRAINING if key not in ckpt]
    if missing:
        raise UsageError(f"{ckpt.get('path', 'the checkpoint')} holds no training state ({', '.join(missing)}): "
                         "evaluate it or predict with it, or train anew")


def _check_training(ckpt: dict[str, Any], net: nn.Module, source: str) -> None:
    missing = [key for key in TRAINING if key not in ckpt]
    if missing:
        raise UsageError(f"{source}: a training checkpoint without {missing[0]!r}: it is damaged")
    need = _needer(source)
    config = ckpt["config"]
    need("config", config, isinstance(config, dict) and all(isinstance(k, str) for k in config),
         "must be the run's config (fields by name)")
    for key in ("epoch", "step"):
        need(key, ckpt[key], is_count(ckpt[key]) and 0 <= ckpt[key] <= MAX_COUNT,
             f"must be an integer in [0, {MAX_COUNT:,}]")
    best = ckpt["best_top1"]
    need("best_top1", best, _real(best) and -1 <= best <= 1, "must be a number in [-1, 1]")
    elapsed = ckpt.get("elapsed")
    need("elapsed", elapsed, elapsed is None or (_real(elapsed) and elapsed >= 0), "must be seconds >= 0")
    for key in ("metrics", "step_schedule", "plateau", "scaler"):
        need(key, ckpt.get(key), ckpt.get(key) is None or isinstance(ckpt[key], dict), "must be a mapping")
    conv = first_conv(net).weight
    init = ckpt.get("init_filters")
    need("init_filters", init, init is None or (_floats(init) and init.shape == conv.shape),
         f"must be the first conv's {tuple(conv.shape)} kernels")
    _check_optimizer(ckpt["optimizer"], net, config, need, source)
    start = ckpt.get("init_from")  # a fine-tune's origin (engine/finetune.py); None: trained from scratch
    need("init_from", start, start is None or (isinstance(start, dict) and isinstance(start.get("source"), str)
                                               and all(isinstance(start.get(k), list) for k in ("kept", "replaced",
                                                                                                "frozen"))),
         "must record the source and the layers kept, replaced and frozen")
    rng = ckpt.get("rng")
    need("rng", rng, rng is None or isinstance(rng, dict), "must be the random-number states")
    if rng:  # {} and None: no states saved, nothing restored (train.restore_rng)
        try:  # put into fresh generators as train.restore_rng puts them into the global ones
            torch.Generator().set_state(rng["torch"])
            cuda = rng.get("cuda") or []
            if not isinstance(cuda, list) or not all(isinstance(s, torch.Tensor) and s.dtype == torch.uint8
                                                     for s in cuda):
                raise TypeError("cuda")
            n, p = rng["numpy"], rng["python"]
            keys = n["keys"].numpy().astype(np.uint32)
            np.random.RandomState().set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
            random.Random().setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
        # NumPy raises IndexError (a LookupError) for a short state
        except (LookupError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:80]
            raise UsageError(f"{source}: rng is not the random-number states this package saves ({reason})") from None
    _check_partial(ckpt.get("partial"), need)


def _check_optimizer(state: Any, net: nn.Module, config: dict[str, Any], need: Any, source: str) -> None:
    """The optimizer state fits the net: each parameter once, state tensors of its shape, and the
    groups of the optimizer the run's config builds (torch's load_state_dict, on the meta device)."""
    groups = state.get("param_groups") if isinstance(state, dict) else None
    need("optimizer", state, isinstance(groups, list) and groups and isinstance(state.get("state"), dict)
         and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups),
         "must be an optimizer's state_dict")
    try:
        cfg = make_config(config)
    except UsageError:
        cfg = None  # a config out of range is refused where it is used, by --resume
    from alexnet.engine.optim import make_optimizer

    try:  # the parameters it trains: a fine-tune's frozen layers are in no group (engine/finetune.py)
        built = make_optimizer(net, cfg) if cfg is not None else None
    except UsageError as e:
        raise UsageError(f"{source}: config: {e}") from None
    n = sum(len(g["params"]) for g in built.param_groups) if built is not None else len(list(net.parameters()))
    ids = [i for g in groups for i in g["params"]]
    need("optimizer", state, all(is_count(i) for i in ids) and sorted(ids) == list(range(n)),
         f"must hold the net's {n} trained parameters, each once")
    need("optimizer", state, all(i in ids and isinstance(entry, dict) for i, entry in state["state"].items()),
         "must keep state for its own parameters only")
    for index, entry in state["state"].items():  # a NaN momentum would turn every weight NaN on the first step
        for key, value in entry.items():
            ok = not isinstance(value, torch.Tensor) or (
                _floats(value) if value.is_floating_point()
                else _plain(value) and not value.is_complex() and value.dtype != torch.bool)
            need(f"optimizer state of parameter {index}", value, ok, f"must be dense finite numbers ({key!r})")
    if built is None:
        return
    sizes, wanted = [len(g["params"]) for g in groups], [len(g["params"]) for g in built.param_groups]
    need("optimizer", state, sizes == wanted,
         f"must have parameter groups of {wanted}, as its config builds; the file's are {sizes}")
    # the file's ids, group by group, name the built optimizer's parameters in the same places
    param = {i: p for g, b in zip(groups, built.param_groups) for i, p in zip(g["params"], b["params"])}
    for index, entry in state["state"].items():
        shape = param[index].shape
        need("optimizer", state, all(not isinstance(v, torch.Tensor) or v.ndim == 0 or v.shape == shape
                                     for v in entry.values()),
             f"state of parameter {index} must have its shape {tuple(shape)}")
    try:
        built.load_state_dict(state)  # on the meta device: what --resume does, without the memory
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        need("optimizer", state, False, f"does not fit the optimizer its config builds ({str(e).strip()[:80]})")


# What an interrupted epoch's progress holds (train.train_one_epoch's "partial"), key by key
_PARTIAL = {
    "batches": (lambda v: is_count(v) and 1 <= v <= MAX_COUNT, "an integer >= 1"),
    "images": (lambda v: is_count(v) and 0 <= v <= MAX_COUNT, "an integer >= 0"),
    "nonfinite": (lambda v: is_count(v) and 0 <= v <= MAX_COUNT, "an integer >= 0"),
    "seconds": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "lr": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "loss_sum": (lambda v: _floats(v) and v.ndim == 0, "a float scalar tensor"),
    "correct": (lambda v: _plain(v) and v.ndim == 0 and not v.is_floating_point() and not v.is_complex()
                and v.dtype != torch.bool, "an integer scalar tensor"),
}


def _check_partial(partial: Any, need: Any) -> None:
    if partial is None:  # the last epoch finished
        return
    need("partial", partial, isinstance(partial, dict) and "batches" in partial and "lr" in partial,
         "must be an interrupted epoch's progress (batches, lr, ...)")
    for key, (ok, rule) in _PARTIAL.items():
        if key in partial:
            need(f"partial {key}", partial[key], ok(partial[key]), f"must be {rule}")


def _needer(source: str) -> Any:
    def need(key: str, value: Any, ok: Any, rule: str) -> None:
        if not ok:
            raise UsageError(f"{source}: {key} {rule}; got {brief(value)}")
    return need


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is no count


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> bool:
    """A dense tensor with data: not sparse, meta (no data) or quantized, as every tensor we save is."""
    return (isinstance(value, torch.Tensor) and value.layout == torch.strided and value.device.type != "meta"
            and not value.is_quantized)


def _floats(value: Any) -> bool:
    """A plain floating-point tensor whose values are all finite."""
    return _plain(value) and value.is_floating_point() and bool(torch.isfinite(value).all())


def _within(t: torch.Tensor, low: float, high: float) -> bool:
    return t.numel() == 0 or (low <= float(t.min()) and float(t.max()) <= high)


# What the input statistics may be. mean and std are in 0-1 pixel units: real ones lie in 0-1
# (Caffe's std 1/255 = 0.0039 included); the margins allow any normalisation a user may pick, and
# refuse what makes every input overflow (mean 1e308) or blow up (std 1e-308).
STATS_RANGE = {"mean": (-1.0, 2.0), "std": (1e-3, 10.0)}
MEAN_IMAGE_RANGE = (-1.0, 256.0)  # 0-255 units
EIGVAL_MAX = 3 * 255.0**2  # the variance of RGB pixels in 0-255 units is at most 3 x 255^2


def check_state(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise a one-line UsageError naming the first tensor of `state` that does not fit `net`."""
    expected = net.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise UsageError(f"{source} does not fit {net.arch}: tensor {key!r} {tuple(tensor.shape)} is missing")
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise UsageError(f"{source} does not fit {net.arch}: {key!r} is not a tensor")
        if tuple(got.shape) != tuple(tensor.shape):
            raise UsageError(f"{source} does not fit {net.arch}: tensor {key!r} has shape {tuple(got.shape)}, "
                             f"the model wants {tuple(tensor.shape)}")
        if not _plain(got):
            raise UsageError(f"{source}: tensor {key!r} is {_kind(got)}, not a dense tensor in memory")
        # floats of any width are cast on loading as they always were; complex, int or bool would be cast silently
        if got.dtype != tensor.dtype and not (tensor.is_floating_point() and got.is_floating_point()):
            raise UsageError(f"{source}: tensor {key!r} is {got.dtype}, the model wants {tensor.dtype}")
        # as the model will hold it: float64 1e300 is finite, and infinite once cast to float32
        if got.is_floating_point() and not bool(torch.isfinite(got.to(tensor.dtype)).all()):
            raise UsageError(f"{source}: tensor {key!r} holds values that are not finite numbers (NaN or "
                             "infinity): the weights are damaged")
    for key in state:
        if key not in expected:
            raise UsageError(f"{source} does not fit {net.arch}: unexpected tensor {key!r}")


def tensor_digest(state: Mapping[str, torch.Tensor]) -> str:
    """'sha256:HEX' over each tensor's name, dtype, shape and bytes (contiguous, on the CPU), in
    sorted name order, so it does not depend on memory layout, device or the order a file lists
    them in. It costs less than torch.save of the same state (measured: BENCHMARKS.md, 'CPU: this
    project's machine')."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + h.hexdigest()


def checkpoint_digest(ckpt: Mapping[str, Any], source: str = "checkpoint") -> str:
    """'sha256:HEX' over every entry of a checkpoint but NOT_DIGESTED: keys in sorted order, each
    value by its type and content (tensors as `tensor_digest` takes them, lists and tuples alike),
    so that the class names, the input preparation, the optimizer's and RNG states and the
    counters are covered as well as the weights. A value this package never saves (a sparse,
    meta or quantized tensor, an object) is a one-line UsageError naming where it is."""
    h = hashlib.sha256()
    try:
        _feed(h, {k: v for k, v in ckpt.items() if k not in NOT_DIGESTED}, "", source)
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply to be a checkpoint of this package") from None
    return "sha256:" + h.hexdigest()


def _feed(h: Any, value: Any, where: str, source: str) -> None:
    if isinstance(value, torch.Tensor):
        if not _plain(value):
            raise UsageError(f"{source}: {where or 'a value'} is {_kind(value)}, which this package never saves")
        t = value.detach().cpu().contiguous()  # a run's state on the GPU, as it will load
        h.update(f"T{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}\0".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key, where, source)
            _feed(h, value[key], f"{where}.{key}" if where else str(key), source)
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}\0".encode())
        for i, item in enumerate(value):
            _feed(h, item, f"{where}[{i}]", source)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}\0".encode() + data)
    elif isinstance(value, bytes):
        h.update(f"B{len(value)}\0".encode() + value)
    elif value is None or isinstance(value, (bool, int, float)):
        h.update(f"{type(value).__name__}:{value!r}\0".encode())
    else:
        raise UsageError(f"{source}: {where or 'a value'} is a {type(value).__name__}, which this package never saves")


def _kind(t: torch.Tensor) -> str:
    if t.is_quantized:
        return f"a quantized tensor ({t.dtype})"
    if t.layout != torch.strided:
        return f"a sparse tensor ({t.layout})"
    return f"a tensor on the {t.device.type} device" + (" (no data)" if t.device.type == "meta" else "")


def check_digest(expected: object, actual: Callable[[], str], source: str) -> None:
    """Refuse, in one line, contents whose digest (`actual()`) is not the one saved with them (a
    damaged file). A file saved before digests were has none and loads as it did."""
    if expected is None:
        return
    if not isinstance(expected, str) or not expected.startswith("sha256:"):
        raise UsageError(f"{source}: digest must be 'sha256:...'; got {brief(expected)}")
    if actual() != expected:
        raise UsageError(f"{source}: its contents do not match the digest saved with them "
                         "(bytes changed since it was written): the file is damaged")
