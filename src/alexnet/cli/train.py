"""Train a model: alexnet train [--config PRESET|FILE.yaml] [--FIELD VALUE ...].

Every field of the training config (alexnet.config.TrainConfig) is an option; the preset
(default: fast) or YAML file sets the defaults, options override them, and the resolved config
is saved as config.yaml in the run folder. --resume RUN_DIR continues a run with its own config.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from alexnet.cli.common import MergeKeys, add_switch, kv_option
from alexnet.config import FIELDS, SWITCH_FIELDS, VIEW_NAMES, field_docs, make_config, preset_names, read_yaml
from alexnet.errors import UsageError, printable

EPILOG = """examples:
  alexnet train                                    # alexnet_mini on the built-in shapes data
  alexnet train --config d2l --epochs 10           # Dive into Deep Learning's recipe (Fashion-MNIST)
  alexnet train --config paper --data imagenet:/data/imagenet
  alexnet train --model alexnet_simple --model-args activation=tanh,lrn=true
  alexnet train --backend numpy --model alexnet_simple   # the from-scratch NumPy net (alexnet.scratch)
  alexnet train --resume runs/alexnet_mini-shapes-YYYYMMDD-HHMMSS --epochs 20
  alexnet train --init-from runs/RUN --data folder:photos --freeze features   # fine-tune (preset finetune)"""

_TYPES = {"int": int, "float": float, "str": str}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="PRESET|FILE",
                   help=f"preset ({', '.join(preset_names())}; default fast, numpy with --backend numpy, finetune "
                        "with --init-from) or YAML file")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    docs = field_docs()
    for name, f in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": docs.get(name, "")}
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif name in SWITCH_FIELDS:  # --amp, --amp auto|on|off, --no-amp
            add_switch(p, name, kw["help"])
        elif f.type.startswith("dict"):
            p.add_argument(flag, type=kv_option, metavar="K=V,...", action=MergeKeys, **kw)
        else:
            metavar = {"int": "N", "float": "X"}.get(f.type, name.split("_")[-1].upper())
            kind = _TYPES[f.type.removesuffix(" | None")]  # init_from: unset (None) unless given
            metavar = "WEIGHTS" if name == "init_from" else metavar
            p.add_argument(flag, type=_typed(kind, flag), metavar=metavar, **kw)


def _typed(kind: type, flag: str):
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got '{text}'") from None

    convert.__name__ = kind.__name__
    return convert


def resolve(args: argparse.Namespace) -> Any:
    """The TrainConfig these arguments describe (preset or resumed run, then the options given)."""
    overrides = {name: getattr(args, name) for name in FIELDS if hasattr(args, name)}
    if overrides.get("resume"):
        if args.config:
            raise UsageError("--config and --resume do not go together: a resumed run keeps its own config")
        if overrides.get("init_from"):
            raise UsageError("--init-from and --resume do not go together: a resumed fine-tune continues from its "
                             "own last.pt, with the layers it started from recorded there")
        from alexnet.engine.checkpoint import load_checkpoint
        from alexnet.engine.checks import check_resumable

        run = Path(overrides["resume"])
        folder_without_checkpoint = run.is_dir() and not any((run / f).exists() for f in ("last.pt", "best.pt"))
        if folder_without_checkpoint and (run / "config.yaml").is_file():
            # stopped (killed) before its first checkpoint: start that run over, in its folder
            print(printable(f"{run} has no checkpoint yet: starting it over from its config.yaml"), file=sys.stderr)
            base = read_yaml(str(run / "config.yaml"))
            overrides.update(resume="", out=str(run))
        else:
            ckpt = load_checkpoint(run, prefer="last")
            check_resumable(ckpt)  # one written by hand from alexnet.load_weights has no training state
            try:  # the saved config's own errors name the file (the options given are checked below)
                make_config(ckpt["config"])
            except UsageError as e:
                raise UsageError(f"{ckpt['path']}: its config: {e}") from None
            base = dict(ckpt["config"])
            # the run continues in its checkpoint's folder, wherever that is now; --out, given
            # here, continues it in a new folder instead (engine/run_folder.py)
            base["out"] = ""
    else:
        # the NumPy backend has SGD only, so its default preset is its own (configs/numpy.yaml)
        # and a fine-tune's the common transfer recipe (configs/finetune.yaml)
        default = ("numpy" if overrides.get("backend") == "numpy" else "finetune" if overrides.get("init_from")
                   else "fast")
        base = read_yaml(args.config or default)
    return make_config(base, **overrides)


def fit(cfg: Any, *, on_epoch: Any = None, model_given: bool | None = None) -> dict[str, Any]:
    """Run the training that `cfg` (a TrainConfig) describes, as `alexnet train` does; returns the
    summary: run_dir, best and final accuracy, timings, and "history", every epoch's record
    (metrics.jsonl) to tabulate or plot. `on_epoch(record)` is called after each epoch.

    The engine's fit (engine/train.py), and the run's curves.png and filters.png drawn when it
    ends or is stopped by a signal (viz/run.py). A fine-tune (cfg.init_from) loads its weights
    here, as --weights loads them everywhere; `model_given` says whether cfg.model is the user's
    choice, which must then be the weights' architecture (None: it is, unless it is the default)."""
    from alexnet.engine.train import fit as train
    from alexnet.viz.run import draw_run_pictures

    init = None
    if cfg.init_from and not cfg.resume:
        from alexnet.inference.weights import load_weights

        given = cfg.model != FIELDS["model"].default if model_given is None else model_given
        init = load_weights(cfg.init_from, cfg.model if given else None)
        if given and init["model_name"] != cfg.model:
            raise UsageError(f"--model {cfg.model}: {cfg.init_from} holds a {init['model_name']}, and a fine-tune "
                             "keeps the architecture of its weights (drop --model)")
    return train(cfg, on_epoch=on_epoch, on_end=draw_run_pictures, init=init)


def run(args: argparse.Namespace) -> int:
    cfg = resolve(args)
    result = fit(cfg, model_given=hasattr(args, "model"))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone reports
        return 0
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}))
    else:
        for line in closing_lines(cfg, result):
            print(printable(line))
    return 0


def closing_lines(cfg: Any, result: dict[str, Any]) -> list[str]:
    """What the run did, where it is, and a next command that works on it."""
    scored = result["best_top1"] >= 0 and not math.isnan(result["final_top1"])
    # each epoch is validated with the centre view; the final score with the run's own views
    scores = (f"best epoch top-1 {result['best_top1']:.2%} (centre view), final top-1 {result['final_top1']:.2%}, "
              f"top-5 {result['final_top5']:.2%} ({VIEW_NAMES[result['tta']]})" if scored
              else "no validation images to score it on")
    n, first = result["epochs"], result.get("first_epoch", 0)
    done = f"{n} epoch{'' if n == 1 else 's'}"
    if cfg.max_steps and result["steps"] >= cfg.max_steps:
        done += f" ({result['steps']} steps, --max-steps)"
    if first:  # resumed: this session's part, and the whole run's time
        done += (f", {n - first} of them in this session ({result['seconds']:.1f} s; "
                 f"{result['total_seconds']:.1f} s in all sessions)")
    else:
        done += f" in {result['seconds']:.1f} s"
    if scored and result.get("test"):  # the scores above are the holdout's; the test split was scored once, at the end
        scores = scores.replace("best epoch", "validation (holdout): best epoch", 1)
        scores += "; test split: " + ", ".join(f"top-1 {t['top1']:.2%} ({view})" for view, t in result["test"].items())
    lines = [f"{result['model']} on {result['data']}: {done}, {scores}", f"run folder: {result['run_dir']}"]
    if scored:
        lines.append(f"evaluate it with: alexnet eval {result['run_dir']}")
    else:  # `alexnet eval` would find nothing to score: classify the training pictures instead
        where = cfg.data.partition(":")[2] if cfg.data.startswith(("folder:", "imagenet:")) else "IMAGE"
        lines.append(f"classify pictures with it: alexnet predict --checkpoint {result['run_dir']} {where}")
    return lines

