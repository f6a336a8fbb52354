"""AlexNet in the "one weird trick" layout torchvision ships (Krizhevsky 2014, arXiv:1404.5997).

The single-tower variant of the 2014 paper (64-192-384-256-256 kernels, no LRN, padding 2 in
conv1 so a 224x224 input works), as laid out by torchvision.models.alexnet: an adaptive 6x6
average pool before the classifier, dropout *before* fc6 and fc7. Parameter names and shapes
are identical to torchvision's (features.0, features.3, ..., classifier.1, .4, .6), so its
state_dicts, pretrained ImageNet weights included, load with strict=True and give the same
outputs. 61,100,840 parameters at 1000 classes. PyTorch's default init, as torchvision's.
"""

from __future__ import annotations

from torch import nn

from alexnet.models.convnet import ConvNet
from alexnet.models.layers import check_dropout, check_positive_int


def alexnet_owt(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> ConvNet:
    """torchvision-compatible AlexNet; the positions in the Sequentials are the checkpoint keys."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_dropout(dropout)

    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),  # 0: N,64,55,55
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),  # N,64,27,27
        nn.Conv2d(64, 192, 5, padding=2),  # 3: N,192,27,27
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),  # N,192,13,13
        nn.Conv2d(192, 384, 3, padding=1),  # 6: N,384,13,13
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),  # 8: N,256,13,13
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),  # 10: N,256,13,13
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),  # N,256,6,6
    )
    # makes any input from 224 up (e.g. the paper's 227) end in 6x6 maps
    avgpool = nn.AdaptiveAvgPool2d((6, 6))
    classifier = nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096),  # 1: N,4096
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),  # 4: N,4096
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),  # 6: N,num_classes
    )
    return ConvNet(features, classifier, input_size=(in_channels, 224, 224), avgpool=avgpool)
