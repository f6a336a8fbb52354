"""A real full disk and a real read-only folder (issue 16): small tmpfs mounts made by the test.

Every writer ends in one line and exit 2, the previous file intact and no temporary file left
(atomic.py, engine/checkpoint.py); eval prints its figures before the picture's failure, which
is one warning. Mounting needs root (CI runs as root); elsewhere these tests skip saying so.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alexnet.cli import main as cli_main

DATA = "shapes:train=128,test=32,size=32"
QUICK = ["--data", DATA, "--workers", "0", "--device", "cpu", "--model", "alexnet_simple", "--batch-size", "64"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs folder of that size (`64k`, `30m`), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): "
                        "a real full disk needs root")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def read_only(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


def fill(disk: Path) -> None:
    """Write zeros until the filesystem is full (ENOSPC), as a disk that filled up would be."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(bytes(1 << 20))
                f.flush()
        except OSError:
            pass


def files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the marker's, which a run rewrites with its PID as it takes the lock."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".alexnet-run"}


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*.tmp")]


def one_line(capsys, code: int, verb: str, *words: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith(f"alexnet {verb}: error: cannot write"), (code, err)
    assert all(w in last for w in words), last
    return last


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One finished epoch on an ordinary disk, to copy onto the small ones."""
    out = tmp_path_factory.mktemp("ordinary") / "run"
    assert cli_main(["train", *QUICK, "--epochs", "1", "--no-tensorboard", "--out", str(out)]) == 0
    return out


def test_a_disk_too_small_for_the_first_checkpoint(tmpfs, capsys):
    disk = tmpfs("96k")  # config.yaml, metrics and TensorBoard's events fit; a 14 MB checkpoint does not
    code = cli_main(["train", *QUICK, "--epochs", "1", "--out", str(disk / "r")])
    one_line(capsys, code, "train", "checkpoint", "last.pt", "No space left on device", "no file was written")
    assert temporaries(disk) == [] and not (disk / "r" / "last.pt").exists()


def test_a_disk_that_fills_up_in_the_second_epoch_keeps_the_first(tmpfs, capsys, run):
    size = (run / "last.pt").stat().st_size
    disk = tmpfs(f"{int(2.5 * size) // 1024}k")  # epoch 1's last.pt and best.pt fit; epoch 2's temporary file does not
    code = cli_main(["train", *QUICK, "--epochs", "3", "--out", str(disk / "r")])
    one_line(capsys, code, "train", "checkpoint", "No space left on device", "the previous last.pt is intact")
    assert temporaries(disk) == []
    state = torch.load(disk / "r" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 1


@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_resume_on_a_full_or_read_only_disk_touches_nothing(tmpfs, capsys, run, trouble):
    disk = tmpfs("40m")
    copy = disk / "r"
    copy.mkdir()
    for name, data in {**files(run), ".alexnet-run": b"{}"}.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    fill(disk) if trouble == "full" else read_only(disk)
    before = files(copy)
    code = cli_main(["train", "--resume", str(copy), "--epochs", "2"])
    one_line(capsys, code, "train", "No space left on device" if trouble == "full" else "Read-only file system")
    assert files(copy) == before and temporaries(disk) == []


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_export_to_a_full_or_read_only_disk(tmpfs, capsys, run, fmt, trouble):
    """TorchScript on a full disk runs in a child process: torch.jit.save to a file aborts the
    process there (exit 134), which would take pytest with it if the export still did that."""
    disk = tmpfs("40m")
    fill(disk) if trouble == "full" else read_only(disk)
    args = ["export", str(run), "--format", fmt, "--out", str(disk / f"net.{fmt}")]
    if fmt == "torchscript" and trouble == "full":
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        done = subprocess.run([sys.executable, "-m", "alexnet", *args], capture_output=True, text=True, env=env,
                              timeout=300)
        code, err = done.returncode, done.stderr
    else:
        code, err = cli_main(args), capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, (code, err[-2000:])
    last = err.strip().splitlines()[-1]
    assert last.startswith("alexnet export: error: cannot write") and "no file was written" in last, last
    assert ("No space left on device" if trouble == "full" else "Read-only file system") in last
    assert sorted(p.name for p in disk.iterdir()) == (["filler"] if trouble == "full" else [])


@pytest.mark.parametrize("json_out", [False, True])
def test_eval_of_a_read_only_run_prints_its_figures_and_warns_about_the_picture(tmpfs, capsys, run, json_out):
    disk = tmpfs("40m")
    copy = disk / "r"
    copy.mkdir()
    (copy / "best.pt").write_bytes((run / "best.pt").read_bytes())
    read_only(disk)
    code = cli_main(["eval", str(copy), "--workers", "0", *(["--json"] if json_out else [])])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(
        "alexnet eval: warning: the confusion matrix was not drawn: cannot write")
    assert "Read-only file system" in err
    if json_out:
        result = json.loads(out)
        assert result["confusion_png"] is None and 0 <= result["top1"] <= 1
    else:
        assert "top-1" in out and "confusion matrix:" not in out


def test_a_picture_on_a_full_disk(tmpfs, capsys, run):
    disk = tmpfs("1m")
    fill(disk)
    code = cli_main(["viz", "filters", "--checkpoint", str(run), "--out", str(disk / "f.png")])
    one_line(capsys, code, "viz", "No space left on device", "no file was written")
    assert temporaries(disk) == []


def test_training_pictures_on_a_full_disk_are_a_warning(tmpfs, capsys, monkeypatch):
    """The run's own pictures are drawn last: a disk full by then costs them, not the run."""
    disk = tmpfs("40m")
    from alexnet.viz import run as train  # the run's pictures, drawn last

    real = train.draw_run_pictures

    def fill_then_draw(*args):
        fill(disk)
        real(*args)

    monkeypatch.setattr(train, "draw_run_pictures", fill_then_draw)
    code = cli_main(["train", *QUICK, "--epochs", "1", "--no-tensorboard", "--out", str(disk / "r")])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    assert "warning: curves.png was not drawn: cannot write" in err and "No space left on device" in err
    assert torch.load(disk / "r" / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 1
