"""VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks", table 1), without batch norm.

Configurations A, B, D, E are vgg11, vgg13, vgg16, vgg19: stacks of 3x3 convs (padding 1) with
ReLU, a 2x2 max-pool after each stack, and AlexNet's fc6/fc7 design for the classifier. The
module layout (features as one flat Sequential, avgpool = AdaptiveAvgPool2d(7), classifier =
Linear-ReLU-Dropout x2 + Linear) matches torchvision's VGG, so its state_dicts load strictly.

vgg_small is configuration A with every width divided by 4 for 32x32 inputs: five pools take 32
to 1, so the classifier is 128 -> 512 -> 512 -> classes.

Init: Kaiming (He et al. 2015) for the convs and hidden fc layers, zero biases, N(0, 0.01) for
the last layer. Kaiming is what lets the deep configurations train from scratch without the
paper's stage-wise initialization from net A (its section 3.1); for fc6 it is ~N(0, 0.01), the
paper's value.
"""

from __future__ import annotations

from torch import nn

from alexnet.models.convnet import ConvNet
from alexnet.models.layers import check_dropout, check_positive_int, init_kaiming

POOL = "M"
# table 1 of the paper: conv widths, with a max-pool at each "M"
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "B": [64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "D": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL],
    "E": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
          512, 512, 512, 512, POOL],
}


def _features(config: list[int | str], in_channels: int, divisor: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == POOL:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # halves H and W
        else:
            width = item // divisor
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


def _classifier(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),  # N,hidden
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),  # N,hidden
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),  # N,num_classes
    )


def _vgg(config: str, num_classes: int, in_channels: int, dropout: float) -> ConvNet:
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_dropout(dropout)
    features = _features(CONFIGS[config], in_channels)  # N,512,7,7 at 224x224
    avgpool = nn.AdaptiveAvgPool2d((7, 7))  # other input sizes end in 7x7 too
    classifier = _classifier(512 * 7 * 7, 4096, num_classes, dropout)
    model = ConvNet(features, classifier, input_size=(in_channels, 224, 224), avgpool=avgpool)
    init_kaiming(model, "relu")
    return model


def vgg11(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """VGG configuration A: 8 conv + 3 fc layers."""
    return _vgg("A", num_classes, in_channels, dropout)


def vgg13(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """VGG configuration B: 10 conv + 3 fc layers."""
    return _vgg("B", num_classes, in_channels, dropout)


def vgg16(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """VGG configuration D: 13 conv + 3 fc layers."""
    return _vgg("D", num_classes, in_channels, dropout)


def vgg19(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """VGG configuration E: 16 conv + 3 fc layers."""
    return _vgg("E", num_classes, in_channels, dropout)


def vgg_small(*, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """Configuration A at a quarter of the width, for 32x32 inputs (CIFAR-10)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_dropout(dropout)
    features = _features(CONFIGS["A"], in_channels, divisor=4)  # N,128,1,1 at 32x32
    avgpool = nn.AdaptiveAvgPool2d((1, 1))
    classifier = _classifier(128, 512, num_classes, dropout)
    model = ConvNet(features, classifier, input_size=(in_channels, 32, 32), avgpool=avgpool)
    init_kaiming(model, "relu")
    return model
