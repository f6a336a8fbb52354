"""Spec strings: parsing, the table of readers, and the errors for bad names and options."""

from __future__ import annotations

import pytest

from alexnet.data import DATASETS, DataSource, open_dataset, parse_spec
from alexnet.errors import DataError, UsageError

pytestmark = pytest.mark.usefixtures("isolated")


def test_known_names():
    assert list(DATASETS) == ["shapes", "fashion-mnist", "mnist", "cifar10", "imagenet", "folder", "fake"]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cifar10:/x/y", ("cifar10", "/x/y")),
        ("CIFAR10", ("cifar10", None)),
        ("shapes:", ("shapes", None)),
        ("shapes:size=64,train=10", ("shapes", "size=64,train=10")),
        ("Fashion_MNIST:/d", ("fashion-mnist", "/d")),
        ("folder:/a:b", ("folder", "/a:b")),  # only the first colon separates
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError) as err:
        parse_spec("imagenette:/data")
    message = str(err.value)
    assert "imagenette" in message and "cifar10" in message and "folder" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "spec, words",
    [
        ("shapes:size=abc", ["size", "abc"]),
        ("shapes:colour=red", ["colour"]),
        ("shapes:size", ["size"]),
        ("shapes:size=4", ["size"]),
        ("shapes:train=10,train=20", ["train"]),
        ("fake:3x0x5", ["3x0x5"]),
        ("fake:3xax5", ["3xax5"]),
        ("fake:2x8x8", ["2x8x8"]),
        ("fake:n=0", ["n"]),
        ("fake:bogus=1", ["bogus"]),
    ],
)
def test_malformed_options_name_the_bad_part(spec, words):
    with pytest.raises(UsageError) as err:
        open_dataset(spec)
    assert not isinstance(err.value, DataError)
    for word in words:
        assert word in str(err.value)


def test_imagenet_needs_a_folder():
    with pytest.raises(UsageError, match=r"^imagenet needs a folder: imagenet:DIR$"):
        open_dataset("imagenet")


def test_val_fraction_is_checked():
    with pytest.raises(UsageError, match="val_fraction"):
        open_dataset("fake", val_fraction=1.5)


def test_spec_is_kept_and_unknown_split_is_refused():
    source = open_dataset("fake:1x4x4,n=3,val=2")
    assert isinstance(source, DataSource)
    assert source.spec == "fake:1x4x4,n=3,val=2"
    assert source.split("test") is source.split("val")
    with pytest.raises(UsageError) as err:
        source.split("holdout")
    assert "holdout" in str(err.value) and "train" in str(err.value) and "val" in str(err.value)
