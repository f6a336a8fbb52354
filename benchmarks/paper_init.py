"""Benchmark: does the `paper` preset leave the initial plateau? Loss against steps for alexnet2012's inits.

    python benchmarks/paper_init.py [--data cifar10] [--steps 300] [--inits paper caffe]
        [--out docs/pictures/paper_init.png]

Section 5 initialises every weight from N(0, 0.01) and the biases of conv2, conv4, conv5, fc6 and
fc7 to 1. Caffe's bvlc_alexnet readme reports that this left its loss flat, and its
train_val.prototxt uses biases of 0.1 and N(0, 0.005) for fc6 and fc7 instead (models/
bvlc_alexnet in BVLC/caffe). This trains alexnet2012 with the `paper` preset (raw 0-255 pixels
minus the mean image, random 227 crops and flips, PCA lighting, the paper's SGD at lr 0.01,
biases at 2x lr without decay, batch 128) from each init, on the same batches, and prints the
training loss every 10 steps and the mean of the last 50 against ln(classes), the loss of a
uniform guess. It draws the curves to --out. Every other setting is the preset's.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
from torch import nn


def train(init: str, args: argparse.Namespace) -> list[float]:
    from alexnet.config import make_config, read_yaml
    from alexnet.engine.distributed import World
    from alexnet.engine.optim import make_optimizer
    from alexnet.engine.train import build_for_data, data_pipeline, make_plan, open_training_data

    cfg = make_config(read_yaml("paper"), data=args.data, train_images=args.steps * 128, workers=0, tensorboard=False,
                      model_args={"init": init})
    device = torch.device("cpu")
    source = open_training_data(cfg)
    torch.manual_seed(args.seed)
    model = build_for_data(cfg, source)  # alexnet2012 with `init` (models/alexnet2012.py)
    plan = make_plan(cfg, World(), device, source, model)
    fast = plan.amp and plan.channels_last  # both follow native bf16 on a CPU
    if fast:
        model = model.to(memory_format=torch.channels_last)
    pipe, _ = data_pipeline(plan, source)
    opt = make_optimizer(model, cfg)
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for batch in pipe.train:
        x = pipe.augment(batch.images)  # N,3,227,227, pixels minus the mean image
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            loss = nn.functional.cross_entropy(model(x).float(), batch.labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach().item())
        if len(losses) % 10 == 0:
            print(f"{init}: step {len(losses)} loss {sum(losses[-10:]) / 10:.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        if len(losses) >= args.steps:
            break
    return losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="cifar10")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--inits", nargs="+", default=["paper", "caffe"], choices=["paper", "caffe"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/pictures/paper_init.png")
    args = p.parse_args()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          "threads")
    curves = {init: train(init, args) for init in args.inits}
    from alexnet.data import open_dataset

    chance = math.log(len(open_dataset(args.data).classes))
    for init, losses in curves.items():
        tail = losses[-50:]
        print(f"{init}: first 10 steps {sum(losses[:10]) / 10:.4f}, last 50 steps {sum(tail) / len(tail):.4f}, "
              f"ln(classes) {chance:.4f}, below it by {chance - sum(tail) / len(tail):+.4f}")
    from alexnet.viz.figure import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for init, losses in curves.items():
        smooth = [sum(losses[max(0, i - 9):i + 1]) / len(losses[max(0, i - 9):i + 1]) for i in range(len(losses))]
        ax.plot(range(1, len(losses) + 1), smooth, label=f"{init} init (mean of 10 steps)")
    ax.axhline(chance, color="gray", linestyle=":", label="ln(classes): a uniform guess")
    ax.set_xlabel("step (batch 128)")
    ax.set_ylabel("training loss")
    ax.set_title(f"alexnet2012, --config paper, on {args.data} at 227 px")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, args.out)
    print(f"curves: {args.out}")


if __name__ == "__main__":
    main()
