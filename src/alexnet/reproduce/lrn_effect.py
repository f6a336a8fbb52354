"""Whether a trained net's local response normalisation does anything: its data term over k.

An LRN layer computes b = a (k + alpha/n * sum a^2)^-beta (section 3.3). Where the data term
alpha/n * sum a^2 is tiny against k, the layer is the constant scale k^-beta and an ablation of
it compares two nets that differ by a constant (docs/fidelity.md, "LRN in effect"). This module
runs a trained run's own validation images through its net and reports, for every LRN layer, the
term over k at each output: its median and 99th percentile over the outputs a > 0, its maximum,
and the share of those outputs that the term moves by more than 1% from the constant scale
((1 + term/k)^-beta < 0.99). The window sum is computed here from the layer's inputs with a
cumulative sum over the channels, not by the layer's own code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

# the share of outputs "moved": those the data term shrinks by more than this, relative to k^-beta
MOVED = 0.01


def data_term(lrn: nn.LocalResponseNorm, a: torch.Tensor) -> torch.Tensor:
    """alpha/n * (sum of a^2 over each output's window of channels) / k, N,C,H,W -> N,C,H,W.

    The window is channels c - n//2 .. c + (n-1)//2 clipped at the ends, within each tower's
    block of channels (`lrn.towers`, 1 for torch's own module)."""
    n, c, h, w = a.shape
    towers = int(getattr(lrn, "towers", 1))
    sq = a.double().reshape(n * towers, c // towers, h, w) ** 2  # each tower's maps as a sample
    before, after = lrn.size // 2, (lrn.size - 1) // 2
    # a zero channel first for the cumsum's origin
    padded = torch.nn.functional.pad(sq, (0, 0, 0, 0, before + 1, after))
    cum = padded.cumsum(dim=1)  # N*T,1+before+C+after,H,W
    width = before + after + 1
    window = cum[:, width:] - cum[:, :-width]  # N*T,C/T,H,W: the sum over each window
    return (lrn.alpha / lrn.size * window / lrn.k).reshape(n, c, h, w)


def summarise(lrn: nn.LocalResponseNorm, a: torch.Tensor) -> dict[str, float]:
    """The data term over k of `lrn` at input `a`, over the outputs where a > 0."""
    term = data_term(lrn, a)[a > 0]
    if term.numel() == 0:
        return {"median": 0.0, "p99": 0.0, "max": 0.0, "moved": 0.0, "outputs": 0}
    threshold = (1 - MOVED) ** (-1 / lrn.beta) - 1  # (1 + t)^-beta < 0.99
    sample = term if term.numel() <= 2_000_000 else term[
        torch.randperm(term.numel(), generator=torch.Generator().manual_seed(0))[:2_000_000]
    ]
    return {"median": float(sample.median()), "p99": float(torch.quantile(sample.float(), 0.99)),
            "max": float(term.max()), "moved": float((term > threshold).double().mean()), "outputs": int(term.numel())}


def lrn_terms(model: nn.Module, x: torch.Tensor) -> dict[str, dict[str, float]]:
    """{layer name: summary} for every LRN layer of `model` on the prepared batch `x` (N,C,H,W)."""
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda mod, args, out, name=name: inputs.__setitem__(name, args[0].detach().float()))
        for name, m in model.named_modules() if isinstance(m, nn.LocalResponseNorm)
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    return {name.rsplit(".", 1)[-1]: summarise(modules[name], a) for name, a in inputs.items()}


def measure_run(run_dir: Path, images: int = 256) -> dict[str, dict[str, float]]:
    """lrn_terms of a run's trained net (last.pt) on `images` of its validation split, prepared
    with the centre view as its evaluation prepares them; {} for a net without LRN."""
    from alexnet.config import make_config
    from alexnet.data.loader import make_loader
    from alexnet.data.transforms import EvalViews, eval_prepare, prep_stats
    from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from alexnet.engine.train import open_training_data

    ckpt = load_checkpoint(run_dir, prefer="last")
    model = model_from_checkpoint(ckpt).float()
    if not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules()):
        return {}
    cfg = make_config(ckpt["config"], val_images=images, workers=0, device="cpu")
    source = open_training_data(cfg)  # the run's own holdout (or val split), cut to `images`
    channels, size = int(ckpt["input_size"][0]), int(ckpt["input_size"][1])
    loader = make_loader(source.split("val"), eval_prepare(ckpt["augment"], size=size, channels=channels),
                         batch_size=images, shuffle=False, workers=0)
    views = EvalViews(size=size, channels=channels, tta="center", **prep_stats(ckpt))
    batch = next(iter(loader))
    return lrn_terms(model, views(batch.images))  # N,C,S,S


def describe(terms: dict[str, dict[str, float]]) -> str:
    """One sentence per layer, for a report."""
    return "; ".join(
        f"{name}: median {t['median']:.2g}, 99th percentile {t['p99']:.2g}, max {t['max']:.2g}, "
        f"{100 * t['moved']:.1f}% of the positive outputs moved by more than {MOVED:.0%}" for name, t in terms.items()
    )


def pooled(per_run: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """The mean over runs of each layer's summary (runs of one arm)."""
    names = [n for n in per_run[0]] if per_run else []
    return {
        n: {k: sum(r[n][k] for r in per_run) / len(per_run) for k in ("median", "p99", "max", "moved")} for n in names
    }
