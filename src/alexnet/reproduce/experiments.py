"""The paper's measurable claims, each as a pair of training configs that differ in one factor.

Krizhevsky, Sutskever & Hinton (2012) state seven effects this package can test:

- relu-vs-tanh (section 3.1, figure 1): a four-layer conv net reaches 25% training error on
  CIFAR-10 six times faster with ReLUs than with tanh units.
- towers (section 3.2): the two-GPU net lowers top-1/top-5 error by 1.7%/1.2% against a net with
  half as many kernels in each conv layer (but the last) on one GPU.
- lrn (section 3.3): response normalisation lowers top-1/top-5 error by 1.4%/1.2%.
- overlapping-pooling (section 3.4): 3/2 pooling instead of 2/2 lowers them by 0.4%/0.3%.
- pca-lighting (section 4.1): the PCA colour noise lowers top-1 error by over 1%.
- dropout (section 4.2): without dropout the net overfits substantially; dropout roughly doubles
  the iterations to converge.
- ten-crop (section 4.1): the prediction averaged over ten patches (no number is given).

Every ablation starts from one base config, the paper's net at the data's scale (for 32x32 data,
`alexnet_mini` with two towers, LRN, 3/2 pools, dropout 0.5, the paper's crops, flips and PCA
lighting, on the paper's inputs, SGD with momentum 0.9 and weight decay 0.0005, batch 128), and
changes one factor, so the runs "with" are one set of base runs for towers, pooling, PCA
lighting and ten-crop (each report says so). Figure 1 and section 3.3 use cuda-convnet's own
CIFAR-10 nets; dropout uses the base net on fewer images for more epochs, so that it can
overfit. Ten-crop compares two evaluations of the same base runs. Every run validates on images
held out of the training split and is scored on the test split once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alexnet.errors import UsageError

DEFAULT_DATA = "cifar10"


@dataclass(frozen=True)
class Scale:
    """How big every run of an experiment is: a smoke test, a 2-core CPU in about 3 hours, or one GPU."""

    train_images: int
    """Training images (a fixed class-balanced subset of what the holdout leaves; 0: all of it)."""
    val_images: int
    """Held-out validation images read after each epoch (0: the whole holdout)."""
    epochs: int
    """Epochs of the base net's runs."""
    figure1_epochs: int
    """relu-vs-tanh's budget: a run stops at 25% training error or after this many epochs."""
    seeds: int
    """Seeds per arm by default; the arms of a comparison are paired by seed."""
    batch_size: int = 128
    """Images per step (the paper: 128)."""
    holdout: int = 5_000
    """Training images held out as the validation split (CIFAR-10's 'val' is its test split, which is
    scored once, at the end of each run)."""
    figure1_train_images: int = 0
    """Training images of relu-vs-tanh and its lr pilots (0: all that the holdout leaves)."""
    figure1_seeds: int = 0
    """Seeds per arm of relu-vs-tanh (0: `seeds`); --seeds overrides it."""
    lrn_epochs: int = 10
    """Epochs of the lrn experiment's runs (cuda-convnet's CIFAR-10 net of section 3.3)."""
    dropout_train_images: int = 5_000
    """Training images of the dropout experiment: few enough that the net without dropout can overfit."""
    dropout_epochs: int = 20
    """Epochs of the dropout experiment's runs."""
    train_eval_images: int = 2_000
    """Training images scored in eval mode after each epoch (the regularisers' overfitting check)."""


# cpu, chosen to fit this project's 2-core CPU in about three hours
# (measured: BENCHMARKS.md, "Faithful in effect"): 5 seeds per arm for the ablations bring their
# detectable effects nearest the paper's within the budget; 3 for figure 1, whose tanh arm alone
# may take a quarter of it.
SCALES: dict[str, Scale] = {
    "smoke": Scale(train_images=200, val_images=100, epochs=2, figure1_epochs=3, seeds=2, batch_size=50, holdout=100,
                   figure1_train_images=200, lrn_epochs=2, dropout_train_images=200, dropout_epochs=3,
                   train_eval_images=100),
    "cpu": Scale(train_images=10_000, val_images=5_000, epochs=10, figure1_epochs=100, seeds=5, holdout=5_000,
                 figure1_train_images=10_000, figure1_seeds=3, lrn_epochs=8, dropout_train_images=5_000,
                 dropout_epochs=30),
    "gpu": Scale(train_images=0, val_images=0, epochs=40, figure1_epochs=150, seeds=5, holdout=5_000,
                 figure1_train_images=0, figure1_seeds=5, lrn_epochs=60, dropout_train_images=10_000,
                 dropout_epochs=100, train_eval_images=5_000),
}


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: what it changes in the base config, and which evaluation is read."""

    label: str
    changes: dict[str, Any] = field(default_factory=dict)
    """Config fields set on top of the base; `model_args` entries are merged into the base's."""
    view: str = "tencrop"
    """The evaluation compared: 'tencrop' (the paper's test-time scheme) or 'center'."""
    lr_grid: tuple[float, ...] = ()
    """Learning rates this arm's pilots try, in this order (the expected best first, so that later
    pilots can stop as soon as they cannot beat it); empty: the base config's lr."""


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    section: str
    claim: str
    """What the paper says, in our words, with its numbers."""
    kind: str
    """'errors' (test error, with vs without), 'views' (two evaluations of one run) or 'speed' (epochs to a
    training error)."""
    with_arm: Arm
    without_arm: Arm
    paper: dict[str, float | None]
    """The paper's effect per metric in percentage points of error (without - with), or its speed ratio; None: no
    number given."""
    base: str = "paper-net"
    """'paper-net' (the base config) or 'figure1' (the four-layer net of figure 1)."""
    differences: str = ""
    """How the setup here differs from the paper's, beyond the scale (said in the report)."""
    overfitting: bool = False
    """The claim is dropout's two statements: the net without it overfits, and it about doubles the
    iterations to converge; both are measured (runner.measure) instead of the test-error difference."""
    regulariser: bool = False
    """The feature is a regulariser: no verdict unless the arm without it overfit (its eval-mode
    test-minus-training error has an interval above zero); otherwise there was nothing to prevent."""
    paper_error: float | None = None
    """The paper's test error (%) with the feature, where it measured the effect on this very task
    (section 3.3's CIFAR-10 net: 11%); a run far from it is in another regime, said in the verdict."""


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        "relu-vs-tanh", "ReLU trains faster than tanh", "3.1, figure 1",
        "A four-layer convolutional network with ReLUs reaches a 25% training error rate on CIFAR-10 "
        "six times faster (in epochs) than an equivalent network with tanh neurons; the learning rates "
        "of each network were chosen independently to make training as fast as possible, and no "
        "regularization of any kind was employed.",
        "speed", Arm("ReLU", {"model_args": {"activation": "relu"}}, view="center", lr_grid=(0.003, 0.001, 0.01)),
        Arm("tanh", {"model_args": {"activation": "tanh"}}, view="center", lr_grid=(0.01, 0.003, 0.03)),
        paper={"speedup": 6.0}, base="figure1",
        differences="The paper does not give figure 1's net in full; convnet4 is cuda-convnet's CIFAR-10 layout "
        "(layers-18pct.cfg / layers-80sec.cfg: three 5x5 conv layers of 32, 32, 64 kernels, a max pool then two "
        "average pools, one fc layer) without 18pct's spatial response normalisation and 80sec's hidden fc64, "
        "initialised as those files say (conv1 N(0, 1e-4), the rest N(0, 0.01), biases 0) for both arms. "
        "Inputs are raw 0-255 pixels minus the training set's mean image, as cuda-convnet's data provider gives them; "
        "the update is the paper's, biases at twice the lr (epsB = 2 epsW), no weight decay. The training error is "
        "the running error over each epoch's batches, the figure cuda-convnet prints while training and figure 1 "
        "plots (with no dropout and no augmentation it differs from a separate pass only by the net's progress "
        "within the epoch)."),
    Experiment(
        "towers", "Two towers beat one tower of half the width", "3.2",
        "The two-GPU net (two towers that communicate only in certain layers) lowers top-1 and top-5 "
        "error by 1.7% and 1.2% against a net with half as many kernels in each convolutional layer "
        "(but the last) trained on one GPU.",
        "errors", Arm("two towers", {"model_args": {"towers": 2, "conv_width": 1.0}}),
        Arm("one tower, half the kernels", {"model_args": {"towers": 1, "conv_width": 0.5}}),
        paper={"top1": 1.7, "top5": 1.2}),
    Experiment(
        "lrn", "Local response normalisation helps", "3.3",
        "On CIFAR-10, a four-layer CNN achieved a 13% test error rate without normalization and 11% "
        "with normalization (on ImageNet, response normalisation lowers top-1 and top-5 error by 1.4% and 1.2%).",
        "errors", Arm("with LRN", {"model_args": {"lrn": True}}, view="center"),
        Arm("without LRN", {"model_args": {"lrn": False}}, view="center"),
        paper={"top1": 2.0}, base="lrn-cifar", paper_error=11.0,
        differences="The net is cuda-convnet's layers-conv-local-11pct.cfg (the paper's CIFAR-10 net of section 3.3) "
        "with its two cross-map normalisations (size 9, scale 0.001, pow 0.75, k 1) and without them, nothing else "
        "changed (the 13% file also narrows local3 from 64 to 32 kernels). The reference trained about 500 epochs "
        "on 24x24 crops and tested on ten views; here the runs are short, the translations are pad-and-crop at "
        "32x32, the test uses the centre view, and one weight decay of 0.004 stands for the file's per-layer "
        "0 (conv), 0.004 (local) and 0.01 (fc). On ImageNet data the base net is alexnet2012 instead."),
    Experiment(
        "overlapping-pooling", "Overlapping pooling helps", "3.4",
        "Pooling with s=2, z=3 (overlapping) instead of s=2, z=2 lowers top-1 and top-5 error by 0.4% "
        "and 0.3%, and makes the net slightly harder to overfit.",
        "errors", Arm("3/2 pooling", {"model_args": {"pool": "overlapping"}}),
        Arm("2/2 pooling", {"model_args": {"pool": "non_overlapping"}}),
        paper={"top1": 0.4, "top5": 0.3}),
    Experiment(
        "pca-lighting", "PCA colour augmentation helps", "4.1",
        "Adding multiples of the principal components of the RGB pixel values to each training image "
        "(colour and intensity of the illumination) lowers top-1 error by over 1%.",
        "errors", Arm("PCA lighting 0.1", {"lighting": 0.1}), Arm("no PCA lighting", {"lighting": 0.0}),
        paper={"top1": 1.0}, regulariser=True),
    Experiment(
        "dropout", "Dropout prevents overfitting", "4.2",
        "Without dropout the network exhibits substantial overfitting; dropout roughly doubles the "
        "number of iterations required to converge.",
        "errors", Arm("dropout 0.5", {"model_args": {"dropout": 0.5}}, view="center"),
        Arm("no dropout", {"model_args": {"dropout": 0.0}}, view="center"),
        paper={"overfitting": None, "iterations": 2.0}, overfitting=True, regulariser=True, base="dropout",
        differences="Overfitting is measured as test error minus training error, both in eval mode (no dropout) "
        "on un-augmented images with the same centre view: the training error is a separate pass over training "
        "images after each epoch, not the running error of the augmented batches. The runs use fewer training "
        "images and more epochs than the other ablations, so that the net without dropout can overfit, and both "
        "arms train for the same epochs with the same learning-rate schedule. The iterations to converge are the "
        "epochs each run takes to bring its eval-mode training error down to a common level, the highest that every "
        "run of both arms has reached by three quarters of its epochs (so that neither arm is read at the end of "
        "its schedule, where the decaying learning rate forces convergence)."),
    Experiment(
        "ten-crop", "Averaging ten views at test time helps", "4.1",
        "At test time the network averages its softmax over ten 224x224 patches: the four corners and "
        "the centre of the image, and their horizontal reflections. The paper gives no number for it.",
        "views", Arm("ten views", view="tencrop"), Arm("centre view", view="center"),
        paper={"top1": None}),
)}


def names() -> list[str]:
    return list(EXPERIMENTS)


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}; choose from: {', '.join(EXPERIMENTS)}, all")
    return EXPERIMENTS[name]


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise UsageError(f"unknown scale {name!r}; choose from: {', '.join(SCALES)}")
    return SCALES[name]


def seeds_for(exp: Experiment, scale: Scale) -> int:
    """The scale's seeds per arm for `exp` (figure 1's own count where the scale sets one)."""
    return scale.figure1_seeds if exp.base == "figure1" and scale.figure1_seeds else scale.seeds


def is_large(data: str) -> bool:
    """Data of full-size photographs (ImageNet, a folder tree), where the base net is alexnet2012."""
    return data.split(":", 1)[0].strip().lower() in ("imagenet", "folder", "imagefolder")


# The update as the reference code applies it (cuda-convnet's layer-params files, Caffe's
# bvlc_alexnet): the paper's momentum form, biases at twice the lr and without weight decay.
REFERENCE_UPDATE = {"optimizer": "sgd", "momentum": 0.9, "nesterov": False, "momentum_form": "paper",
                    "bias_lr_mult": 2.0, "bias_decay": False, "label_smoothing": 0.0}


def base_config(exp: Experiment, scale: Scale, data: str) -> dict[str, Any]:
    """The config fields every run of `exp` shares, at `scale`, on `data` (before the arm's changes)."""
    common = {
        "data": data, "train_images": scale.train_images, "val_images": scale.val_images, "holdout": scale.holdout,
        "batch_size": scale.batch_size, "tensorboard": False, "val_fraction": 0.1, "translate": -1, **REFERENCE_UPDATE,
    }
    large = is_large(data)
    if exp.base == "figure1":
        # "No regularization of any kind": no weight decay, no dropout, no augmentation; cuda-convnet's
        # inputs (raw pixels minus the mean image). The lr here is a placeholder: each arm picks its own
        # from Experiment.lr_grid, as the paper did. A run stops once it reaches figure 1's 25%.
        return {**common, "model": "convnet4", "model_args": {"activation": "relu"}, "image_size": 32,
                "train_images": scale.figure1_train_images, "augment": "none", "input_norm": "mean_image",
                "flip": False, "lighting": 0.0, "epochs": scale.figure1_epochs, "lr": 0.001, "weight_decay": 0.0,
                "schedule": "constant", "warmup_epochs": 0.0, "tta": "center", "stop_train_error": 0.25}
    if exp.base == "lrn-cifar" and not large:
        # cuda-convnet's layers-conv-local-11pct: epsW 0.001 with momentum 0.9 on raw mean-subtracted
        # pixels, translations and flips; the lr decays linearly to zero over the run (the reference's
        # two late /10 drops, compressed into a short run)
        return {**common, "model": "convnet_local", "model_args": {"lrn": True, "local3": 64}, "image_size": 32,
                "augment": "small", "input_norm": "mean_image", "flip": True, "lighting": 0.0,
                "epochs": scale.lrn_epochs, "lr": 0.001, "weight_decay": 0.004, "schedule": "onecycle",
                "warmup_epochs": 0.0, "tta": "center"}
    switches = {
        "towers": 2, "conv_width": 1.0, "activation": "relu", "lrn": True, "pool": "overlapping", "dropout": 0.5
    }
    if large:
        # the paper's own init left the loss flat (benchmarks/paper_init.py; the paper preset's too)
        switches["init"] = "caffe"
    else:
        # the paper's inputs (section 2: raw 0-255 pixels minus the mean image) and its conv1 init,
        # N(0, 0.01), which put LRN1's input where the paper's constants act; the layers above keep
        # Kaiming's init, with which alexnet_mini trains (models/small.py). With standardised inputs
        # LRN was a constant scale in these nets (reproduce/lrn_effect.py measures it in every report).
        switches["conv1_std"] = 0.01
    # The paper's recipe (section 5) with a schedule that fits a short run: SGD, momentum 0.9, weight
    # decay 0.0005, batch 128; the lr warms up for half an epoch and decays linearly to zero instead
    # of being divided by 10 three times over 90 epochs. alexnet2012 uses the paper's 0.01;
    # alexnet_mini on these inputs 0.005, the best of a two-epoch pilot over 0.002, 0.005 and 0.02
    # (measured: BENCHMARKS.md, "the reproduce runs on the paper's inputs").
    config = {**common, "model": "alexnet2012" if large else "alexnet_mini", "model_args": switches, "image_size": 0,
              "augment": "paper", "input_norm": "mean_image", "flip": True, "lighting": 0.1,
              "epochs": scale.epochs, "lr": 0.01 if large else 0.005, "weight_decay": 5e-4,
              "schedule": "onecycle", "warmup_epochs": 0.5, "tta": "tencrop",
              "train_eval_images": scale.train_eval_images}
    if exp.base == "dropout":
        config.update(train_images=scale.dropout_train_images, epochs=scale.dropout_epochs, tta="center")
    return config


def arm_config(exp: Experiment, arm: Arm, scale: Scale, data: str) -> dict[str, Any]:
    """The whole training config of one arm: the base with the arm's changes."""
    config = base_config(exp, scale, data)
    for key, value in arm.changes.items():
        config[key] = {**config[key], **value} if key == "model_args" else value
    return config
