"""Reliability (issue 5, docs/reliability.md): exact resume, signals, non-finite losses, damaged
or unwritable checkpoints. Everything trains alexnet_mini on a few hundred 32x32 shapes."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alexnet.cli import main as cli_main
from alexnet.config import make_config, read_yaml
from alexnet.data.transforms import TrainAugment
from alexnet.engine.checkpoint import load_checkpoint, save_checkpoint
from alexnet.engine.train import fit
from alexnet.errors import Interrupted, TrainingDiverged, UsageError

DATA = "shapes:train=320,test=80,size=32"  # 5 steps of 64 per epoch
TIMING = {"seconds", "images_per_s"}
ROOT = Path(__file__).resolve().parents[2]


def config(out: Path, **kw):
    return make_config(read_yaml("fast"), data=DATA, workers=0, tensorboard=False, deterministic=True, model="alexnet_mini",
                       out=str(out), **kw)


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert records(a) == records(b)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted 3-epoch run the resumed ones must equal."""
    out = tmp_path_factory.mktemp("straight") / "run"
    fit(config(out, epochs=3))
    return out


def augment_hook(monkeypatch, at: int, action) -> None:
    """Call action(x) on the `at`-th training batch (1-based): the augmentation runs once per step."""
    original, calls = TrainAugment.forward, [0]

    def forward(self, x):
        calls[0] += 1
        out = original(self, x)
        return action(out) if calls[0] == at else out

    monkeypatch.setattr(TrainAugment, "forward", forward)


class Crash(Exception):
    pass


def test_resume_after_an_epoch_is_exact(straight, tmp_path):
    # a crash after epoch 2's checkpoint (the same 3-epoch config: the one-cycle schedule spans the run)
    run = tmp_path / "run"

    def crash(record):
        if record["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        fit(config(run, epochs=3), on_epoch=crash)
    saved = torch.load(run / "last.pt", map_location="cpu", weights_only=True)  # RNG states included, weights_only
    assert saved["epoch"] == 2 and set(saved["rng"]) == {"torch", "cuda", "numpy", "python"}
    fit(make_config(saved["config"], resume=str(run)))
    assert_same_run(straight, run)


def test_a_signal_mid_epoch_saves_and_resume_is_exact(straight, tmp_path, monkeypatch):
    run = tmp_path / "run"

    def send(x):
        signal.raise_signal(signal.SIGINT)  # the handler only sets a flag: this step still finishes
        return x

    augment_hook(monkeypatch, 7, send)  # epoch 2, batch 2
    with pytest.raises(Interrupted, match=r"SIGINT at step 7 \(epoch 2, batch 2 of 5\).*--resume") as e:
        fit(config(run, epochs=3))
    assert e.value.exit_code == 130
    saved = load_checkpoint(run, prefer="last")
    assert saved["epoch"] == 1 and saved["step"] == 7 and saved["partial"]["batches"] == 2
    monkeypatch.undo()
    fit(make_config(saved["config"], resume=str(run)))
    assert_same_run(straight, run)


def test_sigterm_from_outside_then_resume_finishes(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "alexnet", "train", "--data", DATA, "--workers", "0", "--no-tensorboard", "--epochs", "40", "--out", str(run)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines = []
    for line in proc.stderr:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("epoch 1/40"):
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, "".join(lines) + rest
    assert f"alexnet train --resume {run}" in rest
    saved = load_checkpoint(run, prefer="last")
    assert 1 <= saved["epoch"] < 40
    done = subprocess.run([sys.executable, "-m", "alexnet", "train", "--resume", str(run), "--epochs", str(saved["epoch"] + 1)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run, prefer="last")["epoch"] == saved["epoch"] + 1


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    augment_hook(monkeypatch, 8, lambda x: x * float("nan"))  # epoch 2, batch 3
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 8 \(lr .*\); the last good checkpoint is .*last.pt"):
        fit(config(run, epochs=3))
    assert load_checkpoint(run, prefer="last")["epoch"] == 1
    # the CLI: one line, exit 1
    monkeypatch.setattr(TrainAugment, "forward", lambda self, x: x.float() * float("nan"))
    code = cli_main(["train", "--data", DATA, "--workers", "0", "--no-tensorboard", "--epochs", "1", "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("alexnet train: error: loss is nan at step 1") and "no checkpoint was written" in err[-1]


def test_skip_nonfinite_skips_and_counts_the_batch(tmp_path, monkeypatch):
    run = tmp_path / "run"
    augment_hook(monkeypatch, 3, lambda x: x * float("nan"))
    result = fit(config(run, epochs=2, skip_nonfinite=True))
    log = records(run)
    assert [r["nonfinite"] for r in log] == [1, 0]
    assert result["steps"] == 9  # 10 batches, one skipped: no optimizer step
    assert all(torch.isfinite(t).all() for t in weights(run).values())


def test_resume_falls_back_to_best_when_last_is_damaged(tmp_path, capsys):
    run = tmp_path / "run"
    fit(config(run, epochs=1))
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])  # truncated
    ckpt = load_checkpoint(run, prefer="last")
    assert ckpt["path"] == str(run / "best.pt")
    assert f"warning: cannot load checkpoint {run / 'last.pt'}" in capsys.readouterr().err
    with pytest.raises(UsageError, match=f"cannot load checkpoint {run / 'last.pt'}"):
        load_checkpoint(run / "last.pt")
    fit(make_config(ckpt["config"], epochs=2, resume=str(run)))
    assert load_checkpoint(run, prefer="last")["epoch"] == 2


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"a": torch.ones(2)})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # what alexnet.atomic calls before the rename
    with pytest.raises(UsageError, match=r"cannot write checkpoint .*last.pt: No space left on device; the previous last.pt is intact"):
        save_checkpoint(path, {"a": torch.zeros(2)})
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_numpy_backend_signal_redoes_the_epoch_exactly_and_stops_on_nan(tmp_path, monkeypatch):
    def numpy_config(out, **kw):
        return make_config(read_yaml("numpy"), data="shapes:train=128,test=64,size=32", model="alexnet_mini", workers=0,
                           tensorboard=False, epochs=2, out=str(out), **kw)

    fit(numpy_config(tmp_path / "straight"))

    def send(x):
        signal.raise_signal(signal.SIGTERM)
        return x

    augment_hook(monkeypatch, 3, send)  # epoch 2, batch 1: its progress is dropped, resume redoes epoch 2
    with pytest.raises(Interrupted, match="SIGTERM in epoch 2; epoch 2 will be redone") as e:
        fit(numpy_config(tmp_path / "run"))
    assert e.value.exit_code == 143 and load_checkpoint(tmp_path / "run", prefer="last")["epoch"] == 1
    monkeypatch.undo()
    fit(make_config(load_checkpoint(tmp_path / "run", prefer="last")["config"], resume=str(tmp_path / "run")))
    assert_same_run(tmp_path / "straight", tmp_path / "run")

    augment_hook(monkeypatch, 2, lambda x: x * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 2 \(lr .*\); no checkpoint was written"):
        fit(numpy_config(tmp_path / "nan"))
