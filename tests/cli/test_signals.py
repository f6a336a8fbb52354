"""A real SIGTERM to a real `alexnet` process, in the middle of its longest work.

- export: the temporary file is made before the (minutes-long, for a big net) tracing; SIGTERM
  used to kill the process and leave `.NAME.XXXXXXXX.tmp` behind. Now it unwinds: no temporary
  file, no output, exit 143, one line.
- training: SIGTERM during validation used to wait for the whole validation (444 s for a vgg16
  run under `timeout 60`). Now validation stops after its current batch, the epoch's training is
  saved in last.pt, and --resume validates it and goes on.

No test measures time: each shows the behaviour that makes the answer prompt (the work cut short,
and said so), not a duration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from alexnet.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def _wait(check, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)


@pytest.fixture(scope="module")
def big_weights(tmp_path_factory) -> Path:
    """alexnet2012's 61M weights (untrained) as our .safetensors: tracing it takes seconds."""
    from alexnet.inference.weights import describe_model, save_safetensors
    from alexnet.models import build_model

    torch.manual_seed(0)
    return save_safetensors(describe_model(build_model("alexnet2012"), source="test"),
                            tmp_path_factory.mktemp("big") / "alexnet2012.safetensors")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_sigterm_during_export_leaves_no_temporary_file(big_weights, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnx")
    out = tmp_path / f"net.{fmt}"
    proc = subprocess.Popen([sys.executable, "-m", "alexnet", "export", str(big_weights), "--format", fmt,
                             "--out", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: any(tmp_path.glob(f".{out.name}.*.tmp")), proc)  # the work is under way
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["alexnet export: stopped by SIGTERM; no file was left half-written"], err
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_validation_stops_it_saves_the_epoch_and_resume_validates_it(tmp_path):
    """One training batch, then a validation of 2,000 images in 125 batches: the signal comes as
    validation starts (the real `score` is wrapped to say so on stderr)."""
    run = tmp_path / "run"
    args = ["train", "--model", "alexnet_simple", "--data", "shapes:train=16,test=2000,size=32", "--batch-size", "16",
            "--epochs", "2", "--workers", "0", "--no-tensorboard", "--device", "cpu", "--out", str(run)]
    script = textwrap.dedent(f"""
        import sys
        import alexnet.engine.train as train
        real = train.score
        def score(*a, **k):
            print("VALIDATING", file=sys.stderr, flush=True)
            return real(*a, **k)
        train.score = score
        from alexnet.cli import main
        sys.exit(main({args!r}))
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        while (line := proc.stderr.readline()) and "VALIDATING" not in line:
            pass
        assert line, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM while validating epoch 1" in err, err
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 0 and state["step"] == 1 and state["partial"]["batches"] == 1  # the epoch's one batch
    assert not (run / "metrics.jsonl").exists() or (run / "metrics.jsonl").read_text() == ""
    assert main(["train", "--resume", str(run)]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [1, 2]
