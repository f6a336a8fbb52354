"""Fixed class-balanced subsets (train_images / val_images): counts, independence of the seed, kinds kept."""

from collections import Counter

import torch

from alexnet.data import open_dataset
from alexnet.data.datasets import ImageFiles, TensorImages, balanced_indices, limit, take


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


def test_hold_out_moves_a_balanced_part_of_train_to_val_and_keeps_test_apart():
    from alexnet.data.datasets import hold_out

    source = open_dataset("shapes:train=300,test=100")
    held = hold_out(source, 50)
    train, val, test = held.split("train"), held.split("val"), held.split("test")
    assert (len(train), len(val)) == (250, 50) and test is source.split("val") and test is not val
    assert Counter(val.targets) == {c: 5 for c in range(10)}  # ten classes, five each

    # the held-out images and the training images are disjoint and together the original training split
    def pixels(s):
        return {bytes(x.numpy().tobytes()) + bytes([y]) for x, y in zip(s.images, s.targets)}

    assert not pixels(train) & pixels(val) and pixels(train) | pixels(val) == pixels(source.split("train"))
    # fixed: the same images whatever the run's seed; then train_images / val_images cut the holdout's parts
    torch.manual_seed(7)
    assert torch.equal(hold_out(source, 50).split("val").images, val.images)
    small = limit(held, train=100, val=20)
    assert (len(small.split("train")), len(small.split("val")), len(small.split("test"))) == (100, 20, 100)
    assert hold_out(source, 0) is source


def test_hold_out_leaves_data_with_its_own_val_and_refuses_to_empty_train(tmp_path):
    import pytest

    from alexnet.data.datasets import DataSource, hold_out
    from alexnet.errors import UsageError

    source = open_dataset("shapes:train=30,test=10")
    own = DataSource("folder", "folder:x", source.classes, {**source.splits, "test": take(source.split("val"), 5)}, 3,
                     source.mean, source.std, (32, 32))
    assert hold_out(own, 10) is own  # a validation split of its own: nothing to hold out
    with pytest.raises(UsageError, match="holdout 30 would leave no training images"):
        hold_out(source, 30)
