"""The published sanity checks of attribution maps, on the net the suite trains (alexnet_mini on
shapes) and its held-out test images. A map that fails either is a bug, not a picture.

- Deletion (Samek et al., 2017; Petsiuk et al., 2018): greying out the tenth of the pixels a map
  ranks highest lowers the true class's probability more than greying out as many random pixels.
  Asserted as a paired difference whose mean is more than 2.5 standard errors above zero.
- Model randomisation (Adebayo et al., 2018, "Sanity checks for saliency maps"): the map of the
  trained net and that of the same architecture re-initialised share little of their ranking:
  Spearman's rank correlation (scipy's) averages under 0.5 (a map blind to the weights gives 1).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import ConstantInputWarning, spearmanr

import alexnet
from alexnet.data import open_dataset
from alexnet.data.transforms import eval_prepare, five_crops
from alexnet.inference.explain import attribute
from alexnet.inference.inspect import net_inputs
from alexnet.models import build_model

IMAGES = {"gradcam": 200, "saliency": 200, "occlusion": 32}  # occlusion runs 196 forward passes an image
FRACTION = 0.1


@pytest.fixture(scope="module")
def held_out(trained_shapes: dict) -> tuple[torch.Tensor, list[int]]:
    """The normalised centre views (N,C,S,S) and labels of 200 test images spread over the split."""
    test = open_dataset(trained_shapes["data"]).split("test")
    size = trained_shapes["input_size"][1]
    prepare = eval_prepare(trained_shapes["augment"], size=size, channels=3)
    picked = torch.linspace(0, len(test) - 1, max(IMAGES.values())).long().tolist()
    views, labels = [], []
    for i in picked:
        image, label = test[i]
        views.append(five_crops(prepare(image), size)[4])  # uint8 C,S,S
        labels.append(int(label))
    return net_inputs(trained_shapes, views), labels


def _probability(net: torch.nn.Module, x: torch.Tensor, labels: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return net(x).softmax(dim=1)[torch.arange(len(labels)), torch.tensor(labels)]  # N


def _grey_out(x: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """x with the given pixels (N,k flat indices) set to the training mean (0 once normalised)."""
    keep = torch.ones(x.shape[0], x.shape[-2] * x.shape[-1]).scatter_(1, pixels, 0.0)  # N,S*S
    return x * keep.view(x.shape[0], 1, *x.shape[-2:])


@pytest.mark.parametrize("method", list(IMAGES))
def test_deletion_greying_the_top_pixels_costs_more_than_random_pixels(trained_shapes, held_out, method):
    x, labels = held_out[0][: IMAGES[method]], held_out[1][: IMAGES[method]]
    net = alexnet.model_from_checkpoint(trained_shapes).eval()
    heat = attribute(net, x, labels, method=method)  # N,S,S
    k = int(FRACTION * heat[0].numel())
    top = heat.flatten(1).argsort(dim=1, descending=True)[:, :k]  # N,k
    before = _probability(net, x, labels)
    by_map = before - _probability(net, _grey_out(x, top), labels)  # N
    g = torch.Generator().manual_seed(0)
    by_chance = torch.stack([  # the mean of 4 random draws per image
        before - _probability(net, _grey_out(x, torch.stack([torch.randperm(heat[0].numel(), generator=g)[:k]
                                                             for _ in labels])), labels)
        for _ in range(4)]).mean(dim=0)
    diff = by_map - by_chance
    t = float(diff.mean() / (diff.std() / len(diff) ** 0.5))
    said = (f"{method}: greying the map's top {FRACTION:.0%} lowers p(class) by {by_map.mean():.3f} on average over "
            f"{len(labels)} test images, random pixels by {by_chance.mean():.3f} (paired t = {t:.2f})")
    print(said)  # pytest -s shows the figures (BENCHMARKS.md)
    assert t > 2.5, said


@pytest.mark.parametrize("method", list(IMAGES))
def test_model_randomisation_the_map_depends_on_the_trained_weights(trained_shapes, held_out, method):
    n = min(IMAGES[method], 48) // (2 if method == "occlusion" else 1)
    x, labels = held_out[0][:n], held_out[1][:n]
    trained = alexnet.model_from_checkpoint(trained_shapes).eval()
    torch.manual_seed(1)
    random = build_model(trained_shapes["model_name"], **trained_shapes["model_args"]).eval()
    ours, theirs = attribute(trained, x, labels, method=method), attribute(random, x, labels, method=method)
    with warnings.catch_warnings():  # a random net's Grad-CAM can be zero everywhere: no ranking at all
        warnings.simplefilter("ignore", ConstantInputWarning)
        rho = [spearmanr(a.flatten().numpy(), b.flatten().numpy())[0] for a, b in zip(ours, theirs)]
    rho = np.nan_to_num(rho, nan=0.0)  # a map constant everywhere (a dead random net) ranks nothing
    said = f"{method}: mean rank correlation {np.mean(rho):.3f} with a random net's map over {n} test images"
    print(said)
    assert float(np.mean(rho)) < 0.5, said
    same = [spearmanr(a.flatten().numpy(), b.flatten().numpy())[0]
            for a, b in zip(ours[:4], attribute(trained, x[:4], labels[:4], method=method))]
    assert min(same) > 0.999, "the check itself: the trained net's map against itself"
