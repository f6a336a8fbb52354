"""AlexNet as Dive into Deep Learning builds it (Zhang et al., d2l.ai,
"Deep Convolutional Neural Networks (AlexNet)").

The paper's 96-256-384-384-256 single-tower net without LRN, for Fashion-MNIST upsampled to
1x224x224: conv1 has padding 1, so the maps go 54 -> 26 -> 12 -> 5 and fc6 sees 256*5*5 = 6400
inputs. Dropout follows the ReLUs of the hidden fc layers. Init as the book: Xavier-uniform
weights for every conv and linear layer (Glorot & Bengio 2010), biases left at PyTorch's default.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from alexnet.models.convnet import ConvNet
from alexnet.models.layers import check_dropout, check_positive_int, make_head


def alexnet_d2l(*, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> ConvNet:
    """d2l's AlexNet for 224x224 Fashion-MNIST (10 classes, one channel by default)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_dropout(dropout)

    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 96, 11, stride=4, padding=1)),  # N,96,54,54
        ("relu1", nn.ReLU(inplace=True)),
        ("pool1", nn.MaxPool2d(3, stride=2)),  # N,96,26,26
        ("conv2", nn.Conv2d(96, 256, 5, padding=2)),  # N,256,26,26
        ("relu2", nn.ReLU(inplace=True)),
        ("pool2", nn.MaxPool2d(3, stride=2)),  # N,256,12,12
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)),  # N,384,12,12
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1)),  # N,384,12,12
        ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1)),  # N,256,12,12
        ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, stride=2)),  # N,256,5,5
    ]))
    classifier = make_head(256 * 5 * 5, 4096, num_classes, "relu", dropout)  # fc6, fc7, fc8
    model = ConvNet(features, classifier, input_size=(in_channels, 224, 224))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
    return model
