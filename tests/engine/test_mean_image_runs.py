"""A run on the paper's inputs (input_norm mean_image): its checkpoint carries the training set's
mean image and colour components, and eval, predict and export prepare images with them exactly
as training did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alexnet.config import make_config
from alexnet.data import open_dataset
from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
from alexnet.engine.train import fit
from alexnet.inference.export import export
from alexnet.inference.predict import predict
from alexnet.inference.weights import load_weights


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "meanimage"
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALEXNET_CACHE", str(cache))
        fit(make_config(model="alexnet_simple", data="shapes:train=300,test=100", augment="paper",
                        input_norm="mean_image", lighting=0.1, epochs=1, max_steps=3, batch_size=32, optimizer="sgd",
                        lr=1e-4, momentum_form="paper", bias_lr_mult=2.0, bias_decay=False, out=str(out),
                        tensorboard=False, workers=0))
    return out


def test_checkpoint_carries_the_mean_image_of_the_prepared_training_images(run: Path):
    ckpt = load_checkpoint(run)
    assert ckpt["input_norm"] == "mean_image"
    source = open_dataset("shapes:train=300,test=100", seed=0)
    from alexnet.data.transforms import Prepare

    prepare = Prepare("paper", 32, 3)  # 32 px: the paper's ratio gives 37-squares
    train = source.split("train")
    # numpy, independently
    squares = np.stack([prepare(train[i][0]).numpy() for i in range(len(train))]).astype(np.float64)
    assert tuple(ckpt["mean_image"].shape) == (3, 37, 37)
    np.testing.assert_allclose(ckpt["mean_image"].numpy(), squares.mean(axis=0), atol=1e-3)
    cov = np.cov(squares.transpose(1, 0, 2, 3).reshape(3, -1), bias=True)
    np.testing.assert_allclose(ckpt["pca"]["eigval"].numpy(), np.sort(np.linalg.eigvalsh(cov))[::-1], rtol=1e-4)
    # the per-channel figures for consumers that know no mean image: x - the mean image's channel means
    np.testing.assert_allclose(np.array(ckpt["mean"]) * 255, squares.mean(axis=(0, 2, 3)), rtol=1e-4)
    assert ckpt["std"] == pytest.approx([1 / 255] * 3)


def test_predict_subtracts_the_mean_image(run: Path, tmp_path: Path):
    from PIL import Image

    ckpt = load_checkpoint(run)
    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    pixels = rng.integers(0, 256, (37, 37, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    got = predict([str(path)], str(run), topk=len(ckpt["classes"]))[0]
    x = torch.from_numpy(pixels).permute(2, 0, 1).float() - ckpt["mean_image"]  # 3,37,37: raw minus the mean
    with torch.no_grad():
        probs = model_from_checkpoint(ckpt).eval()(x[None, :, 2:34, 2:34]).softmax(dim=1)[0]  # the centre 32-patch
    for entry in got["topk"]:
        assert entry["prob"] == pytest.approx(float(probs[entry["index"]]), abs=1e-5)


def test_exports_take_raw_pixels_and_safetensors_keep_the_statistics(run: Path, tmp_path: Path):
    ckpt = load_checkpoint(run)
    result = export(ckpt, "torchscript", tmp_path / "net.ts.pt")
    assert result["input_norm"] == "mean_image"
    loaded = torch.jit.load(str(tmp_path / "net.ts.pt"))
    raw = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        expected = model_from_checkpoint(ckpt).eval()(raw - ckpt["mean_image"][:, 2:34, 2:34])
    torch.testing.assert_close(loaded(raw), expected, rtol=1e-4, atol=1e-4)
    export(ckpt, "safetensors", tmp_path / "net.safetensors")
    back = load_weights(tmp_path / "net.safetensors")
    assert back["input_norm"] == "mean_image"
    torch.testing.assert_close(back["mean_image"], ckpt["mean_image"])
    torch.testing.assert_close(back["pca"]["eigvec"], ckpt["pca"]["eigvec"])
