"""alexnet.scratch.SGD against torch.optim.SGD on the same parameters and gradients (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alexnet.scratch import SGD

SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=5e-4),
    dict(lr=0.01, momentum=0.9, weight_decay=5e-4),  # the paper's recipe (section 5)
    dict(lr=0.02, momentum=0.9, weight_decay=1e-3, nesterov=True),
    dict(lr=0.03, momentum=0.5, dampening=0.3),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_sgd_matches_torch(settings):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(4)}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ours = SGD(params, **settings)
    theirs = torch.optim.SGD(list(tparams.values()), **settings)
    for step in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        if step == 3:  # a schedule changes the lr between steps
            ours.lr = settings["lr"] / 10
            theirs.param_groups[0]["lr"] = settings["lr"] / 10
        for k, p in tparams.items():
            p.grad = torch.from_numpy(grads[k].copy())
        ours.step(grads)
        theirs.step()
        for k, p in tparams.items():
            np.testing.assert_allclose(params[k], p.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_sgd_state_round_trip_and_checks():
    params = {"w": np.ones(3)}
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step({"w": np.ones(3)})
    state = opt.state_dict()
    params2 = {"w": params["w"].copy()}
    opt2 = SGD(params2, lr=1.0)
    opt2.load_state_dict(state)
    opt.step({"w": np.ones(3)})
    opt2.step({"w": np.ones(3)})
    assert np.array_equal(params["w"], params2["w"])
    with pytest.raises(ValueError, match="nesterov"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        SGD(params, lr=-1.0)
