"""`alexnet viz VERB` end to end on a run trained in the test, and the pictures training leaves."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet import fit  # the public fit: the engine's, and the run's pictures
from alexnet.cli import main
from alexnet.config import make_config, read_yaml
from alexnet.data import open_dataset
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.viz.figure import layout_problems

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


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure a viz module saves, kept so its text can be measured after the PNG is written."""
    figs: list[Any] = []
    for name in ("filters", "features", "predictions", "heatmap", "neighbors", "curves", "augment", "confusion",
                 "explain"):
        module = importlib.import_module(f"alexnet.viz.{name}")

        def keep(fig: Any, path: Any, _real: Any = module.finish, **kw: Any) -> Any:
            figs.append(fig)
            return _real(fig, path, **kw)

        monkeypatch.setattr(module, "finish", keep)
    return figs


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


def test_every_verb_writes_a_png(run: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                 drawn: list[Any]) -> None:
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
        "explain": [one, "--checkpoint", str(run)],
        "explain-occlusion": [one, "--checkpoint", str(run), "--method", "occlusion", "--class", "1"],
        "explain-saliency": [one, "--checkpoint", str(run), "--method", "saliency"],
        "explain-conv2": [one, "--checkpoint", str(run), "--layer", "conv2"],
    }
    for name, args in calls.items():
        out = tmp_path / f"{name}.png"
        assert main(["viz", name.split("-")[0], *args, "--device", "cpu", "--out", str(out)]
                    if name.split("-")[0] != "curves" else ["viz", "curves", *args, "--out", str(out)]) == 0, name
        assert f"wrote {out}" in capsys.readouterr().out
        _png(out)
        # no text cut at the figure's edges, over an image or over other text, none under 7 pt
        assert layout_problems(drawn[-1]) == [], name


def test_filters_tile_is_the_trained_kernel(run: Path, tmp_path: Path) -> None:
    """The grid drawn for the run holds the checkpoint's own first-layer kernels, each normalised."""
    from alexnet.engine.checkpoint import model_from_checkpoint
    from alexnet.inference.inspect import conv_weights
    from alexnet.viz.filters import filter_tiles

    ckpt = load_checkpoint(run)
    _name, weight = conv_weights(model_from_checkpoint(ckpt))[0]
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
    (["explain", "IMG", "--checkpoint", "RUN", "--layer", "conv8"], "this net has conv1..conv5"),
    (["explain", "IMG", "--checkpoint", "RUN", "--method", "saliency", "--layer", "conv2"], "--layer chooses gradcam"),
    (["explain", "IMG", "--checkpoint", "RUN", "--class", "99"], "class '99': give an index 0..9"),
    (["explain", "IMG", "--checkpoint", "RUN", "--method", "lime"], "invalid choice: 'lime'"),
    (["explain", "missing.png", "--checkpoint", "RUN"], "no such file"),
    (["explain", "DIR", "--checkpoint", "RUN"], "is a folder: give one image file"),
    (["features", "DIR", "--checkpoint", "RUN"], "is a folder: give one image file"),
    ([], "say which picture"),
])
def test_usage_errors_are_one_line(run: Path, photos: Path, args: list[str], message: str,
                                   capsys: pytest.CaptureFixture, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one = str(next(photos.glob("*/*.png")))
    argv = [str(run) if a == "RUN" else one if a == "IMG" else str(photos) if a == "DIR" else a for a in args]
    assert main(["viz", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def long_run(run: Path) -> Path:
    """The test run under the kind of name `alexnet train` gives a run folder (model-data-date-time)."""
    folder = run.parent / "alexnet_mini-shapes-20261201-101530"
    if not folder.exists():
        shutil.copytree(run, folder, ignore=shutil.ignore_patterns("tb"))
    return folder


def test_a_run_named_as_train_names_it_fits_every_title(long_run: Path, photos: Path, tmp_path: Path,
                                                        drawn: list[Any]) -> None:
    """`viz filters --checkpoint RUN` cut "alexnet_mini-shapes-…" at both edges of its narrow figure."""
    one = str(next(photos.glob("*/*.png")))
    for verb, args in [("filters", []), ("predictions", [one]), ("heatmap", [one]), ("features", [one]),
                       ("explain", [one]),
                       ("predictions", [one, "--style", "top5"])]:
        out = str(tmp_path / f"{verb}-{len(args)}.png")
        assert main(["viz", verb, *args, "--checkpoint", str(long_run), "--device", "cpu", "--out", out]) == 0
        fig = drawn[-1]
        assert layout_problems(fig) == [], verb
        heading = re.sub(r"\s+", "", fig._suptitle.get_text())
        assert long_run.name in heading, verb  # wrapped to fit, not shortened


def test_predictions_tiles_name_their_files(run: Path, photos: Path, tmp_path: Path, drawn: list[Any]) -> None:
    files = sorted(photos.glob("*/*.png"))
    out = str(tmp_path / "p.png")
    assert main(["viz", "predictions", str(photos), "--checkpoint", str(run), "--device", "cpu", "--out", out]) == 0
    fig = drawn[-1]
    shown = [ax.texts[0].get_text() for ax in fig.axes]
    assert sorted(shown) == sorted(f.name for f in files)  # every file, each over its own tile
    for ax in fig.axes:
        assert re.fullmatch(r"\S.* (\d+%|<1%)\ntrue: .+", ax.get_title())  # then the prediction and the truth
    assert layout_problems(fig) == []


def test_before_after_states_the_change_of_the_checkpoint(run: Path, tmp_path: Path, drawn: list[Any]) -> None:
    """The number in the picture is ||W - W0|| / ||W0|| of the run's own conv1 kernels, computed here in numpy."""
    from alexnet.engine.checkpoint import model_from_checkpoint
    from alexnet.inference.inspect import conv_weights

    assert main(["viz", "filters", "--before-after", str(run), "--device", "cpu", "--out",
                 str(tmp_path / "b.png")]) == 0
    ckpt = load_checkpoint(run)
    w0 = ckpt["init_filters"].double().numpy()
    w = conv_weights(model_from_checkpoint(ckpt))[0][1].double().numpy()
    expected = np.linalg.norm(w - w0) / np.linalg.norm(w0)
    fig = drawn[-1]
    texts = fig._suptitle.get_text() + "\n" + fig.axes[2].get_title()  # the heading and the change panel
    stated = [float(x) / 100 for x in re.findall(r"‖W₀‖ = ([0-9.e+-]+)%", texts)]
    assert len(stated) == 2 and stated == [pytest.approx(expected, rel=5e-3)] * 2
    assert 0 < expected
    assert layout_problems(fig) == []


@pytest.mark.parametrize("model", ["alexnet_owt", "alexnet2012"])
def test_explain_draws_every_method_on_the_imagenet_nets(model: str, photos: Path, tmp_path: Path,
                                                         drawn: list[Any], capsys: pytest.CaptureFixture) -> None:
    """--model M --weights FILE: all three methods on alexnet2012, and its towers by the paper's names."""
    from alexnet.models import build_model

    torch.manual_seed(0)
    weights = tmp_path / f"{model}.pth"
    torch.save(build_model(model).state_dict(), weights)
    one = str(next(photos.glob("*/*.png")))
    calls = ([("gradcam", []), ("occlusion", []), ("saliency", []), ("gradcam", ["--layer", "conv5.tower1"]),
              ("gradcam", ["--layer", "conv2.tower2"])] if model == "alexnet2012"
             else [("saliency", []), ("gradcam", ["--layer", "conv3"])])  # tests/inference/ runs every method on both
    for method, extra in calls:
        out = tmp_path / f"{method}-{len(extra)}.png"
        assert main(["viz", "explain", one, "--model", model, "--weights", str(weights), "--method", method, *extra,
                     "--device", "cpu", "--out", str(out), "--force"]) == 0, (method, extra)
        _png(out)
        heading = drawn[-1]._suptitle.get_text()
        assert {"gradcam": "Grad-CAM", "occlusion": "occlusion", "saliency": "saliency"}[method] in heading
        if extra:
            assert extra[1] in heading
        assert layout_problems(drawn[-1]) == []
    assert "conv5.tower1" not in capsys.readouterr().err
