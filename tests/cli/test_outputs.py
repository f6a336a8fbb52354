"""One write policy for every file a command writes, tested on the real special files.

Every writer (export in each format, eval's confusion PNG at --out and at its default path, viz,
reproduce's --summary, and `atomic_path` under them all) refuses in one line, exit 2, a path
that is a character device (made with mknod where root allows; a link to /dev/null otherwise),
a named pipe, a socket, a link to one of them, a link to nothing or a folder; refuses its own
input even with --force; and replaces an existing file of the user's only with --force.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from alexnet.atomic import atomic_path
from alexnet.cli import main
from alexnet.errors import UsageError

DATA = "shapes:train=128,test=32,size=32"
# each kind of path, and what the refusal calls it (a link is named by what it leads to)
SAID = {"character device": "a character device", "named pipe": "a named pipe", "socket": "a socket",
        "link to a pipe": "a named pipe", "link to /dev/null": "a character device",
        "link to nothing": "a link to nothing", "folder": "a folder"}
KINDS = tuple(SAID)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("outputs") / "run"
    assert main(["train", "--data", DATA, "--workers", "0", "--no-tensorboard", "--device", "cpu", "--model",
                 "alexnet_simple", "--batch-size", "64", "--epochs", "1", "--out", str(folder)]) == 0
    return folder


def make(kind: str, path: Path) -> Path:
    """The real thing of `kind` at `path`."""
    if kind == "character device":
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device's numbers
        except PermissionError:
            os.symlink("/dev/null", path)
    elif kind == "named pipe":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()  # the socket file stays
    elif kind == "link to a pipe":
        os.mkfifo(path.with_name(path.name + ".fifo"))
        os.symlink(path.name + ".fifo", path)
    elif kind == "link to /dev/null":
        os.symlink("/dev/null", path)
    elif kind == "link to nothing":
        os.symlink(path.name + ".missing", path)
    else:
        path.mkdir()
    return path


def identity(path: Path) -> tuple:
    st = os.lstat(path)
    return st.st_ino, st.st_mode, os.path.islink(path) and os.readlink(path)


WRITERS = {
    "export onnx": lambda run, out: ["export", str(run), "--format", "onnx", "--out", str(out), "--force"],
    "export pt2": lambda run, out: ["export", str(run), "--format", "pt2", "--out", str(out), "--force"],
    "export torchscript": lambda run, out: ["export", str(run), "--format", "torchscript", "--out", str(out),
                                            "--force"],
    "export safetensors": lambda run, out: ["export", str(run), "--format", "safetensors", "--out", str(out),
                                            "--force"],
    "eval --out": lambda run, out: ["eval", str(run), "--out", str(out.with_suffix(".png")), "--force"],
    "viz": lambda run, out: ["viz", "filters", "--checkpoint", str(run), "--out", str(out.with_suffix(".png")),
                             "--force"],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_refuses_what_is_not_a_regular_file_even_with_force(run, tmp_path, capsys, writer, kind):
    args = WRITERS[writer](run, tmp_path / "out")
    out = make(kind, Path(args[args.index("--out") + 1]))
    before = identity(out)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"is {SAID[kind]}, not a regular file" in err, err
    assert identity(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file


@pytest.mark.parametrize("kind", KINDS)
def test_reproduce_summary_refuses_what_is_not_a_regular_file_before_training(tmp_path, capsys, kind):
    summary = make(kind, tmp_path / "paper.md")
    before = identity(summary)
    code = main(["reproduce", "lrn", "--scale", "smoke", "--data", DATA, "--out", str(tmp_path / "out"),
                 "--summary", str(summary)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--summary" in err, err
    assert identity(summary) == before and not (tmp_path / "out").exists()


def test_reproduce_summary_keeps_a_users_file_and_rewrites_its_own(tmp_path, capsys):
    users = tmp_path / "README.md"
    users.write_text("# my notes\n")
    args = ["reproduce", "lrn", "--scale", "smoke", "--data", DATA, "--out", str(tmp_path / "out")]
    assert main([*args, "--summary", str(users)]) == 2
    assert "is not a summary of `alexnet reproduce`" in capsys.readouterr().err
    assert users.read_text() == "# my notes\n" and not (tmp_path / "out").exists()
    assert main(args) == 0 and main(args) == 0  # its own summary (OUT/paper.md) is rewritten on every run


@pytest.mark.parametrize("kind", ["character device", "named pipe", "socket", "link to nothing"])
def test_atomic_path_refuses_them_too(tmp_path, kind):
    """Under every writer: checkpoints, config.yaml, metrics, pictures, reports."""
    path = make(kind, tmp_path / "file")
    before = identity(path)
    with pytest.raises(UsageError, match="not a regular file; nothing was written"):
        with atomic_path(path) as tmp:
            Path(tmp).write_text("data")
    assert identity(path) == before and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_pipe_that_takes_the_name_during_the_work_is_not_replaced(tmp_path):
    path = tmp_path / "model.onnx"
    with pytest.raises(UsageError, match="is a named pipe"):
        with atomic_path(path) as tmp:
            Path(tmp).write_text("data")
            os.mkfifo(path)  # while the (minutes-long) work runs
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript", "safetensors"])
def test_export_never_writes_over_its_own_input_even_with_force(run, tmp_path, capsys, fmt):
    """`export X --out X --force` (and a link to X, and the default out of a .safetensors source)."""
    source = tmp_path / "model.pt"
    source.write_bytes((run / "best.pt").read_bytes())
    link = tmp_path / "link.pt"
    link.symlink_to(source)
    saved = source.read_bytes()
    for out in (source, link):
        assert main(["export", str(source), "--format", fmt, "--out", str(out), "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is the command's own input" in err, err
    assert main(["export", str(run), "--format", fmt, "--out", str(run / "best.pt"), "--force"]) == 2
    assert "own input" in capsys.readouterr().err
    assert source.read_bytes() == saved
    if fmt == "safetensors":
        assert main(["export", str(source), "--format", fmt, "--out", str(tmp_path / "w.safetensors")]) == 0
        assert main(["export", str(tmp_path / "w.safetensors"), "--format", fmt, "--force"]) == 2  # default out
        assert "own input" in capsys.readouterr().err


def test_eval_and_viz_never_write_over_their_own_input(run, capsys):
    for args in (["eval", str(run), "--out", str(run / "best.pt"), "--force"],
                 ["viz", "filters", "--checkpoint", str(run / "best.pt"), "--out", str(run / "best.pt"), "--force"]):
        saved = (run / "best.pt").read_bytes()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "own input" in err, err
        assert (run / "best.pt").read_bytes() == saved


@pytest.mark.parametrize("writer", ["export", "eval --out", "viz"])
def test_a_users_file_is_replaced_only_with_force(run, tmp_path, capsys, writer):
    out = tmp_path / ("mine.onnx" if writer == "export" else "mine.png")
    out.write_bytes(b"the user's")
    args = {"export": ["export", str(run), "--format", "onnx", "--out", str(out)],
            "eval --out": ["eval", str(run), "--out", str(out)],
            "viz": ["viz", "filters", "--checkpoint", str(run), "--out", str(out)]}[writer]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out} exists; pass --force" in err, err
    assert out.read_bytes() == b"the user's"
    assert main([*args, "--force"]) == 0 and out.read_bytes() != b"the user's"


def test_evals_default_picture_replaces_nothing_without_force_and_the_figures_still_print(run, capsys):
    assert main(["eval", str(run)]) == 0
    [default] = run.glob("confusion-val-*.png")  # the run's own view names it
    capsys.readouterr()
    default.write_bytes(b"the user's")
    assert main(["eval", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "top-1" in out and "confusion matrix:" not in out
    assert f"the confusion matrix was not drawn: {default} exists; pass --force" in err
    assert default.read_bytes() == b"the user's"
    assert main(["eval", str(run), "--force"]) == 0 and default.read_bytes()[:4] == b"\x89PNG"


def test_a_picture_never_replaces_an_image_in_a_folder_the_command_reads(run, tmp_path, capsys):
    """`viz predictions DIR --out DIR/x.png --force` replaced one of the images it had just read, and
    eval's --data folder the same; a file in a run folder the command reads only the checkpoints
    of (its filters.png) is still replaced with --force."""
    from PIL import Image

    images = tmp_path / "imgs"
    for split in ("train", "test"):
        (images / split / "red").mkdir(parents=True)
        Image.new("RGB", (32, 32), (200, 10, 10)).save(images / split / "red" / "0.png")
    mine = images / "test" / "red" / "0.png"
    before = mine.read_bytes()
    for args in (["viz", "predictions", str(images / "test"), "--checkpoint", str(run), "--out", str(mine), "--force"],
                 ["eval", str(run), "--data", f"folder:{images}", "--out", str(mine), "--force"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is the command's own input" in err, err
        assert mine.read_bytes() == before
    (run / "mine.png").write_bytes(b"old")
    assert main(["viz", "filters", "--checkpoint", str(run), "--out", str(run / "mine.png"), "--force"]) == 0
    assert (run / "mine.png").read_bytes()[:4] == b"\x89PNG"


def test_a_folder_holding_only_a_checkpoint_is_read_as_that_checkpoint(run, tmp_path, capsys):
    """A folder with best.pt and nothing else (not a run folder): export and viz read its checkpoint,
    so a picture or export beside it is a file of the user's (replaced with --force), not an input."""
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "best.pt").write_bytes((run / "best.pt").read_bytes())
    for args, name in ((["export", str(folder), "--format", "onnx"], "best.onnx"),
                       (["viz", "filters", "--checkpoint", str(folder), "--out", str(folder / "f.png")], "f.png")):
        assert main(args) == 0
        assert main(args) == 2 and "exists; pass --force" in capsys.readouterr().err
        assert main([*args, "--force"]) == 0, capsys.readouterr().err
        assert (folder / name).is_file()


def test_a_signal_during_an_import_is_the_signal_not_a_missing_package(monkeypatch):
    """pybind11 modules (onnxruntime, onnx) wrap whatever is raised while they initialise, a SIGTERM's
    Terminated included, in ImportError('initialization failed'): export's check then said
    "onnxruntime is not installed" and went on."""
    import builtins

    import torch

    from alexnet.cli import Terminated
    from alexnet.inference import export

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "onnxruntime":
            try:
                raise Terminated
            except Terminated as signal:
                raise ImportError("initialization failed") from signal
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(Terminated):
        export._check_onnx(Path("x.onnx"), torch.zeros(1, 3, 32, 32), torch.zeros(1, 10))


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A run trained on a folder of images (two classes), and that folder."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder-run")
    images = root / "imgs"
    for split in ("train", "val"):
        for name, colour in (("red", (200, 10, 10)), ("blue", (10, 10, 200))):
            (images / split / name).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (32, 32), colour).save(images / split / name / f"{i}.png")
    run = root / "run"
    assert main(["train", "--data", f"folder:{images}", "--model", "alexnet_simple", "--image-size", "32",
                 "--epochs", "1", "--batch-size", "8", "--workers", "0", "--no-tensorboard", "--device", "cpu",
                 "--out", str(run)]) == 0
    return run, images


def test_viz_reads_the_nets_own_data_when_no_data_is_given(folder_run, capsys):
    """viz confusion and neighbors read the data the net was trained on: a picture there replaced an image."""
    run, images = folder_run
    mine = images / "val" / "red" / "0.png"
    before = mine.read_bytes()
    for verb in ("confusion", "neighbors"):
        assert main(["viz", verb, "--checkpoint", str(run), "--device", "cpu", "--out", str(mine), "--force"]) == 2
        assert "is the command's own input" in capsys.readouterr().err
    assert mine.read_bytes() == before


def test_a_data_folder_given_with_a_tilde_is_the_same_folder(folder_run, monkeypatch, capsys):
    run, images = folder_run
    monkeypatch.setenv("HOME", str(images.parent))
    mine = images / "val" / "blue" / "1.png"
    before = mine.read_bytes()
    assert main(["eval", str(run), "--data", "folder:~/imgs", "--out", str(mine), "--force"]) == 2
    assert "is the command's own input" in capsys.readouterr().err and mine.read_bytes() == before


def test_option_values_are_not_taken_for_inputs(run, tmp_path, monkeypatch):
    """--title, --device or --mode naming a folder made any existing --out in it the command's input."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "f.png").write_bytes(b"old")
    assert main(["viz", "filters", "--checkpoint", str(run), "--device", "cpu", "--title", ".",
                 "--out", "cpu/f.png", "--force"]) == 0
