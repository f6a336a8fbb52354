"""The readers on the real data of this machine, when present: Fashion-MNIST from Debian's
package, CIFAR-10 from the shared JPEG archive, and the ImageNet sample (one image per class)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FASHION_SYSTEM_DIR, REPO, SHARED
from PIL import Image

import alexnet.data.cifar_files as cifar_files
from alexnet.data import open_dataset

pytestmark = pytest.mark.usefixtures("isolated")

CIFAR_ARCHIVE = SHARED / "cifar10-jpeg.tar.gz"
IMAGENET_SAMPLE = SHARED / "imagenet-sample"

needs_fashion = pytest.mark.skipif(
    not (FASHION_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"{FASHION_SYSTEM_DIR} is absent (Debian package dataset-fashion-mnist)",
)
needs_cifar = pytest.mark.skipif(not CIFAR_ARCHIVE.is_file(), reason=f"{CIFAR_ARCHIVE} is absent")
needs_imagenet = pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason=f"{IMAGENET_SAMPLE} is absent")


@needs_fashion
def test_fashion_mnist_matches_torchvisions_reader(tmp_path: Path):
    from torchvision.datasets import FashionMNIST

    source = open_dataset("fashion-mnist")  # found in the system folder by the default search
    train, test = source.split("train"), source.split("test")
    assert len(train) == 60_000 and len(test) == 10_000
    assert train.images.shape == (60_000, 1, 28, 28) and source.image_size == (28, 28)
    # the first labels of the official files: ankle boot, T-shirt, T-shirt, dress, T-shirt
    assert train.targets[:5] == [9, 0, 0, 3, 0] and test.targets[:5] == [9, 2, 1, 1, 6]

    # torchvision's own parser on the same (decompressed) files is the independent reference
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in FASHION_SYSTEM_DIR.glob("*-ubyte.gz"):
        (raw / gz.name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
    for split, ours in (("train", train), ("test", test)):
        reference = FashionMNIST(str(tmp_path), train=split == "train", download=False)
        assert torch.equal(ours.images[:, 0], reference.data)
        assert ours.targets == reference.targets.tolist()
        assert source.classes == list(reference.classes)


@needs_cifar
def test_cifar10_from_the_shared_archive(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(REPO)  # ../shared/datasets is one of the default places
    start = time.perf_counter()
    source = open_dataset("cifar10")
    first = time.perf_counter() - start
    train, test = source.split("train"), source.split("test")
    assert len(train) == 50_000 and len(test) == 10_000 and not train.bad and not test.bad
    assert Counter(train.targets) == {k: 5000 for k in range(10)}
    assert Counter(test.targets) == {k: 1000 for k in range(10)}
    assert train.images.shape == (50_000, 3, 32, 32)
    mean = train.images[:, :, ::4, ::4].float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(source.mean), atol=0.01)  # the published statistics

    # the first training image is train/airplane/0000.jpg; PIL's decode of it is the reference
    with tarfile.open(CIFAR_ARCHIVE) as tar:
        member = next(m for m in tar if m.name.endswith("train/airplane/0000.jpg"))
        reference = np.array(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
    image, label = train[0]
    assert label == 0
    assert (image.permute(1, 2, 0).int() - torch.from_numpy(reference).int()).abs().float().mean() < 2

    # the second open, named by its path, loads the decoded cache
    monkeypatch.setattr(cifar_files, "_decode_split", lambda *a: pytest.fail("decoded again"))
    start = time.perf_counter()
    again = open_dataset(f"cifar10:{CIFAR_ARCHIVE}")
    second = time.perf_counter() - start
    assert torch.equal(again.split("train").images[:100], train.images[:100])
    print(f"cifar10 first open {first:.1f} s, second {second:.2f} s")


@needs_imagenet
def test_imagenet_sample(tmp_path: Path):
    (tmp_path / "train").symlink_to(IMAGENET_SAMPLE)
    (tmp_path / "val").symlink_to(IMAGENET_SAMPLE)
    source = open_dataset(f"imagenet:{tmp_path}")
    train, val = source.split("train"), source.split("val")
    assert len(source.classes) == 1000 and len(train) == 1000 and len(val) == 1000
    assert sorted(train.targets) == list(range(1000))
    for path, label in zip(train.paths, train.targets):
        assert Path(path).parent.name == source.wnids[label]
    index = json.loads((SHARED / "imagenet_class_index.json").read_text())
    assert [index[str(i)][0] for i in range(1000)] == source.wnids
    modes = Counter(train[i][0].mode for i in range(0, 1000, 50))
    assert set(modes) <= {"RGB", "L"}
