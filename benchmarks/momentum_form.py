"""Benchmark: how much torch's momentum form differs from the paper's after a learning-rate drop.

    python benchmarks/momentum_form.py [--model alexnet_mini] [--steps-before 150] [--steps-after 60] [--drop 10]

Section 5 writes the update v <- 0.9 v - 0.0005 lr w - lr g, w <- w + v (velocity in weight
units); torch's SGD keeps it in gradient units, v <- 0.9 v + g + wd w, w <- w - lr v. With one lr
they are the same update; when the lr is divided by --drop, torch's stored momentum is rescaled
by the new lr at once, the paper's keeps its size and decays by 0.9 a step. This trains the same
net from the same init on the same batches (the built-in shapes data, the paper's weight decay,
biases at 2x lr without decay) in torch's form for --steps-before steps, divides the lr, and
continues the same state (weights, and the momentum converted: the paper's velocity is -lr times
torch's buffer) in both forms on the same batches. Starting both from one state isolates the drop:
two whole runs would drift apart from float rounding alone. Prints, for the steps after the drop:
the size of each update ||w_t+1 - w_t|| of both forms and their ratio, the distance travelled in
all, the distance between the two nets' weights, and the training loss of both.
"""

from __future__ import annotations

import argparse
import copy
import platform


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="alexnet_mini")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--drop", type=float, default=10.0)
    p.add_argument("--steps-before", type=int, default=150)
    p.add_argument("--steps-after", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()

    import torch
    import torch.nn.functional as F

    from alexnet.config import make_config
    from alexnet.data import open_dataset
    from alexnet.data.loader import make_loader, set_epoch
    from alexnet.data.transforms import Prepare, TrainAugment
    from alexnet.engine.optim import make_optimizer
    from alexnet.models import build_model

    source = open_dataset("shapes")
    prepare = Prepare("none", 32, 3)
    loader = make_loader(source.split("train"), prepare, batch_size=args.batch_size, shuffle=True, workers=0, seed=0)
    augment = TrainAugment("none", size=32, channels=3, mean=source.mean, std=source.std)
    batches = []
    epoch = 0
    while len(batches) < args.steps_before + args.steps_after:
        set_epoch(loader, epoch)
        batches += [(augment(b.images), b.labels) for b in loader]
        epoch += 1
    batches = batches[: args.steps_before + args.steps_after]

    def step(model, opt, x, y) -> tuple[float, float]:
        before = torch.cat([q.detach().flatten() for q in model.parameters()])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        after = torch.cat([q.detach().flatten() for q in model.parameters()])
        return float((after - before).norm()), float(loss.detach())

    def weights(model) -> torch.Tensor:
        return torch.cat([q.detach().flatten() for q in model.parameters()])

    cfg = dict(optimizer="sgd", lr=args.lr, momentum=0.9, weight_decay=5e-4, bias_lr_mult=2.0, bias_decay=False)
    torch.manual_seed(0)
    model = build_model(args.model, num_classes=len(source.classes), dropout=0.0)
    opt = make_optimizer(model, make_config(**cfg, momentum_form="torch"))
    k = args.steps_before
    before = [step(model, opt, x, y)[0] for x, y in batches[:k]]
    # the state at the drop, continued in both forms: torch's buffer b is the paper's velocity -lr*b
    twin = copy.deepcopy(model)
    paper = make_optimizer(twin, make_config(**cfg, momentum_form="paper"))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    for p, q in zip(model.parameters(), twin.parameters()):
        paper.state[q]["velocity"] = -lr_of[id(p)] * opt.state[p]["momentum_buffer"].clone()
    for o in (opt, paper):
        for group in o.param_groups:
            group["lr"] /= args.drop
    runs = {"torch": (model, opt), "paper": (twin, paper)}
    after = {name: [step(m, o, x, y) for x, y in batches[k:]] for name, (m, o) in runs.items()}
    torch_steps, paper_steps = [s for s, _ in after["torch"]], [s for s, _ in after["paper"]]
    torch_loss, paper_loss = [loss for _, loss in after["torch"]], [loss for _, loss in after["paper"]]
    print(f"{platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}; {args.model} on "
          f"shapes, batch {args.batch_size}, lr {args.lr:g}, momentum 0.9, weight decay 5e-4 (biases 2x lr, no decay), "
          f"{k} steps in torch's form, then the lr divided by {args.drop:g} and the same state continued in both forms")
    print(f"mean update size over the {k} steps before the drop: {sum(before) / k:.4g}")
    print("step after drop | update size torch | paper | paper / torch")
    for i in (0, 1, 2, 5, 10, 20, 40):
        if i < len(torch_steps):
            print(f"{i + 1:15d} | {torch_steps[i]:17.4g} | {paper_steps[i]:.4g} | "
                  f"{paper_steps[i] / torch_steps[i]:.2f}")
    moved_t, moved_p = sum(torch_steps), sum(paper_steps)
    print(f"distance travelled in the {len(torch_steps)} steps after the drop: torch {moved_t:.4g}, paper "
          f"{moved_p:.4g} (ratio {moved_p / moved_t:.2f}); one step before the drop: {before[-1]:.4g}")
    print(f"weights at the end: ||w_paper - w_torch|| = {float((weights(twin) - weights(model)).norm()):.4g}, "
          f"||w_torch|| = {float(weights(model).norm()):.4g}")
    last = max(1, min(10, len(torch_loss)))
    print(f"mean training loss over the last {last} steps: torch {sum(torch_loss[-last:]) / last:.4f}, "
          f"paper {sum(paper_loss[-last:]) / last:.4f}")


if __name__ == "__main__":
    main()
