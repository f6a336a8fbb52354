"""What the demo page shows, computed without a browser: the same top-5 as `alexnet.predict`, the
same maps as `alexnet.explain`, the 25 x 40 softmax grid of a 1000-class net, the towers in the
Grad-CAM layer picker; and `alexnet demo`'s one-line refusals, Gradio absent included."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import alexnet
from alexnet.cli import main
from alexnet.demo.panels import enlarged, load_net, panels, read_photo
from alexnet.errors import UsageError
from alexnet.inference.weights import describe_model
from alexnet.models import build_model
from alexnet.viz.explain import overlay


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    yy, xx = np.mgrid[0:120, 0:160]
    rgb = np.stack([xx * 255 // 160, yy * 255 // 120, ((xx - 100) ** 2 + (yy - 50) ** 2 < 30**2) * 255], axis=2)
    path = tmp_path_factory.mktemp("photo") / "disc.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def test_the_page_shows_what_predict_and_explain_compute(trained_shapes, photo):
    net = load_net(trained_shapes)
    shown = panels(net, str(photo), cam_layer="conv3", feature_layer="relu2")
    want = alexnet.predict(str(photo), trained_shapes, topk=5)[0]["topk"]
    assert list(shown["top5"]) == [t["class"] for t in want]
    np.testing.assert_allclose(list(shown["top5"].values()), [t["prob"] for t in want], rtol=1e-5)
    view = alexnet.inference.inspect.net_view(trained_shapes, str(photo))
    heat = alexnet.explain(str(photo), trained_shapes, method="gradcam", layer="conv3")
    np.testing.assert_array_equal(shown["gradcam"], enlarged(overlay(view, heat)))
    assert shown["gradcam"].shape == (256, 256, 3)  # a 32 x 32 view, shown 8 times as large
    assert "conv3" in shown["gradcam_caption"] and want[0]["class"] in shown["occlusion_caption"]
    assert "relu2" in shown["features"]._suptitle.get_text()
    assert shown["filters"] is panels(net, str(photo))["filters"]  # drawn once per net


def test_a_1000_class_net_gets_the_25_by_40_grid_and_its_towers_in_the_picker(photo):
    torch.manual_seed(0)
    net = load_net(describe_model(build_model("alexnet2012"), source="alexnet2012 (untrained)"))
    assert net.cam_layers[:5] == [f"conv{i}" for i in range(1, 6)]
    assert "conv5.tower1" in net.cam_layers and "conv2.tower2" in net.cam_layers
    assert net.first_activation == "relu1"
    shown = panels(net, str(photo), cam_layer="conv5.tower2")
    grid = [ax for ax in shown["heatmap"].axes if "softmax outputs as" in ax.get_title()]
    assert grid and "25 x 40" in grid[0].get_title()
    assert len(shown["top5"]) == 5 and shown["gradcam"].shape == (227, 227, 3)


@pytest.mark.parametrize(("content", "says"), [
    (b"not a picture at all", "not an image file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "broken.png"),
])
def test_a_file_that_is_no_image_is_one_line(tmp_path, content, says):
    bad = tmp_path / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(UsageError, match=says) as info:
        read_photo(str(bad))
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="upload a photo first"):
        read_photo(None)


@pytest.mark.parametrize(("args", "says"), [
    ([], "say which net to show"),
    (["--weights", "w.pth"], "no such file"),  # Hub weights name their model: --model is not required
    (["--model", "alexnet2012"], "--model needs --weights"),
    (["--checkpoint", "nowhere"], "nowhere"),
    (["--checkpoint", "RUN", "--examples", "nowhere"], "--examples nowhere: not a folder"),
    (["--checkpoint", "RUN", "--examples", "EMPTY"], "the folder holds no images"),
    (["--checkpoint", "RUN", "--port", "70000"], "--port"),
    (["--checkpoint", "RUN", "--host", "::1"], "--host '::1': give an IPv4 address or a host name"),
    (["--checkpoint", "RUN", "--host", ""], "--host '': give an IPv4 address"),
    (["--checkpoint", "RUN", "--host", "no-such-host.invalid"], "--host no-such-host.invalid: no such host"),
    (["--checkpoint", "RUN", "--host", "192.0.2.1"], "that address is not one of this machine's"),
    (["--checkpoint", "RUN", "--examples", "PIPES"], "none of its files is a readable image"),
])
def test_bad_options_are_one_line_before_anything_is_served(trained_shapes, tmp_path, capsys, args, says):
    pytest.importorskip("gradio", reason="the demo's extra (gradio) is not installed")
    (tmp_path / "empty").mkdir()
    (tmp_path / "pipes").mkdir()
    os.mkfifo(tmp_path / "pipes" / "a.jpg")  # Gradio would read it whole, and wait forever
    run = str(Path(trained_shapes["path"]).parent)
    folders = {"EMPTY": str(tmp_path / "empty"), "PIPES": str(tmp_path / "pipes")}
    argv = [run if a == "RUN" else folders.get(a, a) for a in args]
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err


def test_without_gradio_the_demo_says_how_to_install_it(trained_shapes, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets where it is not installed
    assert main(["demo", "--checkpoint", str(Path(trained_shapes["path"]).parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install -e '.[demo]'" in err and len(err.splitlines()) == 1, err


def test_a_port_in_use_is_one_line(trained_shapes, capsys):
    pytest.importorskip("gradio", reason="the demo's extra (gradio) is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--checkpoint", str(Path(trained_shapes["path"]).parent), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}" in err[0], err


def test_examples_skip_what_is_not_a_readable_image_and_nets_get_labels_apart(trained_shapes, tmp_path, monkeypatch):
    """A pipe among the examples hung the page's start; two weights files in the working folder
    were both labelled 'alexnet_mini ()'."""
    from alexnet.cli import build_parser
    from alexnet.cli.demo import _examples, _nets

    folder = tmp_path / "examples"
    folder.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(folder / "good.png")
    os.mkfifo(folder / "pipe.jpg")
    (folder / "text.jpg").write_text("not a picture")
    with pytest.warns(UserWarning, match=r"skipped 2 files that are not readable images"):
        assert _examples(str(folder)) == [str(folder / "good.png")]

    monkeypatch.chdir(tmp_path)
    model = build_model("alexnet_mini", num_classes=10)
    for name in ("a.pth", "b.pth"):
        torch.save(model.state_dict(), name)
    run = str(Path(trained_shapes["path"]).parent)
    args = build_parser(["demo"]).parse_args(["demo", "--model", "alexnet_mini", "--weights", "a.pth", "--weights",
                                              "b.pth", "--checkpoint", run, "--checkpoint", run])
    nets = _nets(args)
    best = nets[0].ckpt["path"]  # RUN/best.pt: two nets named after one run folder get its path
    assert [net.label for net in nets] == [f"alexnet_mini ({best})", f"alexnet_mini ({best}) #2",
                                           "alexnet_mini (a.pth)", "alexnet_mini (b.pth)"]
