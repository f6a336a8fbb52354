"""Small AlexNets for 32x32 images (CIFAR-10; Fashion-MNIST padded to 32), cheap enough for a CPU.

alexnet_mini keeps the paper's shape (Krizhevsky et al. 2012, section 3.5): five conv layers
with LRN after the first two and max-pooling after conv1, conv2 and conv5, then three fc
layers with dropout. The conv widths are the paper's divided by 4 (24-64-96-96-64), the fc
layers 4096/8 = 512 wide, conv1 is 5x5 with stride 1 since the images are 7x smaller. About
1M parameters and 24M multiply-adds per image, so a 2-core CPU trains it (measured:
BENCHMARKS.md, "CPU: this project's machine"). It has the same ablation switches as alexnet2012
(activation, lrn, pool, dropout); the 3/2 pool is padded by one so both pool kinds give
32 -> 16 -> 8 -> 4 and an ablation changes one factor only.

alexnet_simple is the teaching notebook's three-conv net (32-64-128, 3x3, each followed by a
pool) with one hidden fc layer and the same switches; LRN is off by default.

alexnet_mini can be split into the paper's two towers (section 3.2, figure 2): conv2, conv4
and conv5 grouped in two, each LRN within its tower, conv3 and the fc layers crossing, as in
alexnet2012. conv_width scales conv1-conv4 for the paper's comparison net, "a net with half as
many kernels in each convolutional layer trained on one GPU" whose last conv layer keeps its
width (the paper's footnote: most parameters are in fc6, which it feeds).

Both use the Kaiming init (He et al. 2015) with the gain of the chosen activation and a small
last layer (see layers.init_kaiming). With these fan-ins (75 to 1024) the paper's std of 0.01
and PyTorch's default init both shrink the signal at every layer, so alexnet_mini did not learn
with either. Being 8 layers deep without batch norm, it wants a peak lr of about 0.02 or less
with momentum 0.9: above that its conv5 ReLUs die
(measured: BENCHMARKS.md, "CPU: this project's machine").
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from alexnet.errors import UsageError
from alexnet.models.convnet import ConvNet
from alexnet.models.layers import (
    ACTIVATIONS,
    POOLS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    conv_widths,
    init_kaiming,
    make_activation,
    make_head,
    make_lrn,
    make_pool,
)


def _check_switches(num_classes, in_channels, activation, lrn, pool, dropout) -> None:
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_choice("activation", activation, ACTIVATIONS)
    check_bool("lrn", lrn)
    check_choice("pool", pool, POOLS)
    check_dropout(dropout)


def _conv_block(
    i: int, conv: nn.Conv2d, activation: str, norm: bool, pool: str | None, towers: int = 1
) -> list[tuple[str, nn.Module]]:
    layers = [(f"conv{i}", conv), (f"{activation}{i}", make_activation(activation))]
    if norm:
        layers.append((f"lrn{i}", make_lrn(towers)))  # within each tower, as on each GPU
    if pool is not None:
        layers.append((f"pool{i}", make_pool(pool, overlap_padding=1)))  # halves H and W
    return layers


def alexnet_mini(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    activation: str = "relu",
    lrn: bool = True,
    pool: str = "overlapping",
    dropout: float = 0.5,
    towers: int = 1,
    conv_width: float = 1.0,
    conv1_std: float = 0.0,
) -> ConvNet:
    """Five conv + three fc layers in the paper's arrangement, sized for 32x32 inputs.

    towers=2 groups conv2, conv4 and conv5 (section 3.2); conv_width multiplies the kernel
    counts of conv1-conv4 (conv5 keeps 64, as the paper's one-GPU comparison net did).
    conv1_std > 0 draws conv1's weights from N(0, conv1_std) instead of Kaiming's: 0.01 is the
    paper's (section 5), which on raw 0-255 inputs minus the mean image puts LRN1's input at
    the scale where the paper's LRN constants act (docs/fidelity.md, "LRN in effect"), while the
    layers above keep the Kaiming init that lets this deeper-than-wide net train.
    """
    _check_switches(num_classes, in_channels, activation, lrn, pool, dropout)
    check_choice("towers", towers, (1, 2))
    if isinstance(conv1_std, bool) or not isinstance(conv1_std, (int, float)) or not 0 <= conv1_std < 1:
        raise UsageError(f"conv1_std must be a number in [0, 1) (0: Kaiming's init); got {conv1_std!r}")
    w1, w2, w3, w4 = conv_widths((24, 64, 96, 96), conv_width, towers)
    a, t = activation, towers
    features = nn.Sequential(OrderedDict(
        _conv_block(1, nn.Conv2d(in_channels, w1, 5, padding=2), a, lrn, pool, t)  # N,24,16,16
        + _conv_block(2, nn.Conv2d(w1, w2, 5, padding=2, groups=t), a, lrn, pool, t)  # N,64,8,8
        + _conv_block(3, nn.Conv2d(w2, w3, 3, padding=1), a, False, None)  # N,96,8,8
        + _conv_block(4, nn.Conv2d(w3, w4, 3, padding=1, groups=t), a, False, None)  # N,96,8,8
        + _conv_block(5, nn.Conv2d(w4, 64, 3, padding=1, groups=t), a, False, pool)  # N,64,4,4
    ))
    classifier = make_head(64 * 4 * 4, 512, num_classes, a, dropout)  # fc6, fc7, fc8
    model = ConvNet(features, classifier, input_size=(in_channels, 32, 32))
    init_kaiming(model, activation)
    if conv1_std:
        nn.init.normal_(features.conv1.weight, mean=0.0, std=float(conv1_std))
    return model


def alexnet_simple(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    activation: str = "relu",
    lrn: bool = False,
    pool: str = "non_overlapping",
    dropout: float = 0.5,
) -> ConvNet:
    """Three conv layers (32-64-128) and one hidden fc layer: the notebook's net, 32x32 inputs."""
    _check_switches(num_classes, in_channels, activation, lrn, pool, dropout)
    a = activation
    features = nn.Sequential(OrderedDict(
        _conv_block(1, nn.Conv2d(in_channels, 32, 3, padding=1), a, lrn, pool)  # N,32,16,16
        + _conv_block(2, nn.Conv2d(32, 64, 3, padding=1), a, lrn, pool)  # N,64,8,8
        + _conv_block(3, nn.Conv2d(64, 128, 3, padding=1), a, False, pool)  # N,128,4,4
    ))
    classifier = nn.Sequential(OrderedDict([
        ("fc4", nn.Linear(128 * 4 * 4, 512)),  # N,512
        (f"{a}4", make_activation(a)),
        ("drop4", nn.Dropout(dropout)),
        ("fc5", nn.Linear(512, num_classes)),  # N,num_classes
    ]))
    model = ConvNet(features, classifier, input_size=(in_channels, 32, 32))
    init_kaiming(model, activation)
    return model
