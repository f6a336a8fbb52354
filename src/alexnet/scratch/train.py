"""The NumPy training loop's pieces: one SGD step on a batch, and logits for evaluation.

A step is the paper's (Krizhevsky et al. 2012, section 5): forward with dropout on, the mean
softmax cross-entropy over the batch, backward, one SGD update. Batches are float32 N,C,H,W
arrays, already normalised, and integer labels; any loader that yields numpy arrays drives it:

    net, opt, rng = build("alexnet_simple"), SGD(net.params, lr=0.01, momentum=0.9), np.random.default_rng(0)
    for x, y in batches:
        loss = train_step(net, x, y, opt, rng)
"""

from __future__ import annotations

import numpy as np

from alexnet.scratch import layers as L
from alexnet.scratch.nets import Net
from alexnet.scratch.optim import SGD


def loss_and_grads(
    net: Net, x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None, train: bool = True
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of the batch and its gradient with respect to every parameter."""
    logits, caches = net.forward(x, train=train, rng=rng)  # N,K
    loss, loss_cache = L.cross_entropy_forward(logits, y)
    dlogits = L.cross_entropy_backward(1.0, loss_cache)  # N,K
    return loss, net.backward(dlogits, caches)


def train_step(net: Net, x: np.ndarray, y: np.ndarray, opt: SGD, rng: np.random.Generator) -> float:
    """One SGD step on the batch x: N,C,H,W, y: N; returns the batch's mean loss before the step."""
    loss, grads = loss_and_grads(net, x, y, rng, train=True)
    opt.step(grads)
    return loss


def evaluate_batch(net: Net, x: np.ndarray) -> np.ndarray:
    """Logits N,num_classes with dropout off (the test-time net)."""
    logits, _ = net.forward(x, train=False)
    return logits
