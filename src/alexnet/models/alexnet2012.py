"""AlexNet as the paper describes it: Krizhevsky, Sutskever & Hinton (2012), section 3 and figure 2.

Five conv layers and three fully-connected ones, 60,965,224 parameters at 1000 classes.

- Input 3x227x227. The paper says 224, but conv1 (11x11, stride 4, no padding) only gives the
  55x55 maps of figure 2 from 227; every faithful reimplementation uses 227.
- The two GPU "towers" of figure 2 are grouped convolutions (groups=2): conv2, conv4 and conv5
  see only the maps of their own GPU; conv3 and the fc layers cross. conv1 sees the whole image
  on both GPUs, so it is an ordinary conv of 96 kernels. towers=1 gives the single-column net.
- LRN (section 3.3) follows the ReLUs of conv1 and conv2, max-pooling (section 3.4) follows
  both LRNs and conv5. With two towers each LRN normalises within its tower's half of the maps,
  as each GPU did; towers=1 normalises across all 96/256. Two switches give Caffe's
  bvlc_alexnet, whose weights `alexnet.inference.caffe` loads: lrn_k=1 (its prototxt sets no k,
  and caffe.proto's LRNParameter defaults it to 1) and lrn_per_tower=False (its norm1 and norm2
  see conv1's and conv2's whole output blob, so the window crosses the tower boundary).
- Dropout (section 4.2) zeroes the outputs of the hidden neurons, so it sits after the ReLUs of
  fc6 and fc7.
- Init (section 5): weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere.

Layers carry the paper's names (conv1, lrn1, pool1, ..., fc8) so a summary reads like figure 2.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from alexnet.models.convnet import ConvNet
from alexnet.models.layers import (
    ACTIVATIONS,
    POOLS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    check_positive_number,
    conv_widths,
    init_paper,
    make_activation,
    make_head,
    make_lrn,
    make_pool,
)

BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}
INITS = ("paper", "caffe")


def alexnet2012(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    towers: int = 2,
    activation: str = "relu",
    lrn: bool = True,
    pool: str = "overlapping",
    dropout: float = 0.5,
    conv_width: float = 1.0,
    lrn_k: float = 2.0,
    lrn_per_tower: bool = True,
    init: str = "paper",
) -> ConvNet:
    """The 2012 paper's net; the keywords are the paper's ablations (sections 3.1-3.5, 4.2).

    conv_width multiplies the kernel counts of conv1-conv4: 0.5 with towers=1 is section 3.2's
    comparison net, "half as many kernels in each convolutional layer" on one GPU, whose last
    conv layer keeps its 256 kernels (the paper's footnote). lrn_k is LRN's additive constant
    (section 3.3's k = 2); lrn_per_tower=False normalises across all maps with two towers too.
    init "paper" is section 5's (N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7); "caffe"
    is BVLC/caffe models/bvlc_alexnet/train_val.prototxt's (those biases 0.1, fc6 and fc7 from
    N(0, 0.005)), whose readme says biases of 1 gave a flat loss (docs/fidelity.md, "init").
    """
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_choice("towers", towers, (1, 2))
    check_choice("activation", activation, ACTIVATIONS)
    check_bool("lrn", lrn)
    check_choice("pool", pool, POOLS)
    check_dropout(dropout)
    check_positive_number("lrn_k", lrn_k)  # k = 0 would divide by zero where a window is all zeros
    check_bool("lrn_per_tower", lrn_per_tower)
    check_choice("init", init, INITS)
    w1, w2, w3, w4 = conv_widths((96, 256, 384, 384), conv_width, towers)

    act = activation  # layer names follow the activation, so a tanh net shows tanh1, not relu1

    def block(i: int, conv: nn.Conv2d, norm: bool, pooled: bool) -> list[tuple[str, nn.Module]]:
        layers = [(f"conv{i}", conv), (f"{act}{i}", make_activation(activation))]
        if norm and lrn:
            # within each tower, as on each GPU (lrn_per_tower); else across all maps, as Caffe's blob
            layers.append((f"lrn{i}", make_lrn(towers if lrn_per_tower else 1, k=lrn_k)))
        if pooled:
            # 3/2 and 2/2 pools give the same sizes here: 55 -> 27 -> 13 -> 6
            layers.append((f"pool{i}", make_pool(pool)))
        return layers

    features = nn.Sequential(OrderedDict(
        block(1, nn.Conv2d(in_channels, w1, 11, stride=4), norm=True, pooled=True)  # N,96,27,27
        + block(2, nn.Conv2d(w1, w2, 5, padding=2, groups=towers), norm=True, pooled=True)  # N,256,13,13
        + block(3, nn.Conv2d(w2, w3, 3, padding=1), norm=False, pooled=False)  # N,384,13,13
        + block(4, nn.Conv2d(w3, w4, 3, padding=1, groups=towers), norm=False, pooled=False)
        + block(5, nn.Conv2d(w4, 256, 3, padding=1, groups=towers), norm=False, pooled=True)  # N,256,6,6
    ))
    classifier = make_head(256 * 6 * 6, 4096, num_classes, activation, dropout)  # fc6, fc7, fc8
    model = ConvNet(features, classifier, input_size=(in_channels, 227, 227))
    if init == "paper":
        init_paper(model, ones=BIAS_ONE)
    else:
        init_paper(model, ones=BIAS_ONE, bias=0.1, std={"fc6": 0.005, "fc7": 0.005})
    return model
