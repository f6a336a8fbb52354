"""Training alexnet.scratch nets: the loss falls on a small problem; the package never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

from alexnet import scratch
from alexnet.models import build_model


def stripes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A two-class problem: horizontal against vertical stripes of random phase, plus noise."""
    y = rng.integers(0, 2, n)
    grid = np.arange(32)
    phase = rng.integers(0, 8, (n, 1, 1))
    horizontal = np.sin((grid[None, :, None] + phase) * np.pi / 4) * np.ones((1, 1, 32))  # n,32,32
    vertical = np.sin((grid[None, None, :] + phase) * np.pi / 4) * np.ones((1, 32, 1))
    img = np.where(y[:, None, None] == 0, horizontal, vertical)
    x = img[:, None] + 0.5 * rng.standard_normal((n, 3, 32, 32))  # N,3,32,32
    return x.astype(np.float32), y


def test_alexnet_simple_learns_a_two_class_problem():
    rng = np.random.default_rng(0)
    net = scratch.build("alexnet_simple", num_classes=2, seed=0)
    opt = scratch.SGD(net.params, lr=0.01, momentum=0.9, weight_decay=5e-4)  # the paper's recipe
    x_test, y_test = stripes(128, np.random.default_rng(1))
    accuracy_before = (scratch.evaluate_batch(net, x_test).argmax(1) == y_test).mean()
    losses = []
    for _ in range(30):
        x, y = stripes(32, rng)
        losses.append(scratch.train_step(net, x, y, opt, rng))
    assert all(np.isfinite(losses))
    # starts near ln 2 (the last layer is small), ends near 0
    assert losses[0] > 0.4 and np.mean(losses[-5:]) < 0.1, losses
    accuracy = (scratch.evaluate_batch(net, x_test).argmax(1) == y_test).mean()
    assert accuracy > 0.9 and accuracy > accuracy_before + 0.2, (accuracy_before, accuracy)


def test_training_follows_torch_step_by_step():
    """Ten SGD steps (momentum, weight decay, nesterov) from the same weights on the same batches,
    float64 and dropout off: the NumPy losses and weights track torch's."""
    net = scratch.build("alexnet_simple", num_classes=2, dropout=0.0, dtype=np.float64, seed=3)
    model = build_model("alexnet_simple", num_classes=2, dropout=0.0).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    settings = dict(lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    opt, topt = scratch.SGD(net.params, **settings), torch.optim.SGD(model.parameters(), **settings)
    rng = np.random.default_rng(3)
    for _ in range(10):
        x, y = stripes(16, rng)
        x = x.astype(np.float64)
        loss = scratch.train_step(net, x, y, opt, rng)
        topt.zero_grad()
        ref = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        ref.backward()
        topt.step()
        assert abs(loss - ref.item()) <= 1e-8 * abs(ref.item())
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(net.params[key], value.numpy(), rtol=1e-7, atol=1e-10)


def test_train_step_returns_the_loss_before_the_update():
    rng = np.random.default_rng(2)
    net = scratch.build("alexnet_mini", dropout=0.0)
    x, y = stripes(8, rng)
    loss_before, _ = scratch.loss_and_grads(net, x, y, rng)
    weights = net.state_dict()
    loss = scratch.train_step(net, x, y, scratch.SGD(net.params, lr=0.01), rng)
    assert loss == loss_before
    assert not np.array_equal(weights["features.conv1.weight"], net.params["features.conv1.weight"])


def test_scratch_never_imports_torch():
    code = (
        "import pkgutil, importlib, sys, alexnet.scratch as s\n"
        "names = [m.name for m in pkgutil.walk_packages(s.__path__, 'alexnet.scratch.')]\n"
        "assert names, 'no modules found'\n"
        "for name in names: importlib.import_module(name)\n"
        "s.build('alexnet_simple').forward(__import__('numpy').zeros((1, 3, 32, 32)))\n"
        "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')]\n"
        "print(len(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 4  # layers, nets, optim, train
