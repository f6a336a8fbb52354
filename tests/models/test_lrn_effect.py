"""What lrn1 does to real photographs (section 3.3): with the paper's inputs it normalises, with
standardised ones it is a constant scale. The paper's constants (k=2, alpha=1e-4 over n=5) were
set for raw 0-255 pixels minus the mean image, the units of its N(0, 0.01) init."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alexnet.data.images import load_image
from alexnet.data.transforms import EvalViews, Prepare
from alexnet.models import build_model
from alexnet.models.lrn import _window_sum

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()
IMAGENET_SAMPLE = SHARED / "imagenet-sample"


@pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason=f"{IMAGENET_SAMPLE} is absent")
def test_lrn1_normalises_photos_prepared_as_the_paper_and_not_standardised_ones():
    paths = sorted(IMAGENET_SAMPLE.glob("*/*.JPEG"))[:24]
    prepare = Prepare("paper", 227, 3)
    squares = torch.stack([prepare(load_image(str(p))) for p in paths])  # N,3,256,256 uint8
    mean_image = squares.float().mean(dim=0)  # the mean over these "training" images
    torch.manual_seed(0)
    net = build_model("alexnet2012").eval()  # the paper's init; two towers
    lrn = net.features.lrn1
    k, per_term = lrn.k, lrn.alpha / lrn.size

    def data_term(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """relu1's output a and alpha/n * (window sum of a^2 within each tower) / k."""
        a = net.features.relu1(net.features.conv1(x))  # N,96,55,55
        n, c, h, w = a.shape
        towers = a.reshape(n * 2, c // 2, h, w)
        s = _window_sum(towers * towers, lrn.size // 2, (lrn.size - 1) // 2) * per_term
        return a, s.reshape(n, c, h, w) / k

    with torch.no_grad():
        paper = EvalViews(size=227, channels=3, mean=[0.0] * 3, std=[1.0] * 3, mean_image=mean_image)(squares)
        standardised = EvalViews(size=227, channels=3, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])(squares)
        a, term = data_term(paper)
        _, term_std = data_term(standardised)
        b = lrn(a)
    # measured (2026-12-01): max 0.083 of k with the paper's inputs, 2.4e-5 with standardised ones
    assert 0.02 < float(term.max()) < 1.0, "the data term should reach the order of a tenth of k"
    assert float(term_std.max()) < 1e-3, "standardised inputs leave LRN a constant scale"
    constant = a * k ** -lrn.beta  # what LRN would be if the data term were 0
    big = constant.abs() > 1e-3 * float(constant.abs().max())
    change = ((b - constant).abs() / constant.abs().clamp_min(1e-12))[big]
    assert float(change.max()) > 0.01 and float((change > 0.01).float().mean()) > 0.001  # some outputs move > 1%


def test_lrn_stays_a_subclass_of_torchs():
    assert isinstance(build_model("alexnet2012").features.lrn1, torch.nn.LocalResponseNorm)
