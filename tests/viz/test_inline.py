"""Without a path, every plot_* function returns its matplotlib Figure (a notebook shows it
inline) and writes nothing; the figure is closed for pyplot, so a notebook shows it only once."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from alexnet.viz.confusion import plot_confusion
from alexnet.viz.curves import plot_curves
from alexnet.viz.features import plot_features
from alexnet.viz.figure import pyplot
from alexnet.viz.filters import plot_filters
from alexnet.viz.heatmap import plot_heatmap
from alexnet.viz.predictions import plot_prediction_grid, plot_top5

IMAGE = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
TOPK = [{"class": f"c{i}", "index": i, "prob": p} for i, p in enumerate((0.5, 0.3, 0.2))]
RECORDS = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "train_top1": 0.3 * e, "val_top1": 0.25 * e,
            "lr": 0.01}
           for e in (1, 2, 3)]
DRAWINGS = {
    "filters": lambda: plot_filters(torch.randn(8, 3, 5, 5), title="t"),
    "curves": lambda: plot_curves([("run", RECORDS)], title="t"),
    "confusion": lambda: plot_confusion(np.eye(3) * 5, ["a", "b", "c"]),
    "features": lambda: plot_features(IMAGE, torch.rand(8, 6, 6), layer="relu1"),
    "heatmap": lambda: plot_heatmap(torch.softmax(torch.randn(20), 0), [f"c{i}" for i in range(20)], image=IMAGE),
    "prediction grid": lambda: plot_prediction_grid([IMAGE, IMAGE], [TOPK, TOPK]),
    "top-5": lambda: plot_top5([IMAGE], [TOPK]),
}


@pytest.mark.parametrize("name", sorted(DRAWINGS))
def test_without_a_path_a_figure_is_returned_and_nothing_written(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_before = pyplot().get_fignums()
    fig = DRAWINGS[name]()
    assert isinstance(fig, Figure) and fig.axes
    assert pyplot().get_fignums() == open_before  # closed for pyplot: displayed once, as the cell's value
    assert list(tmp_path.iterdir()) == []
    png = tmp_path / "again.png"
    fig.savefig(png)  # still drawable, as IPython's display does
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
