"""`alexnet viz VERB` end to end on a run trained in the test, and the pictures training leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.cli import main
from alexnet.config import make_config, read_yaml
from alexnet.data import open_dataset
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.train import fit

SMALL = "shapes:train=320,test=80,size=32"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("viz") / "run"
    fit(make_config(read_yaml("fast"), data=SMALL, workers=0, batch_size=64, epochs=2, tensorboard=False, out=str(out)))
    return out


@pytest.fixture(scope="module")
def photos(run: Path) -> Path:
    """A few held-out shapes as PNG files in folders named after their classes."""
    source = open_dataset(SMALL)
    folder = run.parent / "photos"
    split = source.split("val")
    for i in range(12):
        image, label = split[i]
        (folder / source.classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / source.classes[label] / f"{i}.png")
    return folder


def _png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert 300 <= img.width <= 4000 and 200 <= img.height <= 4000, img.size
        return img.size


def test_training_leaves_curves_filters_and_initial_kernels(run: Path) -> None:
    _png(run / "curves.png")
    _png(run / "filters.png")
    ckpt = load_checkpoint(run)
    first = ckpt["model"]["features.conv1.weight"]
    assert ckpt["init_filters"].shape == first.shape and not torch.equal(ckpt["init_filters"], first)


def test_every_verb_writes_a_png(run: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    one = str(next(photos.glob("*/*.png")))
    calls = {
        "filters": ["--checkpoint", str(run)],
        "filters-before-after": ["--before-after", str(run)],
        "filters-conv3": ["--checkpoint", str(run), "--layer", "2", "--mode", "sum"],
        "features": [one, "--checkpoint", str(run), "--layer", "relu2"],
        "predictions": [str(photos), "--checkpoint", str(run)],
        "predictions-top5": [str(photos), "--checkpoint", str(run), "--style", "top5"],
        "heatmap": [one, "--checkpoint", str(run)],
        "neighbors": ["--checkpoint", str(run), "--queries", "3", "-k", "4", "--bank-size", "100"],
        "neighbors-files": [one, "--checkpoint", str(run), "-k", "3", "--bank-size", "50"],
        "curves": [str(run), str(run)],
        "augment": [one, "--checkpoint", str(run), "-n", "6"],
        "augment-paper": [one, "--model", "alexnet2012", "--preset", "paper"],
        "confusion": ["--checkpoint", str(run), "--split", "test"],
    }
    for name, args in calls.items():
        out = tmp_path / f"{name}.png"
        assert main(["viz", name.split("-")[0], *args, "--device", "cpu", "--out", str(out)]
                    if name.split("-")[0] != "curves" else ["viz", "curves", *args, "--out", str(out)]) == 0, name
        assert f"wrote {out}" in capsys.readouterr().out
        _png(out)


def test_filters_tile_is_the_trained_kernel(run: Path, tmp_path: Path) -> None:
    """The grid drawn for the run holds the checkpoint's own first-layer kernels, each normalised."""
    from alexnet.cli.viz import conv_weights
    from alexnet.engine.checkpoint import model_from_checkpoint
    from alexnet.viz.filters import filter_tiles

    ckpt = load_checkpoint(run)
    name, weight = conv_weights(model_from_checkpoint(ckpt))[0]
    tiles = filter_tiles(weight, "rgb")
    k = ckpt["model"]["features.conv1.weight"][5].numpy()  # C,h,w
    np.testing.assert_allclose(tiles[5], ((k - k.min()) / (k.max() - k.min())).transpose(1, 2, 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("args, message", [
    (["filters", "--checkpoint", "RUN", "--layer", "9"], "has conv layers 0..4"),
    (["features", "IMG", "--checkpoint", "RUN", "--layer", "fc9"], "net.features has conv1, relu1"),
    (["filters", "--checkpoint", "RUN", "--out", "x.jpg"], "written as PNG"),
    (["curves", "nowhere"], "not a run folder"),
    (["heatmap", "missing.png", "--checkpoint", "RUN"], "no such file"),
    (["filters"], "say which net to use"),
    ([], "say which picture"),
])
def test_usage_errors_are_one_line(run: Path, photos: Path, args: list[str], message: str, capsys: pytest.CaptureFixture,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one = str(next(photos.glob("*/*.png")))
    argv = [str(run) if a == "RUN" else one if a == "IMG" else a for a in args]
    assert main(["viz", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
