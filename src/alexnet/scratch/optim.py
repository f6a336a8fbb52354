"""Stochastic gradient descent with momentum and weight decay, exactly as torch.optim.SGD.

The paper (Krizhevsky et al. 2012, section 5) trains with momentum 0.9 and weight decay 0.0005:

    v <- 0.9 v - 0.0005 lr w - lr grad,    w <- w + v

torch.optim.SGD (and so this class) folds the learning rate out of the buffer instead, which is
the same update while lr is constant:

    g <- grad + weight_decay * w            (decay added to the gradient)
    b <- g on the first step, else momentum * b + (1 - dampening) * g
    g <- g + momentum * b if nesterov else b
    w <- w - lr * g
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Updates a dict of parameters in place from a dict of gradients with the same keys.

    lr may be changed between steps (a schedule sets opt.lr), as torch's param_groups[0]["lr"].
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        dampening: float = 0.0,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0 (got {lr}, {momentum}, {weight_decay})")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.dampening = dampening
        self.buffers: dict[str, np.ndarray] = {}  # momentum buffers, created on the first step

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient in `grads`."""
        for key, grad in grads.items():
            p = self.params[key]
            g = grad + self.weight_decay * p if self.weight_decay else grad
            if self.momentum:
                buf = self.buffers.get(key)
                if buf is None:
                    buf = self.buffers[key] = np.array(g, dtype=p.dtype)  # torch: a clone, no dampening
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= self.lr * g

    def state_dict(self) -> dict[str, object]:
        """The hyper-parameters and copies of the momentum buffers, to resume training."""
        hyper = dict(
            lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov,
            dampening=self.dampening,
        )
        return {**hyper, "buffers": {key: buf.copy() for key, buf in self.buffers.items()}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        for name in ("lr", "momentum", "weight_decay", "nesterov", "dampening"):
            setattr(self, name, state[name])
        self.buffers = {key: np.array(buf, dtype=self.params[key].dtype) for key, buf in state["buffers"].items()}
