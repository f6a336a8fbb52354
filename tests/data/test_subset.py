"""Fixed class-balanced subsets (train_images / val_images): counts, independence of the seed, kinds kept."""

from collections import Counter

import torch

from alexnet.data import open_dataset
from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.subset import balanced_indices, limit, take


def test_balanced_indices_share_classes_evenly_and_stay_sorted():
    targets = [0] * 50 + [1] * 30 + [2] * 5
    idx = balanced_indices(targets, 30)
    counts = Counter(targets[i] for i in idx)
    assert len(idx) == 30 == len(set(idx)) and idx == sorted(idx)
    assert counts == {0: 13, 1: 12, 2: 5}  # class 2 runs out after 5 rounds; the others share the rest
    assert balanced_indices(targets, 1000) == list(range(len(targets)))


def test_subset_is_the_same_for_every_run_seed():
    a = open_dataset("shapes:train=300,test=100", seed=0)
    b = open_dataset("shapes:train=300,test=100", seed=0)
    torch.manual_seed(1)
    first = take(a.split("train"), 50)
    torch.manual_seed(2)
    second = take(b.split("train"), 50)
    torch.testing.assert_close(first.images, second.images)
    assert first.targets == second.targets


def test_limit_keeps_kinds_and_test_alias():
    source = open_dataset("shapes:train=300,test=100")
    small = limit(source, train=60, val=40)
    assert isinstance(small.split("train"), TensorImages) and len(small.split("train")) == 60
    assert len(small.split("val")) == 40 and small.split("test") is small.split("val")
    assert len(source.split("train")) == 300  # the original is untouched
    assert limit(source) is source
    files = ImageFiles([f"f{i}.jpg" for i in range(10)], [i % 2 for i in range(10)])
    part = take(files, 4)
    assert isinstance(part, ImageFiles) and Counter(part.targets) == {0: 2, 1: 2}
    assert set(part.paths) <= set(files.paths)
