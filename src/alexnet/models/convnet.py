"""The one module class every net here is: features -> (avgpool) -> flatten -> classifier.

AlexNet (Krizhevsky et al. 2012, section 3.5 / figure 2) and VGG (Simonyan & Zisserman 2014,
section 2) both end their conv stack in a flatten and a stack of fully-connected layers; only
the layers inside the two Sequentials differ, so the builders make those and hand them here.
The attribute names (features, avgpool, classifier) match torchvision's AlexNet and VGG, which
is what lets their state_dicts load into ours.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """A conv feature extractor followed by an MLP classifier whose last module is a Linear.

    input_size is the (C, H, W) the net is built for; forward_features returns the penultimate
    activations (fc7 after its ReLU in AlexNet), the input of the last Linear.
    """

    def __init__(
        self,
        features: nn.Sequential,
        classifier: nn.Sequential,
        input_size: tuple[int, int, int],
        avgpool: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(classifier[-1], nn.Linear):
            raise TypeError("the classifier's last module must be an nn.Linear")
        self.features = features
        # registered only when used, so nets without one show no empty layer in summaries
        self.avgpool = avgpool
        self.classifier = classifier
        self.input_size = tuple(input_size)
        self.num_classes = classifier[-1].out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # N,C,H,W
        if self.avgpool is not None:
            x = self.avgpool(x)  # N,C,h,w
        x = torch.flatten(x, 1)  # N,C*h*w
        return self.classifier[:-1](x)  # N,D

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))  # N,num_classes
