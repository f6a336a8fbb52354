"""Krizhevsky's own CIFAR-10 nets from cuda-convnet, the code behind the paper's CIFAR-10 claims.

The layer files are cuda-convnet's example-layers/ (read in the dnouri/cuda-convnet mirror of
Krizhevsky's code); their numbers are copied here, with PyTorch layers that compute the same:

- convnet4, figure 1 (section 3.1, ReLU against tanh): "a four-layer convolutional neural
  network", three 5x5 conv layers and one fc layer. The layout is layers-18pct.cfg's and
  layers-80sec.cfg's: conv1 32 -> max-pool 3/2 -> conv2 32 -> avg-pool 3/2 -> conv3 64 ->
  avg-pool 3/2 -> fc10, all convs padded by 2. 18pct adds two spatial (within-map) response
  normalisations and 80sec a hidden fc64; figure 1's net has neither here, being four layers with
  "no regularization of any kind". The nonlinearity follows every conv (cuda-convnet applies
  pool1's after the max, which is the same for any increasing function).
- convnet_local, section 3.3's "four-layer CNN" (13% test error without normalisation, 11% with):
  layers-conv-local-11pct.cfg: conv1 64 -> max-pool 3/2 -> cross-map norm (size 9) -> conv2 64 ->
  cross-map norm (size 9) -> max-pool 3/2 -> local3 64 -> local4 32 -> fc10, where local layers
  are convolutions with unshared weights (models/local.py), 3x3 and padded by 1, with ReLUs.
  lrn=False removes the two norms and changes nothing else; layers-conv-local-13pct.cfg, the
  13% net, also has 32 kernels in local3 (local3=32 builds it).

cuda-convnet's response normalisation (cuda-convnet layer.py, NormLayerParser: scale /= size;
src/cudaconv2/conv_util.cu, kFCNorm: 1 + addScale * sum) is b = a (1 + scale/size * sum a^2)^-pow,
which is torch's LocalResponseNorm with k=1, alpha=scale: size 9, scale 0.001, pow 0.75 here.
Pools: cuda-convnet's output size rounds up (outputsX = ceil((32 - 3) / 2) + 1 = 16), so the
pools are ceil_mode ones: 32 -> 16 -> 8 -> 4; an average pool's last window holds only the pixels
inside the map. Init: Gaussians of the files' initW (conv1 0.0001, conv2-3 0.01, local 0.04,
fc 0.01), biases 0, for every activation alike: the reference's init, identical for both arms of
figure 1. These nets expect cuda-convnet's inputs, raw 0-255 pixels minus the mean image
(input_norm mean_image); the tiny conv1 init is scaled for them.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from alexnet.models.convnet import ConvNet
from alexnet.models.layers import ACTIVATIONS, check_bool, check_choice, check_positive_int, make_activation
from alexnet.models.local import LocallyConnected2d
from alexnet.models.lrn import LocalResponseNorm

# (layer, initW) of the layer files; every bias starts at 0 (no initB: cuda-convnet's default)
CONVNET4_INIT = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.01, "fc4": 0.01}
CONVNET_LOCAL_INIT = {"conv1": 1e-4, "conv2": 0.01, "local3": 0.04, "local4": 0.04, "fc5": 0.01}


def _pool(kind: str) -> nn.Module:
    """cuda-convnet's 3/2 pool (sizeX=3, stride=2, outputsX=0): output size rounded up."""
    return nn.MaxPool2d(3, 2, ceil_mode=True) if kind == "max" else nn.AvgPool2d(3, 2, ceil_mode=True)


def _cmrnorm() -> LocalResponseNorm:
    """cmrnorm of layer-params-conv-local-11pct.cfg: size 9, scale 0.001, pow 0.75, cuda-convnet's k = 1."""
    return LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0)


def init_gaussian(model: nn.Module, stds: dict[str, float]) -> None:
    """Weights of each named layer from N(0, std), biases 0 (cuda-convnet: initW, initB)."""
    for name, module in model.named_modules():
        short = name.rsplit(".", 1)[-1]
        if short in stds:
            nn.init.normal_(module.weight, mean=0.0, std=stds[short])
            nn.init.zeros_(module.bias)


def convnet4(*, num_classes: int = 10, in_channels: int = 3, activation: str = "relu") -> ConvNet:
    """Figure 1's four-layer net: cuda-convnet's layers-18pct/80sec layout without their extras."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_choice("activation", activation, ACTIVATIONS)
    a = activation
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 32, 5, padding=2)), (f"{a}1", make_activation(a)),
        ("pool1", _pool("max")),  # N,32,16,16
        ("conv2", nn.Conv2d(32, 32, 5, padding=2)), (f"{a}2", make_activation(a)), ("pool2", _pool("avg")),  # N,32,8,8
        ("conv3", nn.Conv2d(32, 64, 5, padding=2)), (f"{a}3", make_activation(a)), ("pool3", _pool("avg")),  # N,64,4,4
    ]))
    classifier = nn.Sequential(OrderedDict([("fc4", nn.Linear(64 * 4 * 4, num_classes))]))  # N,num_classes
    model = ConvNet(features, classifier, input_size=(in_channels, 32, 32))
    init_gaussian(model, CONVNET4_INIT)
    return model


def convnet_local(*, num_classes: int = 10, in_channels: int = 3, lrn: bool = True, local3: int = 64) -> ConvNet:
    """Section 3.3's CIFAR-10 net, cuda-convnet's layers-conv-local-11pct (lrn=False: without its norms)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    check_bool("lrn", lrn)
    check_positive_int("local3", local3)
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(in_channels, 64, 5, padding=2)), ("relu1", nn.ReLU(inplace=True)),
        ("pool1", _pool("max")),  # N,64,16,16
    ]
    layers += [("lrn1", _cmrnorm())] if lrn else []
    layers += [("conv2", nn.Conv2d(64, 64, 5, padding=2)), ("relu2", nn.ReLU(inplace=True))]  # N,64,16,16
    layers += [("lrn2", _cmrnorm())] if lrn else []
    layers += [
        ("pool2", _pool("max")),  # N,64,8,8
        ("local3", LocallyConnected2d(64, local3, 8, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),  # N,local3,8,8
        ("local4", LocallyConnected2d(local3, 32, 8, 3, padding=1)), ("relu4", nn.ReLU(inplace=True)),  # N,32,8,8
    ]
    classifier = nn.Sequential(OrderedDict([("fc5", nn.Linear(32 * 8 * 8, num_classes))]))  # N,num_classes
    model = ConvNet(nn.Sequential(OrderedDict(layers)), classifier, input_size=(in_channels, 32, 32))
    init_gaussian(model, CONVNET_LOCAL_INIT)
    return model
