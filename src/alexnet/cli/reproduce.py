"""Reproduce the paper's claims: alexnet reproduce NAME|all|list [--scale SCALE] [--seeds N] [--data SPEC] [--out DIR].

Each experiment trains the paper's net with and without one of its choices (ReLU, two towers,
LRN, overlapping pooling, PCA lighting, dropout; ten-crop compares two evaluations of the same
runs) over several seeds and writes OUT/NAME/report.md (the claim, the measured table, the
verdict), curves.png, errors.png and results.json, and the summary table OUT/paper.md (or
--summary). Runs are shared between experiments and kept in OUT/runs/: an interrupted
`reproduce` started again goes on where it stopped.
"""

from __future__ import annotations

import argparse
import re
import shlex
import time
from pathlib import Path

from alexnet.cli.common import number
from alexnet.errors import printable

EPILOG = """examples:
  alexnet reproduce list                               # the experiments and the paper's numbers
  alexnet reproduce lrn --scale smoke --data shapes    # seconds: checks the whole path
  alexnet reproduce all --scale cpu                    # CIFAR-10 (subsets), 5 seeds: hours on a CPU
  alexnet reproduce all --scale gpu --data cifar10     # all of CIFAR-10, 5 seeds, 40 epochs
  alexnet reproduce towers --data imagenet:/data/imagenet --scale gpu   # alexnet2012 at 227x227

scales: smoke (200 training images, 2 epochs, 2 seeds), cpu (10,000 CIFAR-10 images, 10 epochs,
5 seeds; figure 1 on 10,000 with 3 seeds, up to 100 epochs; dropout on 5,000 for 30), gpu (the
whole data, 40 epochs, 5 seeds). Every run validates on 5,000 training images held out and is
scored on the test split once, at the end. On 32x32 data the ablations use alexnet_mini with the
paper's switches on the paper's inputs, figure 1 and LRN cuda-convnet's own CIFAR-10 nets; on
imagenet:DIR or folder:DIR the net is alexnet2012. Verdicts: reproduced / not reproduced when
the paired 95% interval lies on one side of zero, inconclusive otherwise, with the reason
(underpowered, another regime, nothing to prevent)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from alexnet.reproduce.experiments import DEFAULT_DATA, SCALES, names

    p.add_argument("name", metavar="NAME", help=f"an experiment ({', '.join(names())}), all, or list")
    p.add_argument("--scale", default="cpu", choices=list(SCALES), help="how big the runs are (default cpu)")
    p.add_argument("--seeds", type=number(int, 1, 100), default=None, metavar="N",
                   help="seeds per arm (default: the scale's)")
    p.add_argument("--data", default=DEFAULT_DATA, metavar="SPEC",
                   help=f"dataset spec (default {DEFAULT_DATA}; imagenet:DIR for the full-size net)")
    p.add_argument("--out", default=None, metavar="DIR", help="where reports and runs go (default reproduce/SCALE)")
    p.add_argument("--summary", default=None, metavar="FILE", help="the summary table's path (default OUT/paper.md)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))


def run(args: argparse.Namespace) -> int:
    from alexnet.errors import UsageError
    from alexnet.reproduce import experiments

    if args.name == "list":
        for e in experiments.EXPERIMENTS.values():
            paper = ", ".join(f"{k} {v:+g}" if k not in ("speedup", "iterations") else f"{k} {v:g}x"
                              for k, v in e.paper.items() if v is not None)
            paper = paper or "direction only"
            print(f"{e.name:20s} section {e.section:14s} {e.title} (paper: {paper})")
        return 0
    chosen = list(experiments.EXPERIMENTS.values()) if args.name == "all" else [experiments.get(args.name)]
    scale = experiments.get_scale(args.scale)
    seeds = args.seeds or scale.seeds
    out = Path(args.out or f"reproduce/{args.scale}")
    summary = Path(args.summary) if args.summary else out / "paper.md"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if summary.is_dir():
        raise UsageError(f"--summary {summary} is a folder; give the table's file name, e.g. {summary / 'paper.md'}")
    _check_summary(summary)
    from alexnet.data import open_dataset

    open_dataset(args.data)  # a bad --data fails here, in one line, before anything is trained
    from alexnet.reproduce.report import write_report
    from alexnet.reproduce.runner import run_experiment
    from alexnet.reproduce.summary import write_summary

    _claim(out)  # last of the checks: nothing is made before they all pass
    command = _command(args)
    started = time.perf_counter()
    for exp in chosen:
        n = seeds if args.seeds else experiments.seeds_for(exp, scale)
        result = run_experiment(exp, scale, args.scale, data=args.data, seeds=n, runs_dir=out / "runs",
                                device=args.device)
        written = write_report(result, out / exp.name, command)
        print(f"{exp.name}: {result['verdict']} — {result['why']}")
        print(printable(f"  report: {written[0]}"))
    write_summary(out, summary)
    print(printable(f"summary: {summary}") + f"  ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


MARKER = ".alexnet-reproduce"  # marks a folder `alexnet reproduce` writes its reports and runs into
RUN_NAME = re.compile(r"[a-z0-9_]+-[0-9a-f]{10}-seed[0-9]+")  # reproduce/runner.py run_folder's names


def _claim(out: Path) -> None:
    """Make `out` ours, or refuse it in one line: reproduce rewrites the reports in it (NAME/report.md,
    results.json, pictures), so a folder of someone else's is never written into. An empty or new
    folder is marked; so is an earlier version's (its runs/ holds run folders, or an experiment's
    results.json is one of ours)."""
    from alexnet.engine.run_folder import is_run_folder
    from alexnet.errors import UsageError
    from alexnet.limits import STATE_FILE_BYTES, Refused, load_json, read_regular
    from alexnet.reproduce.experiments import EXPERIMENTS

    def ours(results: Path) -> bool:
        try:
            r = load_json(read_regular(results, STATE_FILE_BYTES))
        except (OSError, Refused, ValueError):
            return False
        return isinstance(r, dict) and "verdict" in r and "arms" in r

    marker = out / MARKER
    if not marker.is_file():
        try:
            names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        except OSError as e:
            raise UsageError(f"cannot read --out {out}: {e.strerror or e}") from None
        runs = out / "runs"  # reproduce's runs are named MODEL-KEY-seedN (`alexnet train`'s are not)
        earlier = ((runs.is_dir() and any(RUN_NAME.fullmatch(p.name) and is_run_folder(p) for p in runs.iterdir()))
                   or any(ours(out / name / "results.json") for name in EXPERIMENTS))
        if names and not earlier:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise UsageError(f"--out {out} is not a folder of `alexnet reproduce` and is not empty ({shown}); "
                             "pick a new or empty folder, nothing in it was touched")
        try:
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text("alexnet reproduce: its reports and runs\n")
        except OSError as e:
            raise UsageError(f"cannot write --out {out}: {e.strerror or e}") from None


def _check_summary(path: Path) -> None:
    """The summary is rewritten on every run: refuse a path that is not a regular file, or a file
    that is not a summary written by this command (a user's README.md given by mistake)."""
    from alexnet.atomic import check_output
    from alexnet.errors import UsageError
    from alexnet.reproduce.summary import SUMMARY_TITLE

    check_output(path, force=True, flag="--summary")  # a regular file or nothing; whose file, below
    if path.exists():
        try:
            with path.open("rb") as f:
                ours = f.read(len(SUMMARY_TITLE.encode())) == SUMMARY_TITLE.encode()
        except OSError as e:
            raise UsageError(f"cannot read --summary {path}: {e.strerror or e}") from None
        if not ours:
            raise UsageError(f"--summary {path} exists and is not a summary of `alexnet reproduce`; it is left "
                             "as it is: give another --summary, or remove it")


def _command(args: argparse.Namespace) -> str:
    """The command line that repeats this run, as the reports quote it (options left at their defaults omitted)."""
    from alexnet.reproduce.experiments import DEFAULT_DATA

    parts = ["alexnet", "reproduce", args.name, "--scale", args.scale]
    for flag, value, default in (("--seeds", args.seeds, None), ("--data", args.data, DEFAULT_DATA),
                                 ("--out", args.out, None), ("--summary", args.summary, None),
                                 ("--device", args.device, "auto")):
        if value != default:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)
