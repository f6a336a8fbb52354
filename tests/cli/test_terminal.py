"""What reaches the terminal: names that come from files, folders and checkpoints are shown with
their control characters escaped, so an escape sequence in a class or file name cannot set the
window title, clear the screen or forge a result line. `--json` was already escaped by JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision

from alexnet.cli import main
from alexnet.errors import printable

TITLE = "\x1b]0;pwned\x07"  # sets a terminal's window title
CLEAR = "\x1b[2J"  # clears the screen
FORGED = "cat\n  1.  99.99%  dog"  # a newline that forges a result line


def test_printable_escapes_controls_and_keeps_the_rest():
    assert printable(f"{TITLE}x{CLEAR}") == "\\x1b]0;pwned\\x07x\\x1b[2J"
    assert printable(FORGED) == "cat\\n  1.  99.99%  dog"
    assert printable("chien \u00e9t\u00e9 \u732b\t\u202eevil") == "chien \u00e9t\u00e9 \u732b\\t\\u202eevil"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A checkpoint whose class names hold escape sequences and a newline, and an image whose file
    name holds one: the real bad things, as a forged checkpoint or a training folder would carry them."""
    from alexnet.config import make_config, read_yaml
    from alexnet.engine.checkpoint import load_checkpoint, save_checkpoint
    from alexnet.engine.train import fit

    root = tmp_path_factory.mktemp("hostile")
    fit(make_config(read_yaml("fast"), data="shapes:train=128,test=64", epochs=1, max_steps=1, workers=0,
                    tensorboard=False, out=str(root / "run")))
    ckpt = load_checkpoint(root / "run", prefer="last")
    classes = [f"{TITLE}class{i}" if i % 2 else f"{FORGED}{i}{CLEAR}" for i in range(len(ckpt["classes"]))]
    ckpt["classes"] = classes
    save_checkpoint(root / "hostile.pt", {k: v for k, v in ckpt.items() if k != "path"})
    image = root / f"photo{CLEAR}.png"
    torchvision.utils.save_image(torch.rand(3, 32, 32), image)
    return root / "hostile.pt", image, classes


def test_predict_and_eval_print_no_raw_control_characters(hostile, capsys):
    checkpoint, image, classes = hostile
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--topk", "10"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and printable(str(image)) in out
    assert all(printable(name) in out for name in classes)
    ranks = [line for line in out.splitlines() if re.match(r"\s+\d+\.\s", line)]
    assert len(ranks) == 10  # no forged rank line among them: the newline is shown as \n
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["path"] == str(image)  # JSON: the name itself

    assert main(["eval", str(checkpoint), "--data", "shapes:train=128,test=64", "--workers", "0",
                 "--out", str(checkpoint.parent / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\n  1." not in out and printable(classes[1]) in out


def test_an_error_naming_a_hostile_file_is_one_escaped_line(tmp_path, capsys):
    bad = tmp_path / f"weights{TITLE}.pt"
    bad.write_text("not weights")
    assert main(["predict", str(tmp_path / "x.png"), "--model", "alexnet_owt", "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and len(err.strip().splitlines()) == 1


def test_warnings_and_notices_naming_a_hostile_run_folder_are_escaped(tmp_path, capsys):
    """The lines besides results and errors: eval's 'not drawn' warning, the fallback from a damaged
    best.pt, the notice that a run without a checkpoint starts over, and reproduce's progress lines."""
    run = tmp_path / f"run{TITLE}{CLEAR}"
    quick = ["--data", "shapes:train=64,test=32,size=32", "--model", "alexnet_simple", "--batch-size", "32",
             "--workers", "0", "--no-tensorboard", "--device", "cpu"]
    assert main(["train", *quick, "--epochs", "1", "--out", str(run)]) == 0
    assert main(["eval", str(run)]) == 0 and main(["eval", str(run)]) == 0  # the second: "was not drawn"
    (run / "best.pt").write_bytes(b"PK\x03\x04 damaged")  # eval falls back to last.pt, with a warning
    assert main(["eval", str(run), "--force"]) == 0
    fresh = tmp_path / f"fresh{CLEAR}"
    fresh.mkdir()
    (fresh / ".alexnet-run").write_text("{}")
    (fresh / "config.yaml").write_text((run / "config.yaml").read_text())
    assert main(["train", "--resume", str(fresh), "--max-steps", "1"]) == 0  # "has no checkpoint yet"
    out, err = capsys.readouterr()
    assert "was not drawn" in err and "using" in err and "has no checkpoint yet" in err
    assert "\x1b" not in out + err and "\x07" not in out + err
    from alexnet.reproduce.runner import show

    show(f"  {run}/result.json is damaged")
    assert "\x1b" not in capsys.readouterr().out


def test_class_names_holding_dollar_signs_are_drawn_as_written(tmp_path, capsys):
    """matplotlib reads `$...$` as mathtext: a class named `$\\foo{$` stopped eval with a parse error."""
    from PIL import Image

    from alexnet.engine.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    assert main(["train", "--data", "shapes:train=64,test=32,size=32", "--model", "alexnet_simple", "--epochs", "1",
                 "--batch-size", "32", "--workers", "0", "--no-tensorboard", "--device", "cpu", "--out", str(run)]) == 0
    ckpt = load_checkpoint(run)
    names = ["$\\foo{$", "$x_", "50$", *ckpt["classes"][3:]]
    save_checkpoint(tmp_path / "dollars.pt", {k: v for k, v in ckpt.items() if k != "path"} | {"classes": names})
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image)
    for argv in (["eval", str(tmp_path / "dollars.pt"), "--out", str(tmp_path / "confusion.png")],
                 ["viz", "heatmap", str(image), "--checkpoint", str(tmp_path / "dollars.pt"), "--out",
                  str(tmp_path / "heatmap.png")]):
        assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "confusion.png").is_file() and (tmp_path / "heatmap.png").is_file()
