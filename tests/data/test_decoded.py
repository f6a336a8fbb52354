"""Image files decoded once into memory (data/decoded.py): the same prepared images as decoding
each file with PIL and `Prepare`, unreadable files listed, and training that cannot tell."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import file_state, finishes, write_unopenable
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from alexnet.config import make_config
from alexnet.data import decoded
from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.images import load_image
from alexnet.data.transforms import Prepare
from alexnet.engine.train import fit
from alexnet.errors import DataError


def tree(root, per_class=10, broken=0):
    rng = np.random.default_rng(0)
    for c in ("ants", "bees", "wasps"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.{'png' if i == 3 else 'jpg'}")
    for i in range(broken):
        (root / "bees" / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff not really")
    return root


def test_decoded_split_is_every_file_prepared_in_order(tmp_path):
    root = tree(tmp_path / "t", per_class=4, broken=1)
    paths = sorted(str(p) for p in root.rglob("*.*"))
    files = ImageFiles(paths, [i % 3 for i in range(len(paths))])
    prepare = Prepare("paper", 28, 3)
    for decode_on in (None, torch.device("cpu")):  # PIL in the workers, or the batched decoder
        got = decoded.decode_split(files, prepare, workers=0, decode_on=decode_on)
        assert isinstance(got, TensorImages)
        good = [(p, y) for p, y in zip(paths, files.targets) if "broken" not in p]
        expected = torch.stack([prepare(pil_to_tensor(load_image(p))) for p, _ in good])  # N,3,32,32
        assert torch.equal(got.images, expected) and got.targets == [y for _, y in good]
        assert [b.path for b in got.bad] == [p for p in paths if "broken" in p]
    with pytest.raises(DataError, match=r"broken0\.jpg"):
        decoded.decode_split(files, prepare, workers=0, strict=True)


def test_prepared_bytes_and_the_memory_rule(monkeypatch):
    files = ImageFiles(["a.jpg"] * 10, [0] * 10)
    assert decoded.prepared_bytes(files, Prepare("paper", 224, 3)) == 10 * 3 * 256 * 256
    assert decoded.prepared_bytes(files, Prepare("small", 28, 1)) == 10 * 28 * 28
    monkeypatch.setattr(decoded, "available_memory", lambda: 4000)
    assert decoded.fits(1000) and not decoded.fits(1001)
    monkeypatch.setattr(decoded, "available_memory", lambda: None)
    assert not decoded.fits(1)
    monkeypatch.undo()
    assert decoded.available_memory() > 0  # this machine's, read from /proc/meminfo


def test_training_from_memory_matches_training_from_files(tmp_path, capsys, monkeypatch):
    """Every file readable: the same batches in the same order, so the same losses to the last bit."""
    common = dict(model="alexnet_simple", model_args={"dropout": 0.0}, data=f"folder:{tree(tmp_path / 'data')}",
                  image_size=32, augment="paper", epochs=2, batch_size=8, workers=0, tensorboard=False,
                  deterministic=True, optimizer="adamw", lr=1e-3)
    runs = {}
    for cache in ("off", "on", "auto"):
        fit(make_config(out=str(tmp_path / cache), cache_images=cache, **common))
        lines = (tmp_path / cache / "metrics.jsonl").read_text().splitlines()
        runs[cache] = [json.loads(line)["train_loss"] for line in lines]
    assert runs["on"] == runs["off"] == runs["auto"]
    assert capsys.readouterr().err.count("image files once into memory") == 2  # on, and auto (a few kB fit)
    monkeypatch.setattr(decoded, "available_memory", lambda: 1000)  # auto: too big now
    fit(make_config(out=str(tmp_path / "small"), **common))
    assert "into memory" not in capsys.readouterr().err


def test_unreadable_files_are_counted_from_memory_too(tmp_path):
    """Dropped before the epoch order is drawn (so the batches differ from the file loader's), but listed alike."""
    common = dict(model="alexnet_simple", data=f"folder:{tree(tmp_path / 'data', broken=2)}", image_size=32, epochs=1,
                  batch_size=8, workers=0, tensorboard=False)
    for cache in ("off", "on"):
        result = fit(make_config(out=str(tmp_path / cache), cache_images=cache, **common))
        assert result["bad_images"] == 2
        listed = (tmp_path / cache / "bad_images.txt").read_text().splitlines()
        assert sorted(line.split("\t")[0].rsplit("/", 1)[1] for line in listed) == ["broken0.jpg", "broken1.jpg"]


def test_caching_refuses_pipes_devices_and_huge_files_without_reading_them(tmp_path):
    root = tree(tmp_path / "t", per_class=2)
    hostile = write_unopenable(root / "bees", huge_bytes=2**40)  # a pipe, a link to /dev/zero, a 1 TiB sparse file
    before = file_state(hostile.values())
    paths = sorted(str(p) for p in root.rglob("*.*"))
    files = ImageFiles(paths, [0] * len(paths))
    for decode_on in (None, torch.device("cpu")):  # PIL in the workers, or the batched (device) decoder
        cached = finishes(lambda decode_on=decode_on: decoded.decode_split(
            files, Prepare("small", 8, 3), workers=0, decode_on=decode_on))
        assert len(cached) == len(paths) - 3
        reasons = {b.path: b.reason for b in cached.bad}
        assert set(reasons) == {str(p) for p in hostile.values()}
        assert reasons[str(hostile["fifo"])] == reasons[str(hostile["zero"])] == "not a regular file (a pipe or device)"
        assert reasons[str(hostile["huge"])].startswith("file is too large")
    assert file_state(hostile.values()) == before
