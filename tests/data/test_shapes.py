"""The synthetic shapes data: shapes of tensors, determinism, balance, options and speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alexnet.data import open_dataset
from alexnet.data.shapes import SHAPE_CLASSES

pytestmark = pytest.mark.usefixtures("isolated")


def test_default_shapes_source():
    source = open_dataset("shapes")
    assert source.name == "shapes" and source.spec == "shapes"
    assert source.classes == [
        "horizontal_stripes", "vertical_stripes", "diagonal", "checkerboard", "circle",
        "square", "cross", "triangle", "noise", "solid",
    ]
    assert source.channels == 3 and source.image_size == (32, 32)
    assert len(source.mean) == len(source.std) == 3
    assert all(0.2 < m < 0.8 for m in source.mean) and all(0.1 < s < 0.5 for s in source.std)
    train, val = source.split("train"), source.split("val")
    assert len(train) == 5000 and len(val) == 1000
    assert source.split("test") is val
    image, label = train[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert isinstance(label, int) and label == train.targets[0]
    assert train.images.shape == (5000, 3, 32, 32)


def test_classes_are_balanced():
    source = open_dataset("shapes:train=1000,test=200")
    assert np.bincount(source.split("train").targets).tolist() == [100] * 10
    assert np.bincount(source.split("val").targets).tolist() == [20] * 10


def test_same_seed_same_data_and_train_differs_from_test():
    a = open_dataset("shapes:train=200,test=200", seed=3)
    b = open_dataset("shapes:train=200,test=200", seed=3)
    c = open_dataset("shapes:train=200,test=200", seed=4)
    assert torch.equal(a.split("train").images, b.split("train").images)
    assert a.split("train").targets == b.split("train").targets
    assert not torch.equal(a.split("train").images, c.split("train").images)
    assert not torch.equal(a.split("train").images, a.split("val").images)
    # the seed option overrides the seed argument
    d = open_dataset("shapes:train=200,test=200,seed=3", seed=99)
    assert torch.equal(a.split("train").images, d.split("train").images)


def test_options_size_counts_and_noise():
    source = open_dataset("shapes:size=48,train=50,test=20,noise=0")
    train = source.split("train")
    assert train.images.shape == (50, 3, 48, 48) and len(source.split("val")) == 20
    assert source.image_size == (48, 48)
    images, labels = train.images, torch.tensor(train.targets)
    solid = images[labels == SHAPE_CLASSES.index("solid")].float()  # N,3,H,W
    # without noise a solid image is one colour
    assert torch.equal(solid.amax(dim=(2, 3)), solid.amin(dim=(2, 3)))
    # every drawn shape has exactly two colours
    circles = images[labels == SHAPE_CLASSES.index("circle")]
    assert all(len(torch.unique(img.reshape(3, -1), dim=1).T) == 2 for img in circles)


def test_noise_class_is_noisy_and_shapes_are_not():
    source = open_dataset("shapes:train=500,test=10")
    train = source.split("train")
    labels = torch.tensor(train.targets)
    spread = {
        name: train.images[labels == k].float().std(dim=(2, 3)).mean().item()  # per-image pixel std
        for k, name in enumerate(SHAPE_CLASSES)
    }
    assert spread["noise"] > 60  # uniform 0..255: about 74
    assert spread["solid"] < 35  # only the additive noise (0.1 * 255 = 25.5)
