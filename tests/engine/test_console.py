"""What a run says where no progress bar is drawn, the CPU threads it takes, and which views its
figures were measured with."""

from __future__ import annotations

import json
import os

import pytest
import torch

from alexnet.cli import main
from alexnet.config import make_config, read_yaml
from alexnet.engine import fast
from alexnet.engine.console import progress_line
from alexnet.engine.train import fit
from alexnet.errors import UsageError

SMALL = "shapes:train=256,test=64,size=32"


def config(tmp_path, **kw):
    return make_config(read_yaml("fast"), **{"data": SMALL, "workers": 0, "batch_size": 64, "tensorboard": False,
                                             "out": str(tmp_path / "run"), **kw})


def test_progress_lines_stand_in_for_the_bar_when_the_output_is_not_a_terminal(tmp_path, capsys):
    """pytest's captured stderr is no terminal: an interval that has always passed gives a line per
    step, with the batch, step, loss, images/s and the epoch's ETA; 0 gives none."""
    fit(config(tmp_path, epochs=1, progress_every=1e-9))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("epoch 1/1: batch")]
    assert [line.split(",")[0] for line in lines] == [f"epoch 1/1: batch {i}/4 ({i * 25}%)" for i in range(1, 5)]
    assert all(" img/s, epoch ETA " in line for line in lines)
    assert "a progress line every 1e-09 s (--progress-every SECONDS; 0 turns them off)" in err
    fit(config(tmp_path, epochs=1, progress_every=0, out=str(tmp_path / "quiet")))
    assert "batch 1/4" not in capsys.readouterr().err
    with pytest.raises(UsageError, match="progress_every must be >= 0"):
        config(tmp_path, progress_every=-1)


def test_progress_line_reads_its_figures():
    line = progress_line("epoch 2/8", batch=30, batches=120, step=150, loss=1.23456, rate=1402.4, eta=125.4)
    assert line == "epoch 2/8: batch 30/120 (25%), step 150, loss 1.2346, 1402 img/s, epoch ETA 2m05s"


def test_threads_asked_then_the_environment_then_the_idle_cores(monkeypatch):
    monkeypatch.delenv("ALEXNET_THREADS", raising=False)
    assert fast.compute_threads(3) == 3
    monkeypatch.setenv("ALEXNET_THREADS", "1")
    assert fast.compute_threads() == 1 and fast.compute_threads(2) == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("ALEXNET_THREADS", bad)
        with pytest.raises(UsageError, match=f"ALEXNET_THREADS must be a whole number .* got '{bad}'"):
            fast.compute_threads()
    monkeypatch.delenv("ALEXNET_THREADS")
    most = torch.get_num_threads()
    for idle, threads in ((0.2, 1), (0.6, 1), (most + 3.0, most)):
        monkeypatch.setattr(fast, "idle_cores", lambda idle=idle: idle)
        assert fast.compute_threads() == threads
    monkeypatch.setattr(fast, "idle_cores", lambda: None)  # not Linux: torch's default
    assert fast.compute_threads() == most
    # a deterministic run computes as its first session did, however busy the machine is now
    monkeypatch.setattr(fast, "idle_cores", lambda: 0.2)
    assert fast.compute_threads(deterministic=True) == most and fast.compute_threads(1, deterministic=True) == 1


def test_idle_cores_is_a_share_of_the_machine():
    idle = fast.idle_cores(0.05)
    assert idle is None or 0 <= idle <= (os.cpu_count() or 1)


def test_a_run_takes_its_threads_and_gives_them_back(tmp_path, capsys):
    before = torch.get_num_threads()
    result = fit(config(tmp_path, epochs=1, max_steps=1, threads=1))
    assert result["threads"] == 1 and torch.get_num_threads() == before
    assert "on cpu (1 CPU thread)" in capsys.readouterr().err
    with pytest.raises(UsageError, match="threads must be in"):
        config(tmp_path, threads=-1)


def test_every_figure_names_the_views_it_was_measured_with(tmp_path, capsys):
    """The run validates each epoch with the centre view and scores its end with its own (flip):
    the closing line names both, eval defaults to the run's own and says so, curves.png's legend
    names them."""
    run = tmp_path / "run"
    assert main(["train", "--data", SMALL, "--workers", "0", "--batch-size", "64", "--epochs", "1",
                 "--no-tensorboard", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "each epoch is validated with the centre view; the final score with the run's own views" in err
    assert "(centre view), final top-1" in out and "(image + mirror)" in out
    assert main(["eval", str(run), "--workers", "0", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert (scored["tta"], scored["tta_from"]) == ("flip", "the run's own")
    assert main(["eval", str(run), "--workers", "0", "--tta", "center", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tta_from"] == "as asked"

    from alexnet.engine.run_folder import read_metrics
    from alexnet.viz.curves import plot_curves

    fig = plot_curves([("run", read_metrics(run))], final={"epoch": 1, "top1": 0.5, "view": "flip"})
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "validation (centre view)" in texts and "final: 50.00% (image + mirror)" in texts
