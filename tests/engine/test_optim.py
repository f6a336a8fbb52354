"""The update rule (engine/optim.py): section 5's momentum form against a hand-written loop,
torch's form against it, and the biases' learning rate and decay as cuda-convnet and Caffe set them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alexnet.config import make_config
from alexnet.engine.optim import PaperSGD, Plateau, learning_rates, make_optimizer, param_groups, plateau_after


def gradients(steps: int, shapes: list[tuple[int, ...]]) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [[torch.randn(s, generator=g, dtype=torch.float64) for s in shapes] for _ in range(steps)]


def test_paper_form_is_the_papers_update_written_out():
    """v <- 0.9 v - 0.0005 lr w - lr g; w <- w + v, per group, with an lr drop half way (section 5)."""
    g = torch.Generator().manual_seed(1)
    w0, b0 = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = PaperSGD([{"params": [w]}, {"params": [b], "lr": 0.02, "weight_decay": 0.0}], lr=0.01, momentum=0.9,
                   weight_decay=0.0005)
    grads = gradients(8, [(4, 3), (4,)])
    # the hand-written loop: plain tensors, the paper's arithmetic
    hw, hb = w0.clone(), b0.clone()
    vw, vb = torch.zeros_like(hw), torch.zeros_like(hb)
    lr_w, lr_b = 0.01, 0.02
    for t, (gw, gb) in enumerate(grads):
        if t == 4:  # the lr divided by 10, as the paper's schedule does
            lr_w, lr_b = lr_w / 10, lr_b / 10
            for group in opt.param_groups:
                group["lr"] /= 10
        vw = 0.9 * vw - 0.0005 * lr_w * hw - lr_w * gw
        vb = 0.9 * vb - 0.0 * lr_b * hb - lr_b * gb
        hw, hb = hw + vw, hb + vb
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        torch.testing.assert_close(w.detach(), hw, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(b.detach(), hb, rtol=1e-13, atol=1e-15)


def test_torch_form_is_the_same_update_at_constant_lr_and_ten_times_smaller_after_a_drop():
    g = torch.Generator().manual_seed(2)
    w0 = torch.randn(5, generator=g, dtype=torch.float64)
    wp, wt = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    paper = PaperSGD([wp], lr=0.01, momentum=0.9, weight_decay=0.0)
    torchs = torch.optim.SGD([wt], lr=0.01, momentum=0.9)
    for gw in gradients(6, [(5,)]):
        wp.grad, wt.grad = gw[0].clone(), gw[0].clone()
        paper.step()
        torchs.step()
    torch.testing.assert_close(wp.detach(), wt.detach(), rtol=1e-12, atol=1e-14)
    for opt in (paper, torchs):
        opt.param_groups[0]["lr"] = 0.001
    before_p, before_t = wp.detach().clone(), wt.detach().clone()
    wp.grad, wt.grad = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    paper.step()
    torchs.step()
    # with no new gradient the step is all momentum: the paper's keeps its size, torch's is rescaled by the new lr
    ratio = (wp.detach() - before_p).norm() / (wt.detach() - before_t).norm()
    assert float(ratio) == pytest.approx(10.0, rel=1e-9)


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def test_biases_get_twice_the_lr_and_no_decay_when_asked():
    model = tiny()
    cfg = make_config(optimizer="sgd", lr=0.01, weight_decay=5e-4, bias_lr_mult=2.0, bias_decay=False)
    groups = param_groups(model, cfg)
    assert [len(g["params"]) for g in groups] == [2, 2]
    weights, biases = groups
    assert all(p.dim() > 1 for p in weights["params"]) and all(p.dim() == 1 for p in biases["params"])
    assert biases["lr"] == pytest.approx(0.02) and biases["weight_decay"] == 0.0
    for form, kind in (("torch", torch.optim.SGD), ("paper", PaperSGD)):
        opt = make_optimizer(model, make_config(optimizer="sgd", lr=0.01, weight_decay=5e-4, bias_lr_mult=2.0,
                                                bias_decay=False, momentum_form=form))
        assert isinstance(opt, kind)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.02])
        assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([5e-4, 0.0])
    # the default: one group, the same lr and decay for all
    assert len(make_optimizer(model, make_config(optimizer="sgd")).param_groups) == 1


def test_a_bias_takes_no_decay_in_a_real_step():
    """Zero gradient and zero momentum history: the weights shrink by lr*wd, the biases do not move."""
    model = tiny()
    opt = make_optimizer(model, make_config(optimizer="sgd", lr=0.1, weight_decay=0.01, bias_lr_mult=2.0,
                                            bias_decay=False, momentum_form="paper"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        expected = before[name] if name.endswith("bias") else before[name] * (1 - 0.1 * 0.01)
        torch.testing.assert_close(p.detach(), expected)


def test_plateau_divides_each_group_at_most_max_lr_drops_times():
    model = tiny()
    cfg = make_config(optimizer="sgd", lr=0.01, bias_lr_mult=2.0, bias_decay=False, schedule="plateau",
                      plateau_patience=0, max_lr_drops=3)
    opt = make_optimizer(model, cfg)
    state = Plateau()
    for _ in range(8):
        state = plateau_after(state, 0.5, cfg)  # never better: a drop every epoch until the floor
    rates = learning_rates(cfg, [g["lr"] for g in opt.param_groups], 0, state, total_steps=1, steps_per_epoch=1)
    for group, lr in zip(opt.param_groups, rates):
        group["lr"] = lr
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 2e-5])


def test_plateau_reads_the_torch_scheduler_state_of_older_checkpoints():
    """Checkpoints written before the plain schedule hold a ReduceLROnPlateau state_dict and the
    dropped lr in the optimizer: plateau_from recovers the same state, and learning_rates the lr."""
    from alexnet.engine.optim import plateau_from

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.01)
    cfg = make_config(schedule="plateau", plateau_patience=1, max_lr_drops=3, lr=0.01)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=1)
    ours = Plateau()
    for top1 in (0.3, 0.5, 0.4, 0.45, 0.2, 0.1, 0.6, 0.55):
        sched.step(top1)
        ours = plateau_after(ours, top1, cfg)
        state = plateau_from(sched.state_dict(), base=0.01, saved_lr=opt.param_groups[0]["lr"])
        assert (state.best, state.bad_epochs, state.drops) == (ours.best, ours.bad_epochs, ours.drops)
        assert learning_rates(cfg, [0.01], 0, state, total_steps=1, steps_per_epoch=1)[0] == opt.param_groups[0]["lr"]
    assert ours.drops == 2


def test_adamw_on_the_cpu_is_fused_and_is_adamws_update():
    """The CPU's AdamW is torch's fused kernel (engine/optim.py: 8x faster updates); ten steps
    with changing gradients, two groups and a changed lr land where torch's for-loop AdamW does."""
    torch.manual_seed(0)
    model, reference = tiny(), tiny()
    reference.load_state_dict(model.state_dict())
    cfg = make_config(optimizer="adamw", lr=0.01, weight_decay=0.05, bias_lr_mult=2.0, bias_decay=False)
    opt = make_optimizer(model, cfg)
    assert opt.defaults["fused"] is True
    ref = torch.optim.AdamW(param_groups(reference, cfg), lr=0.01, weight_decay=0.05, foreach=False)
    for step in range(10):
        grads = [torch.randn_like(p) for p in model.parameters()]
        for net, o in ((model, opt), (reference, ref)):
            for p, g in zip(net.parameters(), grads):
                p.grad = g.clone()
            if step == 5:
                for group in o.param_groups:
                    group["lr"] /= 10
            o.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
