"""Reliability (issue 5, docs/reliability.md): exact resume, signals, non-finite losses, damaged
or unwritable checkpoints. Everything trains alexnet_mini on a few hundred 32x32 shapes."""

import errno
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet import fit  # the public fit: the engine's, and the run's pictures
from alexnet.cli import main as cli_main
from alexnet.config import make_config, read_yaml
from alexnet.data.transforms import TrainAugment
from alexnet.engine.checkpoint import load_checkpoint, save_checkpoint
from alexnet.errors import Interrupted, TrainingDiverged, UsageError

DATA = "shapes:train=320,test=80,size=32"  # 5 steps of 64 per epoch
TIMING = {"seconds", "images_per_s"}
ROOT = Path(__file__).resolve().parents[2]


def config(out: Path, **kw):
    return make_config(read_yaml("fast"), data=DATA, workers=0, tensorboard=False, deterministic=True,
                       model="alexnet_mini", batch_size=64, out=str(out), **kw)


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


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
    # the epoch done is drawn, as a finished run's would be
    assert all((run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in ("curves.png", "filters.png"))
    monkeypatch.undo()
    fit(make_config(saved["config"], resume=str(run)))
    assert_same_run(straight, run)


def test_sigterm_from_outside_then_resume_finishes(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "alexnet", "train", "--data", DATA, "--workers", "0", "--no-tensorboard", "--epochs",
           "40", "--out", str(run)]
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
    done = subprocess.run([sys.executable, "-m", "alexnet", "train", "--resume", str(run),
                           "--epochs", str(saved["epoch"] + 1)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run, prefer="last")["epoch"] == saved["epoch"] + 1


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    augment_hook(monkeypatch, 8, lambda x: x * float("nan"))  # epoch 2, batch 3
    with pytest.raises(TrainingDiverged,
                       match=r"loss is nan at step 8 \(lr .*\); the last good checkpoint is .*last.pt"):
        fit(config(run, epochs=3))
    assert load_checkpoint(run, prefer="last")["epoch"] == 1
    # the CLI: one line, exit 1
    monkeypatch.setattr(TrainAugment, "forward", lambda self, x: x.float() * float("nan"))
    code = cli_main(["train", "--data", DATA, "--workers", "0", "--no-tensorboard", "--epochs", "1",
                     "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("alexnet train: error: loss is nan at step 1")
    assert "no checkpoint was written" in err[-1]


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
    with pytest.raises(UsageError,
                       match=r"cannot write checkpoint .*last.pt: No space left on device; the previous last.pt is "
                             r"intact"):
        save_checkpoint(path, {"a": torch.zeros(2)})
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_numpy_backend_signal_saves_mid_epoch_and_resume_is_exact_and_stops_on_nan(tmp_path, monkeypatch):
    """The NumPy backend runs in the one training loop: a signal saves the epoch's progress, the
    weights, momentum and the dropout generator, and resume continues at the next batch."""
    def numpy_config(out, **kw):
        return make_config(read_yaml("numpy"), data="shapes:train=128,test=64,size=32", model="alexnet_mini", workers=0,
                           tensorboard=False, epochs=2, out=str(out), **kw)

    fit(numpy_config(tmp_path / "straight"))

    def send(x):
        signal.raise_signal(signal.SIGTERM)
        return x

    augment_hook(monkeypatch, 3, send)  # epoch 2, batch 1: saved mid-epoch, resume goes on with batch 2
    with pytest.raises(Interrupted, match=r"SIGTERM at step 3 \(epoch 2, batch 1 of 2\)") as e:
        fit(numpy_config(tmp_path / "run"))
    saved = load_checkpoint(tmp_path / "run", prefer="last")
    assert e.value.exit_code == 143 and saved["epoch"] == 1 and saved["partial"]["batches"] == 1
    monkeypatch.undo()
    fit(make_config(load_checkpoint(tmp_path / "run", prefer="last")["config"], resume=str(tmp_path / "run")))
    assert_same_run(tmp_path / "straight", tmp_path / "run")

    augment_hook(monkeypatch, 2, lambda x: x * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 2 \(lr .*\); no checkpoint was written"):
        fit(numpy_config(tmp_path / "nan"))


# ---- SIGKILL at random moments -----------------------------------------------------------------
# A child process trains (or resumes) the `straight` run and kills itself with SIGKILL, which no
# handler can catch, at a chosen moment: inside a training step, inside a validation batch, in
# the middle of writing a checkpoint (half the bytes in the temporary file), or with a file
# complete but not yet renamed into place. The children fork from a forkserver that imported
# torch once (a new interpreter each would cost ~5 s here; a fork of pytest itself deadlocks in
# OpenMP, whose thread pool the parent has already started).

EPOCHS, STEPS_PER_EPOCH, VAL_BATCHES = 3, 5, 2  # DATA at batch 64: 320/64 and ceil(80/64)
PHASES = ("step", "validation", "write", "rename")


def _train_and_die(run: Path, phase: str, at: int) -> None:
    """The child: patch the moment in, train or resume, SIGKILL itself at the `at`-th moment."""
    import alexnet.atomic
    from alexnet.data.transforms import EvalViews

    count = [0]

    def moment() -> None:
        count[0] += 1
        if count[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    def before(cls, name):
        original = getattr(cls, name)

        def wrapped(*args, **kwargs):
            moment()
            return original(*args, **kwargs)
        setattr(cls, name, wrapped)

    if phase == "step":
        before(TrainAugment, "forward")  # runs once per training step, before forward/backward
    elif phase == "validation":
        before(EvalViews, "forward")  # once per validation batch
    elif phase == "rename":
        before(alexnet.atomic.os, "replace")  # the temporary file is complete and fsynced, not yet in place
    else:
        save = torch.save

        def half_written(obj, f, *args, **kwargs):  # a checkpoint cut off half-way through
            save(obj, f, *args, **kwargs)
            if count[0] + 1 == at:
                with open(f, "r+b") as fh:
                    fh.truncate(os.path.getsize(f) // 2)
            moment()
        torch.save = half_written
    code = 1
    try:
        started = (run / "config.yaml").exists()
        code = cli_main(["train", "--resume", str(run)]) if started else (fit(config(run, epochs=EPOCHS)) and 0)
    finally:
        os._exit(code)


def _remaining(run: Path, phase: str) -> int:
    """How many `phase` moments a resumed child is sure to meet before the final checkpoint is in place."""
    done = int(load_checkpoint(run, prefer="last")["epoch"]) if any(run.glob("*.pt")) else 0
    left = EPOCHS - done
    return {"step": left * STEPS_PER_EPOCH, "validation": left * VAL_BATCHES,
            "write": left, "rename": 1 + left}[phase]  # config.yaml, then last.pt each epoch (best.pt maybe)


def test_sigkill_at_20_random_moments_then_resume_finishes_exactly(straight, tmp_path):
    run = tmp_path / "run"
    rng = random.Random(5)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["alexnet.cli", "alexnet.engine.train"])
    kills = []
    for i in range(20):
        phase = rng.choice(PHASES) if i else "step"  # the first, in epoch 1: before any checkpoint exists
        at = rng.randint(1, _remaining(run, phase) if i else STEPS_PER_EPOCH)
        child = ctx.Process(target=_train_and_die, args=(run, phase, at))
        child.start()
        child.join(timeout=300)
        assert child.exitcode == -signal.SIGKILL, f"{phase} #{at}: exit {child.exitcode}"
        kills.append((phase, at))
        if any(run.glob("*.pt")):  # whatever was cut off, what is in place loads
            load_checkpoint(run, prefer="last")
            assert all(torch.load(p, weights_only=True)["format"] for p in run.glob("*.pt"))
    assert {p for p, _ in kills} == set(PHASES)
    finisher = ctx.Process(target=_train_and_die, args=(run, "step", 10**9))
    finisher.start()
    finisher.join(timeout=300)
    assert finisher.exitcode == 0
    assert_same_run(straight, run)  # same weights bit for bit, same metrics.jsonl records
    assert not list(run.glob(".*.tmp"))  # the killed writers' temporary files were cleared


def test_ctrl_c_with_data_loading_workers(tmp_path):
    """Ctrl-C in a terminal signals the whole process group, the DataLoader workers included: the
    main process alone reacts (one notice, not one per worker), finishes the step, saves, exits 130."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "mid", "light")):
        for split, n in (("train", 96), ("test", 24)):
            folder = tmp_path / "photos" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray((rng.random((32, 32, 3)) * 60 + 80 * c).astype(np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "alexnet", "train", "--data", f"folder:{tmp_path / 'photos'}",
           "--model", "alexnet_simple", "--workers", "2", "--batch-size", "8", "--no-tensorboard", "--epochs", "30",
           "--out", str(run)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True)
    lines = []
    for line in proc.stderr:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("epoch 1/30"):
            time.sleep(0.5)  # epoch 2's workers are running by now (its 36 steps take a few seconds)
            os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: to every process of the group
            break
    rest = proc.communicate(timeout=120)[1]
    log = "".join(lines) + rest
    assert proc.returncode == 130, log
    assert "Traceback" not in log and "DataLoader worker" not in log, log
    assert rest.count("SIGINT: finishing this step") == 1, log
    saved = load_checkpoint(run, prefer="last")
    assert saved["epoch"] >= 1
    done = subprocess.run([sys.executable, "-m", "alexnet", "train", "--resume", str(run),
                           "--epochs", str(saved["epoch"] + 1), "--workers", "2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run, prefer="last")["epoch"] == saved["epoch"] + 1
