"""viz.neighbors: nearest() against a brute-force double loop, and the Figure 4 (right) picture."""

import matplotlib.colors as mcolors
import numpy as np
import pytest
import torch
from PIL import Image

import alexnet.viz.neighbors as NB
from alexnet.errors import UsageError
from alexnet.viz.neighbors import nearest, plot_neighbors

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def drawn(drawn_by):
    """The figures alexnet.viz.neighbors saves (tests/viz/conftest.py)."""
    return drawn_by.setdefault("neighbors", [])


def brute(q: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance by a Python double loop, then the k smallest, lower index first on ties."""
    idx, dist = [], []
    for i in range(len(q)):
        d = [float(np.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(q[i], b[j])))) for j in range(len(b))]
        order = sorted(range(len(b)), key=lambda j: (d[j], j))[:k]
        idx.append(order)
        dist.append([d[j] for j in order])
    return np.array(idx), np.array(dist)


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(0)
    q, b = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(50, 16)).astype(np.float32) * 3
    want_i, want_d = brute(q, b, 6)
    idx, dist = nearest(q, b, k=6)
    assert idx.shape == (7, 6) and idx.dtype == np.int64 and dist.shape == (7, 6)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(dist, want_d, rtol=1e-6, atol=1e-6)
    ti, td = nearest(torch.from_numpy(q), torch.from_numpy(b), k=6)  # torch in, same answer
    np.testing.assert_array_equal(ti, idx)
    np.testing.assert_allclose(td, dist)
    assert np.all(np.diff(dist, axis=1) >= 0)  # nearest first


def test_nearest_ties_cap_and_self_match():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(4, 5)) * 10
    bank = np.concatenate([base, base[::-1], base])  # every vector three times: rows i, 7-i, 8+i
    idx, dist = nearest(base[1:2], bank, k=3)
    np.testing.assert_array_equal(idx, [[1, 6, 9]])  # equal distances: lower bank index first
    np.testing.assert_array_equal(dist, 0)  # exact, not ~1e-7 from |q|^2 + |b|^2 - 2 q.b
    idx, dist = nearest(base, base, k=10)  # k capped at N
    assert idx.shape == (4, 4)
    np.testing.assert_array_equal(idx[:, 0], np.arange(4))
    np.testing.assert_allclose(dist, brute(base, base, 4)[1], rtol=1e-12, atol=0)
    one, _ = nearest(base[2], base, k=1)  # a single vector is one query
    np.testing.assert_array_equal(one, [[2]])


def test_nearest_orders_near_duplicates_of_large_vectors():
    # norms ~1e4: |q|^2 + |b|^2 - 2 q.b alone has an error ~1e-8 in d^2, i.e. ~1e-4 in d near zero
    rng = np.random.default_rng(3)
    q = rng.normal(size=(1, 64)) * 1000
    step = np.zeros(64)
    step[5] = 1e-6
    bank = np.concatenate([q + step, q + 3 * step, q, q + 2 * step, q + 1.0])
    idx, dist = nearest(q, bank, k=5)
    np.testing.assert_array_equal(idx, [[2, 0, 3, 1, 4]])
    np.testing.assert_allclose(dist, [[0, 1e-6, 2e-6, 3e-6, 8]], rtol=1e-6, atol=0)


def test_nearest_bad_input():
    with pytest.raises(UsageError, match="3 features but the bank has 4"):
        nearest(np.zeros((2, 3)), np.zeros((5, 4)))
    with pytest.raises(UsageError, match="empty"):
        nearest(np.zeros((2, 3)), np.zeros((0, 3)))
    with pytest.raises(UsageError, match="k must be"):
        nearest(np.zeros((2, 3)), np.zeros((5, 3)), k=0)
    with pytest.raises(UsageError, match="2-D"):
        nearest(np.zeros((2, 3, 1)), np.zeros((5, 3)))


def pictures(q: int, k: int):
    rng = np.random.default_rng(2)
    queries = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(q)]
    neighbours = [[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(k)] for _ in range(q)]
    return queries, neighbours


def test_plot_neighbors_layout_and_titles(tmp_path, drawn):
    queries, neighbours = pictures(3, 6)
    labels = ["tabby cat", "African hunting dog, hyena dog, Cape hunting dog, Lycaon pictus", "dingo"]
    nlabels = [["tabby cat"] + ["lynx"] * 5, ["wolf"] * 6, ["dingo"] * 6]
    dist = np.arange(18, dtype=float).reshape(3, 6) / 7
    out = plot_neighbors(queries, neighbours, tmp_path / "n.png", query_labels=labels, neighbor_labels=nlabels,
                         distances=torch.tensor(dist))
    assert out.read_bytes()[:8] == PNG
    with Image.open(out) as im:
        w, h = im.size
    # 7 columns of 1.6 in plus gaps and the divider; 3 rows of 1.6 in plus gaps, heading, at 120 dpi
    assert 1400 <= w <= 1500 and 780 <= h <= 860
    fig = drawn[0]
    pics = [ax for ax in fig.axes if ax.images]
    assert len(pics) == 3 * 7
    assert pics[0].get_title() == "query\ntabby cat" and pics[7].get_title() == "query\nAfrican hunting dog"
    assert pics[1].get_title() == "tabby cat\nd = 0" and pics[2].get_title() == f"lynx\nd = {1 / 7:.3g}"
    assert mcolors.to_hex(pics[1].title.get_color()) == mcolors.to_hex(NB.SAME)  # same label as the query
    assert mcolors.to_hex(pics[2].title.get_color()) == mcolors.to_hex(NB.OTHER)
    divider = [ax for ax in fig.axes if not ax.images]
    assert len(divider) == 1 and divider[0].lines  # one line beside all rows
    assert fig._suptitle.get_text() == "3 queries and 6 nearest neighbours in feature space"


def test_plot_neighbors_without_labels(tmp_path, drawn):
    queries, neighbours = pictures(1, 2)
    out = plot_neighbors(queries, neighbours, tmp_path / "n.png", title="pixels")
    with Image.open(out) as im:
        w, h = im.size
    assert 500 <= w <= 700 and 300 <= h <= 360
    pics = [ax for ax in drawn[0].axes if ax.images]
    assert [ax.get_title() for ax in pics] == ["query", "", ""]
    assert drawn[0]._suptitle.get_text() == "pixels"


def test_plot_neighbors_bad_input(tmp_path):
    queries, neighbours = pictures(2, 3)
    with pytest.raises(UsageError, match="2 query images but 1 rows of neighbours"):
        plot_neighbors(queries, neighbours[:1], tmp_path / "n.png")
    with pytest.raises(UsageError, match="query labels"):
        plot_neighbors(queries, neighbours, tmp_path / "n.png", query_labels=["a"])
    with pytest.raises(UsageError, match="3 neighbours but 2 neighbour distances"):
        plot_neighbors(queries, neighbours, tmp_path / "n.png", distances=np.zeros((2, 2)))
    with pytest.raises(UsageError, match="neighbour labels"):
        plot_neighbors(queries, neighbours, tmp_path / "n.png", neighbor_labels=[["a"] * 3])
    with pytest.raises(UsageError, match="at least one"):
        plot_neighbors([], [], tmp_path / "n.png")
    with pytest.raises(UsageError, match="PNG"):
        plot_neighbors(queries, neighbours, tmp_path / "n.svg")
    assert not list(tmp_path.iterdir())
