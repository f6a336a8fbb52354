"""viz.curves: overlaid training curves from metrics.jsonl records."""

import pytest
from PIL import Image

import alexnet.viz.curves as C
from alexnet.errors import UsageError
from alexnet.viz.curves import plot_curves


def records(n: int, lr: float = 0.01) -> list[dict]:
    return [{"epoch": e, "step": 10 * e, "lr": lr / 10 ** (e // 3), "train_loss": 2.0 / e, "train_top1": 0.1 * e,
             "images": 100, "seconds": 1.0, "images_per_s": 100.0, "val_loss": 2.2 / e, "val_top1": 0.08 * e,
             "val_top5": 0.3} for e in range(1, n + 1)]


def test_two_runs_and_a_single_epoch(tmp_path):
    partial = records(4)
    del partial[1]["val_loss"]  # a missing key is skipped, not an error
    path = plot_curves([("run-a", records(8)), ("run-b", partial)], tmp_path / "c.png", title="compare")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        assert im.size == (1800, 576)  # 15 x 4.8 inches at 120 dpi (constrained layout keeps the canvas)
    one = plot_curves([("one", records(1))], tmp_path / "deep" / "one.png")
    assert one.is_file() and one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors(tmp_path):
    with pytest.raises(UsageError, match=r"run-x: no epochs recorded \(metrics.jsonl is empty\)"):
        plot_curves([("ok", records(2)), ("run-x", [])], tmp_path / "c.png")
    with pytest.raises(UsageError):
        plot_curves([], tmp_path / "c.png")
    with pytest.raises(UsageError, match=r"\.png"):
        plot_curves([("ok", records(2))], tmp_path / "c.svg")
    assert not list(tmp_path.iterdir())


def test_one_epoch_is_ticked_as_a_whole_epoch(tmp_path, monkeypatch):
    """A first short run has one epoch: its x axis read 0.945 .. 1.050 in fractions of an epoch."""
    figs = []
    real = C.finish
    monkeypatch.setattr(C, "finish", lambda fig, path, **kw: (figs.append(fig), real(fig, path, **kw))[1])
    plot_curves([("one", records(1))], tmp_path / "one.png")
    for ax in figs[0].axes:
        assert list(ax.get_xticks()) == [1.0]
        assert ax.get_xlim() == (0.5, 1.5)
