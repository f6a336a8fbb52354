"""The training configuration: one validated dataclass, YAML presets for its defaults, CLI overrides.

Resolution order (later wins): the dataclass defaults, a preset (`configs/NAME.yaml`) or a YAML
file, then the fields given on the command line. With --resume the run's saved `config.yaml`
takes the preset's place, so a resumed run keeps its schedule. The resolved config is written
into the run folder. Each field's docstring is its --help text (read from this file's source).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError, brief
from alexnet.limits import (
    MAX_BATCH_SIZE,
    MAX_CONFIG_BYTES,
    MAX_COUNT,
    MAX_IMAGE_SIZE,
    MAX_WORKERS,
    Refused,
    load_yaml,
    read_regular,
)

AUGMENT_PRESETS = ("paper", "small", "none")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("plateau", "cosine", "onecycle", "constant")
TTA_MODES = ("center", "flip", "tencrop")
# how a figure names the views it was measured with
VIEW_NAMES = {"center": "centre view", "flip": "image + mirror", "tencrop": "ten crops"}
INPUT_NORMS = ("auto", "mean_image", "channel")
MOMENTUM_FORMS = ("torch", "paper")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("torch", "numpy")
SWITCHES = ("auto", "on", "off")  # auto: on where it helps (the device decides)
# the fields that take a switch; on the command line `--amp` means on and `--no-amp` off
SWITCH_FIELDS = ("amp", "channels_last", "compile", "cuda_graphs", "cache_images", "device_decode")


@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults are `alexnet train`'s with no options,
    the `fast` preset: a modern short recipe for small data on a CPU (AdamW, one-cycle, label
    smoothing, flips at test time). `TrainConfig.preset("paper", epochs=2)` starts from another
    preset; each field's help says what the paper used where it differs."""

    model: str = "alexnet_mini"
    """Model name (see `alexnet models`)."""
    model_args: dict[str, Any] = field(default_factory=lambda: {"dropout": 0.0})
    """Extra builder arguments, e.g. 'activation=tanh,lrn=false' (num_classes comes from the data)."""
    data: str = "shapes"
    """Dataset spec: shapes[:k=v,..], fashion-mnist[:DIR], mnist[:DIR], cifar10[:DIR], imagenet:DIR, folder:DIR,
    fake[:CxHxW]."""
    train_images: int = 0
    """Train on a fixed class-balanced subset of this many images (0: the whole training split)."""
    val_images: int = -1
    """Validate on a fixed class-balanced subset of this many images (0: the whole validation split;
    -1: the whole split, or 1,000 images in a --max-steps run)."""
    holdout: int = 0
    """Hold out this many training images (class-balanced) as the validation split where the data's 'val' is its
    test split (CIFAR-10, Fashion-MNIST, MNIST, shapes): epochs, lr drops and best.pt read only them, and the
    test split is scored once, at the end (0: validate on the test split)."""
    val_fraction: float = 0.1
    """Share of a single folder tree held out for validation (folder:DIR without train/val)."""
    image_size: int = 0
    """Input side in pixels; 0 means the model's own (227 for alexnet2012, 32 for alexnet_mini)."""
    augment: str = "small"
    """Training augmentation: paper (256 resize, random crops, flips, PCA lighting), small (pad-crop, flip), none."""
    translate: int = 1
    """Largest shift of the small augmentation's random crops, in pixels: reflect-pad by this much, then crop the
    input size (-1: size/8, the CIFAR practice; 0: flips only); the other augmentations ignore it."""
    lighting: float = 0.1
    """Std of the PCA colour-noise coefficients alpha, section 4.1 (paper augmentation), on the training set's
    own RGB eigen-decomposition; 0 turns it off."""
    input_norm: str = "auto"
    """mean_image (section 2: raw 0-255 pixels minus the training set's per-pixel mean image), channel
    (per-channel standardisation), auto (mean_image for alexnet2012)."""
    flip: bool = True
    """Random horizontal flips (paper and small presets)."""
    epochs: int = 8
    """Number of passes over the training set."""
    batch_size: int = 128
    """Images per optimizer step (the paper: 128)."""
    accum_steps: int = 1
    """Split each batch into this many micro-batches whose gradients add up to the whole batch's: the same
    update with 1/N of the activation memory."""
    optimizer: str = "adamw"
    """sgd (momentum, the paper's) or adamw."""
    lr: float = 0.002
    """Peak learning rate (the paper: 0.01)."""
    momentum: float = 0.9
    """SGD momentum (the paper: 0.9); 0 gives plain SGD."""
    nesterov: bool = False
    """Nesterov momentum."""
    weight_decay: float = 0.05
    """L2 weight decay (the paper: 0.0005)."""
    bias_lr_mult: float = 1.0
    """Learning-rate multiplier of the biases (cuda-convnet's epsB = 2 epsW, Caffe's lr_mult 2: 2)."""
    bias_decay: bool = True
    """Weight decay on the biases too (cuda-convnet and Caffe: no)."""
    momentum_form: str = "torch"
    """SGD momentum as torch has it (v = m v + g + wd w; w -= lr v) or as the paper writes it
    (v = m v - wd lr w - lr g; w += v, section 5); they differ after an lr change."""
    schedule: str = "onecycle"
    """plateau (divide by 10 when validation error stops improving, the paper's), cosine, onecycle, constant."""
    warmup_epochs: float = 0.5
    """Linear warm-up length for cosine and onecycle, in epochs."""
    plateau_patience: int = 2
    """Epochs without a better validation top-1 before the plateau schedule divides the lr by 10."""
    max_lr_drops: int = 3
    """How many times the plateau schedule may divide the lr (the paper: three)."""
    label_smoothing: float = 0.1
    """Label smoothing of the cross-entropy loss (0: the paper's plain loss)."""
    train_eval_images: int = 0
    """Each epoch, also measure the error on this many training images (a fixed class-balanced subset) in eval
    mode with the test's view: no augmentation, no dropout (0: off)."""
    stop_train_error: float = 0.0
    """Stop after the first epoch whose (running) training error is at or below this fraction
    (0: off; figure 1 stops at 0.25)."""
    tta: str = "flip"
    """Test-time views for the final evaluation: center, flip, or tencrop (section 4.1)."""
    seed: int = 0
    """Seed of the weights, the data order and the augmentation."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda, or mps."""
    amp: str = "auto"
    """Mixed precision, bfloat16 autocast (float16 with loss scaling on GPUs without bf16): auto (on for CUDA
    and for CPUs that compute bf16 natively, AVX512-BF16 or AMX: engine/fast.py), on, off."""
    workers: int = -1
    """Data-loading worker processes; -1 picks from the cores available."""
    threads: int = 0
    """CPU threads torch computes with; 0: $ALEXNET_THREADS if set, else the cores idle when the run starts
    (measured over 0.2 s; on a machine shared with another busy process, fewer threads contend less)."""
    progress_every: float = 30.0
    """Seconds between plain progress lines (step, images/s, loss, the epoch's ETA) when the output is not a
    terminal: a log file, a pipe, nohup, a notebook server's log; 0: none. A terminal shows a progress bar."""
    out: str = ""
    """Run folder; empty means runs/<model>-<data>-<date-time>."""
    resume: str = ""
    """Run folder or checkpoint to continue from (its saved config is the base)."""
    init_from: str | None = None
    """Fine-tune: start from these weights (anything --weights takes: a run folder, a checkpoint, a .safetensors,
    a .caffemodel, imagenet1k with --model) with their architecture and input preparation; the last layer is
    replaced when the data's classes differ (default preset: finetune)."""
    freeze: str = "none"
    """Fine-tune: parameters kept fixed, out of the optimizer: none, features (every conv layer), or N (the first
    N layers that have weights)."""
    head_lr_mult: float = 1.0
    """Learning-rate multiplier of the last layer (the new head of a fine-tune; the rest trains at lr)."""
    max_steps: int = 0
    """Stop after this many optimizer steps in all (0: no limit); for smoke tests."""
    strict: bool = False
    """Stop at the first unreadable image instead of skipping and counting it."""
    skip_nonfinite: bool = False
    """Skip a batch whose loss is NaN or infinite (no optimizer step; counted and logged) instead of stopping
    the run."""
    deterministic: bool = False
    """Ask torch for deterministic algorithms (slower on GPU)."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run folder."""
    backend: str = "torch"
    """torch, or numpy: the from-scratch NumPy nets of alexnet.scratch (alexnet_simple, alexnet_mini,
    alexnet2012; SGD, CPU)."""
    channels_last: str = "auto"
    """Channels-last (NHWC) weights and activations, which tensor-core convolutions and oneDNN's bf16 kernels
    want: auto (on where amp's auto is), on, off."""
    compile: str = "auto"
    """torch.compile the training model (fused kernels, LRN included): auto (on for CUDA), on, off; falls back
    to eager if compiling fails."""
    cuda_graphs: str = "auto"
    """Replay the compiled training step as CUDA graphs (torch.compile mode reduce-overhead): auto (on when
    compiling on CUDA in one process), on, off."""
    cache_images: str = "auto"
    """Decode and prepare image files (folder:, imagenet:) once into memory before training: auto (when they
    take under a quarter of the free memory, one process), on, off."""
    device_decode: str = "auto"
    """Decode JPEG files on the training device, a batch per call (nvJPEG on a GPU): auto (on for CUDA), on,
    off (PIL in the loader workers)."""

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def preset(cls, name: str = "fast", **overrides: Any) -> TrainConfig:
        """The preset `name` (fast, paper, d2l, numpy; or a YAML file's path) with `overrides`,
        e.g. `TrainConfig.preset("paper", epochs=2)`; `alexnet train --config NAME` is the same."""
        return make_config(read_yaml(name), **overrides)

    def validate(self) -> None:
        """Raise UsageError naming the first field whose value is out of range."""
        _choice("augment", self.augment, AUGMENT_PRESETS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("tta", self.tta, TTA_MODES)
        _choice("device", self.device, DEVICES)
        _choice("backend", self.backend, BACKENDS)
        _choice("input_norm", self.input_norm, INPUT_NORMS)
        _choice("momentum_form", self.momentum_form, MOMENTUM_FORMS)
        for name in SWITCH_FIELDS:
            _choice(name, getattr(self, name), SWITCHES)
        for name, f in FIELDS.items():
            value = getattr(self, name)
            # bool is an int subclass: `max_steps: true` is a mistake, not 1
            number = int if f.type == "int" else (int, float)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, number)):
                raise UsageError(f"{name} must be {'an integer' if f.type == 'int' else 'a number'}; got {value!r}")
            if f.type == "float" and not math.isfinite(value):  # NaN passes no comparison below, but inf passes ">= 0"
                raise UsageError(f"{name} must be a finite number; got {value!r}")
            if f.type == "int" and name not in ("seed", "batch_size", "workers") and value > MAX_COUNT:
                raise UsageError(f"{name} must be at most {MAX_COUNT:,}; got {value!r}")
        _check("lr", self.lr, self.lr > 0, "must be > 0")
        _check("epochs", self.epochs, self.epochs >= 1, "must be >= 1")
        _check("batch_size", self.batch_size, 1 <= self.batch_size <= MAX_BATCH_SIZE,
               f"must be in [1, {MAX_BATCH_SIZE}]")
        _check("accum_steps", self.accum_steps, 1 <= self.accum_steps <= self.batch_size, "must be in [1, batch_size]")
        _check("momentum", self.momentum, 0 <= self.momentum < 1, "must be in [0, 1)")
        _check("weight_decay", self.weight_decay, self.weight_decay >= 0, "must be >= 0")
        _check("bias_lr_mult", self.bias_lr_mult, self.bias_lr_mult > 0, "must be > 0")
        _check("stop_train_error", self.stop_train_error, 0 <= self.stop_train_error < 1, "must be in [0, 1)")
        _check("threads", self.threads, 0 <= self.threads <= MAX_WORKERS, f"must be in [0, {MAX_WORKERS}]")
        _check("progress_every", self.progress_every, self.progress_every >= 0, "must be >= 0 (0: no lines)")
        _check("train_eval_images", self.train_eval_images, self.train_eval_images >= 0, "must be >= 0 (0: off)")
        _check("lighting", self.lighting, self.lighting >= 0, "must be >= 0")
        _check("label_smoothing", self.label_smoothing, 0 <= self.label_smoothing < 1, "must be in [0, 1)")
        _check("holdout", self.holdout, self.holdout >= 0, "must be >= 0 images (0: validate on the test split)")
        _check("val_fraction", self.val_fraction, 0 < self.val_fraction < 1, "must be in (0, 1)")
        _check("image_size", self.image_size, self.image_size == 0 or 8 <= self.image_size <= MAX_IMAGE_SIZE,
               f"must be 0 (the model's) or in [8, {MAX_IMAGE_SIZE}]")
        _check("warmup_epochs", self.warmup_epochs, 0 <= self.warmup_epochs <= self.epochs, "must be in [0, epochs]")
        _check("plateau_patience", self.plateau_patience, self.plateau_patience >= 0, "must be >= 0")
        _check("max_lr_drops", self.max_lr_drops, self.max_lr_drops >= 0, "must be >= 0")
        _check("workers", self.workers, -1 <= self.workers <= MAX_WORKERS,
               f"must be in [0, {MAX_WORKERS}] (or -1 for auto)")
        _check("train_images", self.train_images, self.train_images >= 0, "must be >= 0 (0: all)")
        _check("val_images", self.val_images, self.val_images >= -1, "must be >= 0 (0: all), or -1 (auto)")
        _check("max_steps", self.max_steps, self.max_steps >= 0, "must be >= 0")
        _check("seed", self.seed, 0 <= self.seed < 2**32, "must be in [0, 2**32)")  # NumPy's seed range
        _check("translate", self.translate, self.translate >= -1, "must be >= 0 pixels (-1: size/8)")
        if self.translate >= 0 and self.image_size and self.translate >= self.image_size:
            raise UsageError(f"translate must be below image_size {self.image_size} (the reflected border is cut "
                             f"from the image); got {self.translate}")
        if self.tta == "tencrop" and self.translate == 0 and self.augment == "small":
            raise UsageError("tta tencrop takes its views where training cropped, and translate 0 takes no "
                             "shifted crops: use tta center or flip, or translate > 0")
        # refused here, not after the training (data/transforms.py)
        if self.tta == "tencrop" and self.augment == "none":
            raise UsageError("tta tencrop takes its views where training cropped, and augment none takes no crops: "
                             "use tta center or flip, or augment small or paper")
        if not isinstance(self.model_args, dict):
            raise UsageError(f"model_args must be a mapping, got {self.model_args!r}")
        for key, value in self.model_args.items():  # builder keywords: names and plain values (models/)
            if not isinstance(key, str) or not isinstance(value, (str, int, float, type(None))):
                raise UsageError(f"model_args must map names to single values; got {key!r}: {value!r}")
        given = self.model_args.get("num_classes")  # the data's count is compared with it before any build
        if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 1):
            raise UsageError(f"model_args num_classes must be an integer >= 1; got {given!r}")
        if not self.data:
            raise UsageError("data must not be empty")
        _check("head_lr_mult", self.head_lr_mult, self.head_lr_mult > 0, "must be > 0")
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from.strip()):
            raise UsageError(f"init_from must name weights (a run folder, a file, imagenet1k); got {self.init_from!r}")
        layers = isinstance(self.freeze, str) and self.freeze.isascii() and self.freeze.isdigit()
        if not (self.freeze in ("none", "features") or (layers and 1 <= int(self.freeze) <= MAX_COUNT)):
            raise UsageError(f"freeze must be none, features, or a number of layers >= 1; got {self.freeze!r}")
        if self.freeze != "none" and not self.init_from:
            raise UsageError(f"freeze {self.freeze} keeps trained layers fixed: it needs init_from (--init-from W)")
        if self.init_from and self.backend == "numpy":  # the NumPy nets train all their layers from their own init
            raise UsageError("init_from fine-tunes with the torch backend: drop --backend numpy")


# A --max-steps run is a smoke run: validating a whole 10,000-image split at 224 px would take most of
# its time (BENCHMARKS.md, 'CPU: this project's machine'); 1,000 take a tenth.
SMOKE_VAL_IMAGES = 1000


def resolved_val_images(cfg: TrainConfig) -> int:
    """cfg.val_images with -1 (auto) decided: all (0), or SMOKE_VAL_IMAGES in a --max-steps run."""
    if cfg.val_images >= 0:
        return cfg.val_images
    return SMOKE_VAL_IMAGES if cfg.max_steps else 0


def resolved_input_norm(cfg: TrainConfig) -> str:
    """cfg.input_norm with auto decided: the paper's mean image for alexnet2012, whose init and LRN
    constants were set for 0-255 inputs (docs/fidelity.md), channel standardisation elsewhere."""
    if cfg.input_norm != "auto":
        return cfg.input_norm
    return "mean_image" if cfg.model == "alexnet2012" else "channel"


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check(name: str, value: object, ok: bool, rule: str) -> None:
    if not ok:
        raise UsageError(f"{name} {rule}; got {value!r}")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


@cache
def field_docs() -> dict[str, str]:
    """Each field's docstring (the string literal after it in the class body) on one line, for --help."""
    try:
        tree = ast.parse(inspect.getsource(TrainConfig))
    except (OSError, TypeError):  # no source (frozen app): help texts are empty
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


def preset_names() -> list[str]:
    files = resources.files("alexnet.configs").iterdir()
    return sorted(p.name[: -len(".yaml")] for p in files if p.name.endswith(".yaml"))


def read_yaml(source: str) -> dict[str, Any]:
    """A preset name or a YAML file's path -> its mapping of field values (safe_load, keys checked)."""
    if source in preset_names():
        text = resources.files("alexnet.configs").joinpath(f"{source}.yaml").read_text()
        where = f"preset '{source}'"
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"config '{source}' is neither a preset ({', '.join(preset_names())}) nor a YAML file")
        text, where = _read_text(path), str(path)
    values = load_yaml(text, where) or {}
    if not isinstance(values, dict):
        raise UsageError(f"{where}: expected a mapping of config fields, got {type(values).__name__}")
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise UsageError(f"{where}: unknown config key '{unknown[0]}'")
    return values


def _read_text(path: Path) -> str:
    """A config file's text: a regular file of at most MAX_CONFIG_BYTES, in UTF-8."""

    try:
        data = read_regular(path, MAX_CONFIG_BYTES)
        return data.decode("utf-8")
    except Refused as e:
        raise UsageError(f"config {path}: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"config {path} is not UTF-8 text "
                         f"(byte 0x{e.object[e.start]:02x} at offset {e.start})") from None


def make_config(base: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """A validated TrainConfig from a mapping of field values and keyword overrides."""
    values = {**(base or {}), **overrides}
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise UsageError(f"unknown config key '{unknown[0]}'")
    for name, value in values.items():
        values[name] = _coerce(name, value)
    return TrainConfig(**values)


def _coerce(name: str, value: Any) -> Any:
    """YAML gives ints where floats are meant (lr: 1) and strings where users quote numbers."""
    kind = FIELDS[name].type
    if kind == "str | None":  # None: unset; anything else is read as a str
        kind = "str" if value is not None else "None"
    try:
        if kind in ("int", "float", "str") and isinstance(value, (list, dict)):
            raise TypeError  # str() of a list is no spec, and an aliased one may be huge
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "int" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "bool" and isinstance(value, str):
            return parse_bool(value)
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError
        if kind == "str" and isinstance(value, bool):  # YAML reads a bare on/off as a bool
            return "on" if value else "off"
        if kind == "str" and not isinstance(value, str):
            return str(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float('inf'))
        raise UsageError(f"{name} expects {kind}, got {brief(value)}") from None
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def kv_pairs(text: str) -> Iterator[tuple[str, str, str | None]]:
    """'a=1, b=x' -> ('a=1', 'a', '1'), ('b=x', 'b', 'x'): each comma-separated part, its key and
    its value (None where the part has no '='), stripped; empty parts skipped. The one splitter of
    the `k=v` lists (--model-args here, dataset options in data/datasets.py)."""
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        yield part, key.strip(), value.strip() if sep else None


def parse_kv(text: str) -> dict[str, Any]:
    """'activation=tanh,lrn=false,dropout=0.3' -> {'activation': 'tanh', 'lrn': False, 'dropout': 0.3}."""
    out: dict[str, Any] = {}
    for part, key, value in kv_pairs(text):
        if value is None or not key:
            raise UsageError(f"expected key=value, got '{part}'")
        if key in out:  # the last would win without a word
            raise UsageError(f"'{key}' is given twice in '{text}'")
        out[key] = load_yaml(value, f"'{part}'") if value else ""
    return out


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: TrainConfig, path: Path) -> None:
    """Write the resolved config as YAML, atomically (a killed run never leaves half a file)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
