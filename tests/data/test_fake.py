"""The fake data: shapes, options, and images that are a pure function of (seed, split, index)."""

from __future__ import annotations

import pytest
import torch

from alexnet.data import open_dataset

pytestmark = pytest.mark.usefixtures("isolated")


def test_defaults():
    source = open_dataset("fake")
    train, val = source.split("train"), source.split("val")
    assert (len(train), len(val)) == (1000, 200) and source.split("test") is val
    assert source.channels == 3 and source.image_size == (224, 224) and len(source.classes) == 10
    image, label = train[7]
    assert image.shape == (3, 224, 224) and image.dtype == torch.uint8
    assert 0 <= label < 10 and label == train.targets[7]


def test_options():
    source = open_dataset("fake:1x16x8,n=30,val=5,classes=3")
    train = source.split("train")
    assert len(train) == 30 and len(source.split("val")) == 5
    assert train[0][0].shape == (1, 16, 8) and source.channels == 1 and len(source.mean) == 1
    assert source.classes == ["class_0", "class_1", "class_2"]
    assert set(train.targets) <= {0, 1, 2}
    with pytest.raises(IndexError):
        train[30]


def test_deterministic_per_index():
    a = open_dataset("fake:3x8x8,n=20", seed=1).split("train")
    b = open_dataset("fake:3x8x8,n=20", seed=1).split("train")
    c = open_dataset("fake:3x8x8,n=20", seed=2).split("train")
    assert torch.equal(a[5][0], a[5][0]) and torch.equal(a[5][0], b[5][0])
    assert torch.equal(a[-1][0], a[19][0])
    assert not torch.equal(a[5][0], a[6][0])
    assert not torch.equal(a[5][0], c[5][0])
    val = open_dataset("fake:3x8x8,n=20", seed=1).split("val")
    assert not torch.equal(a[0][0], val[0][0])
