"""alexnet.scratch.layers against torch autograd (float64) and against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet.models.lrn import LocalResponseNorm
from alexnet.scratch import layers as L

TOL = 1e-8  # relative error allowed against torch in float64


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: the error relative to the reference's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def t64(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# ----------------------------------------------------------------------------- against torch autograd

CONV_CASES = [
    # N, C, H, W, F, kh, kw, stride, padding, groups
    (2, 3, 7, 9, 4, 3, 3, 1, 1, 1),
    (3, 4, 11, 10, 6, 5, 5, 2, 2, 2),  # alexnet2012 conv2-like: 5x5, groups 2
    (1, 6, 13, 13, 9, 4, 4, 3, 0, 3),  # even kernel, stride 3, three groups
    (2, 3, 23, 27, 8, 11, 11, 4, 0, 1),  # conv1-like: 11x11 stride 4
    (2, 5, 6, 5, 4, 3, 2, 1, 1, 1),  # non-square kernel, odd sizes
    (1, 4, 8, 8, 2, 1, 1, 2, 0, 2),  # 1x1, stride 2
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case):
    n, c, h, w, f, kh, kw, stride, padding, groups = case
    rng = np.random.default_rng(0)
    x, wt, b = randn(rng, n, c, h, w), randn(rng, f, c // groups, kh, kw), randn(rng, f)
    out, cache = L.conv2d_forward(x, wt, b, stride, padding, groups)
    xt, wtt, bt = t64(x), t64(wt), t64(b)
    ref = F.conv2d(xt, wtt, bt, stride=stride, padding=padding, groups=groups)
    assert rel_err(out, ref.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    ref.backward(torch.from_numpy(dout))
    dx, dw, db = L.conv2d_backward(dout, cache)
    assert rel_err(dx, xt.grad.numpy()) < TOL
    assert rel_err(dw, wtt.grad.numpy()) < TOL
    assert rel_err(db, bt.grad.numpy()) < TOL
    assert L.conv2d_backward(dout, cache, need_dx=False)[0] is None


def test_conv2d_without_bias_and_float32():
    rng = np.random.default_rng(1)
    x, wt = randn(rng, 2, 4, 9, 9).astype(np.float32), randn(rng, 6, 2, 3, 3).astype(np.float32)
    out, cache = L.conv2d_forward(x, wt, None, 2, 1, 2)
    assert out.dtype == np.float32
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(wt), None, stride=2, padding=1, groups=2)
    assert rel_err(out, ref.numpy()) < 1e-5
    assert L.conv2d_backward(np.ones_like(out), cache)[2] is None


def test_conv2d_rejects_mismatched_groups():
    with pytest.raises(ValueError, match="groups=2"):
        L.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3)), None, groups=2)


POOL_CASES = [
    # N, C, H, W, kernel, stride, padding
    (2, 3, 7, 9, 3, 2, 0),  # the paper's overlapping pool, odd sizes
    (2, 3, 8, 8, 3, 2, 1),  # alexnet_mini's padded 3/2 pool: 8 -> 4
    (2, 4, 9, 7, 2, 2, 0),  # non-overlapping, odd sizes drop the last row/column
    (1, 2, 13, 13, 3, 2, 0),  # 13 -> 6 as pool5 of alexnet2012
    (1, 2, 6, 5, 3, 1, 1),  # stride 1: every pixel in up to nine windows
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool2d_matches_torch(case, ties):
    n, c, h, w, k, s, p = case
    rng = np.random.default_rng(2)
    # with ties (few distinct values, as after a ReLU) the gradient must go where torch sends it
    x = rng.integers(-1, 2, (n, c, h, w)).astype(np.float64) if ties else randn(rng, n, c, h, w)
    out, cache = L.max_pool2d_forward(x, k, s, p)
    xt = t64(x)
    ref = F.max_pool2d(xt, k, s, p)
    assert rel_err(out, ref.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    ref.backward(torch.from_numpy(dout))
    assert rel_err(L.max_pool2d_backward(dout, cache), xt.grad.numpy()) < TOL


def torch_lrn_towers(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, towers: int) -> torch.Tensor:
    """Reference: torch's own F.local_response_norm on each tower's channels, concatenated."""
    return torch.cat([F.local_response_norm(part, size, alpha, beta, k) for part in x.chunk(towers, dim=1)], dim=1)


LRN_CASES = [
    # N, C, H, W, size, alpha, beta, k, towers
    (2, 7, 5, 6, 5, 1e-4, 0.75, 2.0, 1),  # the paper's constants
    (2, 7, 5, 6, 5, 0.5, 0.75, 1.0, 1),  # a large alpha makes the cross-channel term matter
    (2, 10, 4, 3, 5, 0.5, 0.75, 1.0, 2),  # two towers of 5 channels
    (1, 12, 3, 3, 4, 0.8, 0.6, 1.5, 2),  # even window: 2 before, 1 after
    (1, 3, 4, 4, 5, 0.5, 0.75, 1.0, 1),  # window wider than the channels
]


@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_matches_torch(case):
    n, c, h, w, size, alpha, beta, k, towers = case
    rng = np.random.default_rng(3)
    x = randn(rng, n, c, h, w) * 2
    out, cache = L.lrn_forward(x, size, alpha, beta, k, towers)
    xt = t64(x)
    ref = torch_lrn_towers(xt, size, alpha, beta, k, towers)
    assert rel_err(out, ref.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    ref.backward(torch.from_numpy(dout))
    assert rel_err(L.lrn_backward(dout, cache), xt.grad.numpy()) < TOL
    # and the project's module (what alexnet2012 uses) agrees
    module = LocalResponseNorm(size, alpha, beta, k, towers=towers)
    assert rel_err(out, module(torch.from_numpy(x)).numpy()) < TOL


def test_lrn_towers_keep_the_window_inside_a_tower():
    # a big activation in channel 3 (last of tower 0) must not change tower 1's channels
    x = np.ones((1, 8, 1, 1))
    y = x.copy()
    y[0, 3] = 100.0
    a, _ = L.lrn_forward(x, 5, 1.0, 0.75, 1.0, towers=2)
    b, _ = L.lrn_forward(y, 5, 1.0, 0.75, 1.0, towers=2)
    assert np.array_equal(a[0, 4:], b[0, 4:]) and not np.allclose(a[0, 1:3], b[0, 1:3])


@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_activations_match_torch(kind):
    rng = np.random.default_rng(4)
    x = randn(rng, 3, 4, 5, 6)
    x[0, 0, 0, :3] = 0.0  # ReLU's kink: torch's gradient there is 0
    forward, backward = (L.relu_forward, L.relu_backward) if kind == "relu" else (L.tanh_forward, L.tanh_backward)
    out, cache = forward(x)
    xt = t64(x)
    ref = torch.relu(xt) if kind == "relu" else torch.tanh(xt)
    assert rel_err(out, ref.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    ref.backward(torch.from_numpy(dout))
    assert rel_err(backward(dout, cache), xt.grad.numpy()) < TOL


def test_linear_and_flatten_match_torch():
    rng = np.random.default_rng(5)
    x, wt, b = randn(rng, 3, 4, 2, 5), randn(rng, 7, 40), randn(rng, 7)
    flat, fcache = L.flatten_forward(x)
    out, lcache = L.linear_forward(flat, wt, b)
    xt, wtt, bt = t64(x), t64(wt), t64(b)
    ref = F.linear(torch.flatten(xt, 1), wtt, bt)
    assert rel_err(out, ref.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    ref.backward(torch.from_numpy(dout))
    dflat, dw, db = L.linear_backward(dout, lcache)
    assert rel_err(L.flatten_backward(dflat, fcache), xt.grad.numpy()) < TOL
    assert rel_err(dw, wtt.grad.numpy()) < TOL
    assert rel_err(db, bt.grad.numpy()) < TOL


def test_cross_entropy_matches_torch():
    rng = np.random.default_rng(6)
    logits, y = randn(rng, 5, 7) * 10, rng.integers(0, 7, 5)  # large logits: the max-shift matters
    loss, cache = L.cross_entropy_forward(logits, y)
    lt = t64(logits)
    ref = F.cross_entropy(lt, torch.from_numpy(y))
    assert abs(loss - ref.item()) <= TOL * abs(ref.item())
    ref.backward()
    assert rel_err(L.cross_entropy_backward(1.0, cache), lt.grad.numpy()) < TOL
    with pytest.raises(ValueError, match="labels"):
        L.cross_entropy_forward(logits, y.astype(float))


def test_dropout_is_inverted_and_reproducible():
    x = np.ones((200, 500))
    out, cache = L.dropout_forward(x, 0.3, True, np.random.default_rng(7))
    kept = out != 0
    assert np.allclose(out[kept], 1 / 0.7)  # kept units scaled so the expectation is unchanged
    assert abs(1 - kept.mean() - 0.3) < 0.01
    again, _ = L.dropout_forward(x, 0.3, True, np.random.default_rng(7))
    assert np.array_equal(out, again)
    dout = np.random.default_rng(8).standard_normal(x.shape)
    assert np.array_equal(L.dropout_backward(dout, cache), dout * out)  # x is ones: out is the mask
    # test time, and p = 0, are the identity
    assert L.dropout_forward(x, 0.3, False, None)[0] is x
    assert L.dropout_forward(x, 0.0, True, None)[0] is x
    with pytest.raises(ValueError, match="rng"):
        L.dropout_forward(x, 0.3, True, None)


# ----------------------------------------------------------------------------- central finite differences


def numeric_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d a by central differences, one entry at a time (tiny arrays only)."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        plus = f()
        a[idx] = old - eps
        minus = f()
        a[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


FD_TOL = 1e-6


def check_fd(forward, backward, inputs: list[np.ndarray], seed: int = 0) -> None:
    """Compare backward(dout) with the finite-difference gradient of sum(forward(*inputs) * dout)."""
    out, _ = forward(*inputs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    _, cache = forward(*inputs)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for a, g in zip(inputs, grads):
        num = numeric_grad(lambda: float(np.sum(forward(*inputs)[0] * dout)), a)
        assert rel_err(g, num) < FD_TOL


def test_conv2d_finite_differences():
    rng = np.random.default_rng(10)
    x, wt, b = randn(rng, 2, 4, 5, 4), randn(rng, 4, 2, 3, 2), randn(rng, 4)
    check_fd(lambda x, w, b: L.conv2d_forward(x, w, b, 2, 1, 2), L.conv2d_backward, [x, wt, b])


def test_max_pool2d_finite_differences():
    rng = np.random.default_rng(11)
    x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.01  # distinct values: no ties near a kink
    check_fd(lambda x: L.max_pool2d_forward(x, 3, 2, 1), L.max_pool2d_backward, [x])


def test_lrn_finite_differences():
    rng = np.random.default_rng(12)
    x = randn(rng, 2, 6, 3, 2)
    check_fd(lambda x: L.lrn_forward(x, 3, 0.5, 0.75, 1.0, towers=2), L.lrn_backward, [x])


def test_linear_finite_differences():
    rng = np.random.default_rng(13)
    x, wt, b = randn(rng, 3, 5), randn(rng, 4, 5), randn(rng, 4)
    check_fd(L.linear_forward, L.linear_backward, [x, wt, b])


def test_cross_entropy_finite_differences():
    rng = np.random.default_rng(14)
    logits, y = randn(rng, 4, 5), np.array([0, 3, 3, 4])
    _, cache = L.cross_entropy_forward(logits, y)
    num = numeric_grad(lambda: L.cross_entropy_forward(logits, y)[0], logits)
    assert rel_err(L.cross_entropy_backward(1.0, cache), num) < FD_TOL
