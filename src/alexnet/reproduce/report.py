"""What an experiment leaves for a reader: report.md, its pictures, results.json and the one-table summary.

report.md says what the paper claims, how it was tested here (scale, data, the one factor that
differs, the seeds, the command), the table of measured errors, the effect with its interval and
the verdict. curves.png redraws the per-epoch errors of both arms (figure 1 itself for
relu-vs-tanh); errors.png shows every seed's final error, so the spread behind a verdict is seen.
The summary (docs/paper.md, summary.py) gathers every experiment's latest results.json into one table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alexnet.atomic import atomic_path
from alexnet.errors import UsageError
from alexnet.reproduce.lrn_effect import describe
from alexnet.reproduce.measure import FIGURE1_ERROR
from alexnet.reproduce.stats import mean_std
from alexnet.viz.figure import pyplot, save

COLOURS = ("tab:blue", "tab:red")  # the arm "with" the paper's feature, then "without"
EFFECT_NAMES = {"top1": "top-1 error", "top5": "top-5 error", "overfitting": "overfitting gap (without − with)",
                "iterations": "epochs to converge (with / without)"}


def write_report(result: dict[str, Any], folder: Path, command: str) -> list[Path]:
    """Write report.md, curves.png, errors.png (not for relu-vs-tanh) and results.json into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [plot_curves(result, folder / "curves.png")]
    if result["kind"] != "speed":
        written.append(plot_errors(result, folder / "errors.png"))
    write_text(folder / "results.json", json.dumps({**result, "command": command}, indent=1))
    write_text(folder / "report.md", report_text(result, command, [p.name for p in written]))
    return [folder / "report.md", *written, folder / "results.json"]


def write_text(path: Path, text: str) -> None:
    """Write a report file atomically; a folder that cannot be written is a one-line UsageError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


def _pm(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.2f} ± {s:.2f}"


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f}"


def report_text(result: dict[str, Any], command: str, pictures: list[str]) -> str:
    arms = list(result["arms"])
    config = result["arms"][arms[0]]["config"]  # the arm with the paper's feature
    n_train = _n(config["train_images"])  # the runs' own (figure 1 takes all)
    lines = [
        f"# {result['title']} (section {result['section']})",
        "",
        f"**Verdict: {result['verdict']}.** {result['why'][0].upper() + result['why'][1:]}.",
        "",
        "## What the paper says",
        "",
        f"> {result['claim']}",
        "",
        "## How it was tested",
        "",
        f"- Data: `{result['data']}`, {n_train} training images; " + _splits(config, result) + " "
        "(fixed class-balanced subsets where not all, the same for every run).",
        f"- Net: `{config['model']}` with {_args(config['model_args'])}; {_epochs(config)}, "
        f"batch {config['batch_size']}, "
        f"{config['optimizer']} lr {_lr(result)} ({config['schedule']}), momentum {config['momentum']:g}"
        f" ({_update(config)}), weight decay {config['weight_decay']:g}, "
        f"augmentation `{config['augment']}`"
        + (f" with PCA lighting {config['lighting']:g}" if config["augment"] == "paper" else "")
        + f"; inputs {_inputs(config)}.",
        f"- The two arms differ only in: {_difference(result)}.",
        f"- {result['seeds']} seed(s) per arm, paired: the two arms' runs with one seed share the data order and, "
        "where the shapes agree, the initial weights; ± is the standard deviation over seeds. Intervals are paired t "
        "intervals over seeds; the minimum detectable effect (MDE) is the smallest true effect the design finds with "
        "80% probability at the 5% level (reproduce/stats.py).",
        f"- Command: `{command}`",
        "",
        "Differences from the paper's setup: "
        + " ".join(filter(None, [_base_differences(config), result.get("differences", "")])),
        "",
    ]
    if result.get("shares_runs_with"):
        lines += [f"Shared runs: the \"{arms[0]}\" runs are also the \"with\" arm of "
                  + ", ".join(result["shares_runs_with"])
                  + ". Their estimates are not independent: one odd seed moves all of them together, so read those "
                  "verdicts jointly.", ""]
    if result["kind"] == "speed":
        lines += _speed_section(result, arms)
    else:
        lines += _errors_section(result, arms)
    if result.get("lrn_term"):
        lines += ["", "LRN in effect: the data term α/n·Σa² over k in the trained nets of the arm with the feature, "
                  "on 256 of their validation images (mean over seeds; reproduce/lrn_effect.py): "
                  + describe(result["lrn_term"]) + ". "
                  "A term near zero everywhere would make the layer a constant scale."]
    lines += ["", "## Pictures", ""] + [f"![{p}]({p})" for p in pictures]
    lines += ["", f"Trained in {result['seconds_trained'] / 60:.1f} min on {_devices(result)}; "
              "the runs' own folders (checkpoints, metrics.jsonl, config.yaml) are in runs/ beside this report's "
              "folder where the command ran.", ""]
    return "\n".join(lines)


def _splits(config: dict[str, Any], result: dict[str, Any]) -> str:
    """Which split chose what and which one the numbers are on."""
    runs = [r for arm in result["arms"].values() for r in arm["runs"]]
    if config.get("holdout") and all(r.get("scored_on") == "test" for r in runs):
        return (f"{config['holdout']:,} more training images held out as the validation split, which the per-epoch "
                f"curves read ({_n(config['val_images'])} of them); the errors below are on the test split, scored "
                "once at the end of each run")
    return f"{_n(config['val_images'])} validation images, on which the errors below are measured"


def _base_differences(config: dict[str, Any]) -> str:
    if config["model"] == "alexnet_mini":
        std = (config.get("model_args") or {}).get("conv1_std")
        init = (f"conv1 initialised as the paper's N(0, {std:g}), the layers above with Kaiming's init, since the "
                "paper's N(0, 0.01) everywhere does not train this net") if std else "Kaiming-initialised"
        return ("the net is alexnet_mini (the paper's layout at a quarter of its conv widths, for 32x32 images; "
                f"{init}) on `{config['data']}` instead of alexnet2012 on ImageNet, and it trains for "
                f"{config['epochs']} epochs with a warm-up and linear decay of the lr instead of 90 epochs with the "
                "lr divided by 10 on plateaus.")
    if config["model"] == "alexnet2012":
        return (f"{config['epochs']} epochs with a warm-up and linear decay of the lr instead of 90 epochs with the lr "
                "divided by 10 on plateaus.")
    return ""


def _epochs(config: dict[str, Any]) -> str:
    stop = config.get("stop_train_error") or 0
    return f"{config['epochs']} epochs" + (
        f" at most, stopping once the training error reaches {stop:.0%}" if stop else ""
    )


def _update(config: dict[str, Any]) -> str:
    form = "the paper's form v <- m v - wd lr w - lr g" if config.get("momentum_form") == "paper" else "torch's form"
    mult = float(config.get("bias_lr_mult", 1.0))
    biases = (f"biases at {mult:g}x the lr" if mult != 1 else "biases at the same lr") + \
        ("" if config.get("bias_decay", True) else " and without weight decay")
    return f"{form}, {biases}"


def _inputs(config: dict[str, Any]) -> str:
    norm = config.get("input_norm", "channel")
    if norm == "mean_image" or (norm == "auto" and config["model"] == "alexnet2012"):
        return ("raw 0-255 pixels minus the training set's mean image (section 2), "
                "the units the paper's LRN constants were set in")
    return "standardised per channel"


def _lr(result: dict[str, Any]) -> str:
    lrs = {label: arm["config"]["lr"] for label, arm in result["arms"].items()}
    if len(set(lrs.values())) == 1:
        return f"{next(iter(lrs.values())):g}"
    return ", ".join(f"{lr:g} ({label})" for label, lr in lrs.items())


def _args(model_args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in model_args.items()) or "its defaults"


def _difference(result: dict[str, Any]) -> str:
    arms = list(result["arms"].values())
    if result["kind"] == "views":
        return ("the test-time views (the same trained runs, evaluated two ways: "
                + " vs ".join(f"`{a['view']}`" for a in arms) + ")")
    parts = []
    for label, arm in result["arms"].items():
        parts.append(f"{label}: " + ", ".join(f"`{k}={v}`" for k, v in _flat(arm["changes"]).items()))
    tuned = (" (and the learning rate, which each arm picked for itself, see below)"
             if any(a.get("lr_pilot") for a in result["arms"].values()) else "")
    return "; ".join(parts) + tuned


def _flat(changes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in changes.items():
        if isinstance(v, dict):
            out.update(v)
        else:
            out[k] = v
    return out


def interval_text(e: dict[str, Any], ratio: bool = False) -> str:
    if e.get("lo") is None:
        return "—"
    return f"[{e['lo']:.2f}, {e['hi']:.2f}]x" if ratio else f"[{e['lo']:+.2f}, {e['hi']:+.2f}]"


def value_text(x: float | None, ratio: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}x" if ratio else f"{x:+.2f}"


def _errors_section(result: dict[str, Any], arms: list[str]) -> list[str]:
    lines = ["## What we measured", "",
             "| arm | view | top-1 error % | top-5 error % | training error % (last epoch) | per seed, top-1 |",
             "|---|---|---|---|---|---|"]
    for label in arms:
        arm, numbers = result["arms"][label], result["measured"][label]
        lines.append(f"| {label} | {arm['view']} | {_pm(numbers['top1'])} | {_pm(numbers['top5'])} | "
                     f"{_pm(numbers['train_error'])} | " + ", ".join(f"{v:.2f}" for v in numbers["top1"]) + " |")
    lines += ["", "Effects, per seed then averaged (errors: without − with in percentage points, positive: the "
              "feature helps; ratios: with over without):", "",
              "| effect | measured | 95% interval | MDE | paper | verdict |", "|---|---|---|---|---|---|"]
    for m, e in result["effects"].items():
        ratio = m == "iterations"
        lines.append(f"| {EFFECT_NAMES.get(m, m)} | {value_text(e['diff'], ratio)} | {interval_text(e, ratio)} | "
                     f"{value_text(e.get('mde'), ratio).lstrip('+')} | {value_text(e['paper'], ratio)} | "
                     f"{e['verdict']} |")
    if "top5" not in result.get("metrics", ["top1", "top5"]):
        lines += ["", "Top-5 is listed above but judged nowhere: with 10 classes it is half of them, and it cannot "
                  "be set beside the paper's top-5 on 1000."]
    lines += ["", "The training error in the table is the one measured while training over the last epoch "
              "(augmented images, dropout on), as the paper's curves are."]
    if result.get("regime"):
        lines += ["", f"Regime: {result['regime']}."]
    clean = {label: result["measured"][label].get("train_eval_error") for label in arms}
    if all(clean.values()):
        lines += ["", "Training error in eval mode (no dropout) on un-augmented training images with the centre view, "
                  "after the last epoch: " + "; ".join(f"{label} {_pm(v)} %" for label, v in clean.items()) + "."]
    for label, gap in (result.get("overfitting") or {}).items():
        lines += ["", f"Overfitting of \"{label}\", test error minus eval-mode training error (centre view, paired "
                  f"per seed): **{gap['diff']:+.2f} points**, 95% interval {interval_text(gap)}."]
    if result.get("overfitting") and result["kind"] == "errors" and "iterations" not in result["effects"]:
        lines += ["", "A regulariser can only show its effect where the net without it overfits: the verdict asks "
                  "for the gap of the arm without it to lie above zero first."]
    conv = result.get("convergence")
    if conv:
        def show(xs: list) -> str:
            return ", ".join("not reached" if x is None else f"{x:.1f}" for x in xs)
        lines += ["", "Iterations to converge (the paper: dropout \"roughly doubles\" them): epochs until the "
                  f"training error ({'eval mode' if conv['measure'] == 'train_eval_error' else 'running'}) first "
                  f"reaches {100 * conv['target']:.2f}%, "
                  "the highest error every run of both arms had reached by three quarters of its epochs: with dropout "
                  f"{show(conv['epochs']['with'])}, without {show(conv['epochs']['without'])}."]
    return lines


def _speed_section(result: dict[str, Any], arms: list[str]) -> list[str]:
    lines = ["## What we measured", "",
             "Epochs until the training error (measured over each epoch, as in figure 1) first reaches "
             f"{FIGURE1_ERROR:.0%}, linearly interpolated between epochs:", "",
             "| arm | epochs to 25%, per seed | mean |", "|---|---|---|"]
    for label in arms:
        reach = result["epochs_to_25"][label]
        shown = ", ".join("not reached" if x is None else f"{x:.2f}" for x in reach)
        got = [x for x in reach if x is not None]
        mean = (f"{mean_std(got)[0]:.2f}" + ("" if len(got) == len(reach) else f" ({len(got)} of {len(reach)} seeds)")
                if got else "—")
        lines.append(f"| {label} | {shown} | {mean} |")
    e = result["effects"]["speedup"]
    ratio = result["ratio"]
    shown = "—" if ratio is None else (
        f"at least {ratio:.1f}x" if result["ratio_is_lower_bound"]
        else f"{ratio:.2f}x, 95% interval {interval_text(e, True)}, MDE {value_text(e.get('mde'), True)}"
    )
    lines += ["", f"tanh's epochs over ReLU's, per seed, as a geometric mean: **{shown}** (the paper: about "
              f"{result['paper']['speedup']:.0f}x). A run stops once its training error reaches {FIGURE1_ERROR:.0%}, "
              f"or after {result['max_epochs']} epochs; a seed that never got there counts as its budget, so the "
              "ratio is then a lower bound."]
    pilots = {label: arm.get("lr_pilot") or [] for label, arm in result["arms"].items()}
    if any(pilots.values()):
        lines += ["", "As in the paper, each net's learning rate was chosen on its own to make training as fast as "
                  "possible: seed 0 trained at each rate of a grid, widened until the best rate had a slower one on "
                  "either side, and the rate that reached 25% in the fewest epochs won (a pilot stops once it can no "
                  "longer win; the winner's run is the arm's seed 0). Epochs to 25% at each rate:", "",
                  "| arm | epochs to 25% (or training error % at the stop) at each lr | chosen |", "|---|---|---|"]
        for label, trials in pilots.items():
            shown = ", ".join(f"{t['lr']:g}: " + (f"{t['epochs_to_25']:.2f}" if t.get("epochs_to_25") is not None
                                                  else f"not in {t.get('epochs', 0)} ({100 * t['train_error']:.1f}%)")
                              for t in trials)
            lines.append(f"| {label} | {shown} | {result['arms'][label]['config']['lr']:g} |")
    return lines


def _n(images: int) -> str:
    return f"{images:,}" if images else "all"


def _devices(result: dict[str, Any]) -> str:
    return ", ".join(sorted({r["device"] for arm in result["arms"].values() for r in arm["runs"]}))


def _mean_curve(runs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float], list[float], list[float]]:
    n = min(len(r["curve"]) for r in runs)  # runs that stop at a target end at different epochs
    epochs = [p["epoch"] for p in runs[0]["curve"][:n]]
    per_epoch = list(zip(*[[100 * p[key] for p in r["curve"][:n]] for r in runs]))
    return epochs, [sum(v) / len(v) for v in per_epoch], [min(v) for v in per_epoch], [max(v) for v in per_epoch]


def plot_curves(result: dict[str, Any], path: Path) -> Path:
    """Per-epoch error of both arms, mean over seeds with the min-max band; figure 1's axes for relu-vs-tanh."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    speed = result["kind"] == "speed"
    keys = ([("train_error", "training error")] if speed
            else [("train_error", "training error"), ("val_error", "test error (centre view)")])
    if not speed and all("train_eval_error" in r["curve"][-1] for arm in result["arms"].values() for r in arm["runs"]):
        keys.insert(1, ("train_eval_error", "training error, eval mode"))
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    for ax, (key, name) in zip(axes[0], keys):
        for colour, (label, arm) in zip(COLOURS, result["arms"].items()):
            epochs, mean, lo, hi = _mean_curve(arm["runs"], key)
            style = "-" if colour == COLOURS[0] else "--"
            ax.plot(epochs, mean, style, color=colour, label=label, marker="o", markersize=3)
            ax.fill_between(epochs, lo, hi, color=colour, alpha=0.15, linewidth=0)
            for run in arm["runs"]:  # each seed to its own end, past the epochs all of them reached
                if len(run["curve"]) > len(epochs):
                    tail = run["curve"][len(epochs) - 1:]
                    ax.plot([q["epoch"] for q in tail], [100 * q[key] for q in tail], style, color=colour,
                            linewidth=0.8, alpha=0.5)
        if speed:
            ax.axhline(100 * FIGURE1_ERROR, color="gray", linewidth=0.8, linestyle=":")
        ax.set_xlabel("epochs")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{name} (%)")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{result['title']} — {result['seeds']} seed(s), mean and range")
    return save(fig, path)


def plot_errors(result: dict[str, Any], path: Path) -> Path:
    """Every seed's final top-1 and top-5 error per arm, and their mean ± std."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.9))
    labels = list(result["arms"])
    for ax, m in zip(axes, ("top1", "top5")):
        for i, (colour, label) in enumerate(zip(COLOURS, labels)):
            values = result["measured"][label][m]
            mean, std = mean_std(values)
            # no bars: their base would be an axis cut at some error, which exaggerates differences
            ax.plot([i - 0.08] * len(values), values, "o", color=colour, alpha=0.6)
            ax.errorbar(i + 0.08, mean, yerr=std, fmt="D", color=colour, capsize=4)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_ylabel(f"{m.replace('top', 'top-')} error (%)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{result['title']}\nfinal error: each seed (dots), mean ± std (diamond)", fontsize=10)
    return save(fig, path)
