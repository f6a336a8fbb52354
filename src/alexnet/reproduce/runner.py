"""Training the runs an experiment needs, once each, and measuring the experiment from them.

A run is a training config and a seed; it lives in OUT/runs/<hash of the config>-seed<k>/, a
normal run folder (`alexnet eval` and `alexnet viz` read it) plus `result.json`, the numbers the
reports use. A run that has its `result.json` is never trained again, so experiments that share
the base net share its runs, and `alexnet reproduce` started again after an interruption goes on
where it stopped (a half-trained run resumes from its last checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from alexnet.atomic import atomic_path
from alexnet.config import make_config
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.metrics import read_metrics
from alexnet.engine.run_folder import MARKER
from alexnet.errors import UsageError
from alexnet.reproduce import stats
from alexnet.reproduce.experiments import Arm, Experiment, Scale, arm_config

# Fields that do not change what a run learns, left out of its identity.
NOT_IN_KEY = ("device", "workers", "out", "resume", "tensorboard")
# Figure 1's threshold: training error 25%.
FIGURE1_ERROR = 0.25


def run_key(config: dict[str, Any]) -> str:
    """A short stable name for a training config (sha1 of its sorted JSON)."""
    kept = {k: v for k, v in config.items() if k not in NOT_IN_KEY}
    return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:10]


def run_folder(runs_dir: Path, config: dict[str, Any], seed: int) -> Path:
    return runs_dir / f"{config['model']}-{run_key(config)}-seed{seed}"


def train_run(config: dict[str, Any], seed: int, runs_dir: Path, *, device: str = "auto",
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """The result of `config` trained with `seed`: read from its folder, or trained now (resumed if half done)."""
    from alexnet.engine.train import fit  # torch and the data stack load only when a run trains

    folder = run_folder(runs_dir, config, seed)
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    resume = ""
    if (folder / "last.pt").is_file():
        # the folder, as fit resumes it: a damaged last.pt falls back to best.pt there too
        state = load_checkpoint(folder, prefer="last")
        if int(state["epoch"]) < int(config["epochs"]):
            resume = str(folder)
            say(f"  resuming {folder} at epoch {int(state['epoch']) + 1}")
    if not resume and folder.exists():
        if not (folder / MARKER).is_file():  # never delete a folder this project did not make
            raise UsageError(f"{folder} is in the way of a run and is not an alexnet run folder; move it away")
        shutil.rmtree(folder)  # a run of ours that ended before its result was written: train it again
    started = time.perf_counter()
    summary = fit(make_config(config, seed=seed, out=str(folder), resume=resume, device=device))
    records = read_metrics(folder)
    last = records[-1]
    result = {
        "seed": seed,
        "config": config,
        "run_dir": folder.name,
        "num_classes": summary["num_classes"],
        "curve": [{"epoch": r["epoch"], "train_error": 1 - r["train_top1"], "val_error": 1 - r["val_top1"],
                   "val_top5_error": 1 - r["val_top5"], "train_loss": r["train_loss"], "val_loss": r["val_loss"],
                   **({"train_eval_error": 1 - r["train_eval_top1"]} if "train_eval_top1" in r else {})} for r in records],
        "center": {"top1_error": 1 - last["val_top1"], "top5_error": 1 - last["val_top5"]},
        "tencrop": ({"top1_error": 1 - summary["final_top1"], "top5_error": 1 - summary["final_top5"]}
                    if summary["tta"] == "tencrop" else None),
        "train_images_per_s": summary["train_images_per_s"],
        "seconds": time.perf_counter() - started,
        "device": summary["device"],
    }
    with atomic_path(done) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    return result


# At most this many rates are added beyond either end of an experiment's lr grid when the best
# rate sits at its edge (each step a factor of sqrt(10), so the grid stays evenly spaced in log).
MAX_WIDEN = 3


def pilot_lr(exp: Experiment, arm: Arm, scale: Scale, data: str, runs_dir: Path, *, device: str = "auto",
             say: Callable[[str], None] = print) -> tuple[float | None, list[dict[str, Any]]]:
    """The lr with the lowest training error after a pilot of scale.pilot_epochs (seed 0), from
    exp.lr_grid widened until the best rate is inside it: when the best is the grid's smallest
    (largest) rate, the next smaller (larger) one is tried too, up to MAX_WIDEN more, so that the
    chosen rate is bracketed on both sides by worse ones.

    Returns (lr, [{"lr", "train_error", "seconds"}, ...] sorted by lr); (None, []) when the
    experiment tunes nothing. Ties go to the smaller lr; a pilot that diverged (NaN loss) counts as
    error 1, and a diverged largest rate needs no larger one.
    """
    if not exp.lr_grid:
        return None, []
    from alexnet.errors import TrainingDiverged

    def trial(lr: float) -> dict[str, Any]:
        config = {**arm_config(exp, arm, scale, data), "lr": lr, "epochs": scale.pilot_epochs, "stop_train_error": 0.0}
        say(f"{exp.name}: lr pilot, {arm.label}, lr {lr:g}")
        try:
            result = train_run(config, 0, runs_dir, device=device, say=say)
            return {"lr": lr, "train_error": result["curve"][-1]["train_error"], "seconds": result["seconds"]}
        except TrainingDiverged:
            return {"lr": lr, "train_error": 1.0, "seconds": 0.0}

    trials = [trial(lr) for lr in exp.lr_grid]
    step = 10 ** 0.5
    for _ in range(MAX_WIDEN):
        trials.sort(key=lambda t: t["lr"])
        best = min(trials, key=lambda t: (t["train_error"], t["lr"]))
        if best is trials[0]:
            trials.append(trial(float(f"{trials[0]['lr'] / step:.3g}")))
        elif best is trials[-1] and best["train_error"] < 1.0:
            trials.append(trial(float(f"{trials[-1]['lr'] * step:.3g}")))
        else:
            break
    trials.sort(key=lambda t: t["lr"])
    best = min(trials, key=lambda t: (t["train_error"], t["lr"]))
    return best["lr"], trials


def arm_runs(exp: Experiment, scale: Scale, data: str, seeds: int,
             lrs: dict[str, float | None] | None = None) -> list[tuple[str, dict[str, Any], int]]:
    """(arm label, config, seed) of every run `exp` needs; a 'views' experiment's two arms are one run.

    `lrs` maps an arm's label to the lr its pilot chose (None or absent: the config's own).
    """
    out = []
    for arm in (exp.with_arm, exp.without_arm):
        config = arm_config(exp, arm, scale, data)
        if (lrs or {}).get(arm.label) is not None:
            config["lr"] = lrs[arm.label]  # type: ignore[index]
        out += [(arm.label, config, seed) for seed in range(seeds)]
    return out


def measure(exp: Experiment, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The experiment's numbers from its runs' results (arm label -> one result per seed)."""
    with_runs, without_runs = results[exp.with_arm.label], results[exp.without_arm.label]
    if exp.kind == "speed":
        return _measure_speed(exp, with_runs, without_runs)
    arms: dict[str, dict[str, list[float]]] = {}
    for arm, runs in ((exp.with_arm, with_runs), (exp.without_arm, without_runs)):
        arms[arm.label] = {m: [100 * r[arm.view][f"{m}_error"] for r in runs] for m in ("top1", "top5")}
        arms[arm.label]["train_error"] = [100 * r["curve"][-1]["train_error"] for r in runs]
        if all("train_eval_error" in r["curve"][-1] for r in runs):  # eval mode, un-augmented, the test's view
            arms[arm.label]["train_eval_error"] = [100 * r["curve"][-1]["train_eval_error"] for r in runs]
    effects = {}
    interval = stats.paired_interval if exp.kind == "views" else stats.welch_interval
    for m in ("top1", "top5"):
        # positive = the paper's feature lowers the error: without - with
        diff, lo, hi = interval(arms[exp.with_arm.label][m], arms[exp.without_arm.label][m])
        word, why = stats.verdict(diff, lo, hi, exp.paper.get(m))
        effects[m] = {"diff": diff, "lo": lo, "hi": hi, "paper": exp.paper.get(m), "verdict": word, "why": why}
    word, why = effects["top1"]["verdict"], effects["top1"]["why"]
    numbers: dict[str, Any] = {"measured": arms, "effects": effects}
    idle = not_learned(arms, with_runs + without_runs, effects["top1"])
    if exp.overfitting:
        gap = _overfitting(arms[exp.without_arm.label])
        numbers["overfitting"] = gap
        numbers["convergence"] = _convergence(with_runs, without_runs)
        if idle is None and (gap["lo"] is None or gap["lo"] <= 0):
            # no verdict on a claim about overfitting from nets that did not measurably overfit
            word = "inconclusive"
            why = (f"without {exp.with_arm.label.split()[0]} the net did not measurably overfit at this scale: its test error minus its "
                   f"training error is {gap['diff']:+.2f} points (95% interval " + ("none" if gap["lo"] is None else f"[{gap['lo']:+.2f}, {gap['hi']:+.2f}]")
                   + f", not above zero), so this scale cannot test the claim; with dropout the test error was {abs(effects['top1']['diff']):.2f} points "
                   + ("higher" if effects["top1"]["diff"] < 0 else "lower"))
    if idle is not None:
        word, why = "inconclusive", f"the nets did not learn: {idle}"
    return {**numbers, "verdict": word, "why": why}


def not_learned(arms: dict[str, dict[str, list[float]]], runs: list[dict[str, Any]], top1: dict[str, Any]) -> str | None:
    """Why no verdict can be drawn from these runs (None: they learned): an arm's test error within
    2 points of chance (1 - 1/K), or runs so alike that the interval has zero width."""
    k = max((int(r.get("num_classes") or 0) for r in runs), default=0)
    if k > 1:
        chance = 100 * (1 - 1 / k)
        for label, numbers in arms.items():
            mean = stats.mean_std(numbers["top1"])[0]
            if mean >= chance - 2:
                return f"{label} ended at {mean:.1f}% top-1 error, chance is {chance:.1f}%"
    if top1.get("lo") is not None and top1["lo"] == top1["hi"]:
        return f"every run of both arms gave the same error difference ({top1['diff']:+.2f} points), an interval of zero width"
    return None


def _overfitting(arm: dict[str, list[float]]) -> dict[str, float | None]:
    """Test error minus training error of one arm's runs (paired per seed), in points: above zero is overfitting.

    The training error is the eval-mode pass over un-augmented training images where the runs
    measured it (train_eval_images), else the running error of the last epoch."""
    train = arm.get("train_eval_error") or arm["train_error"]
    diff, lo, hi = stats.paired_interval(train, arm["top1"])
    return {"diff": diff, "lo": lo, "hi": hi, "measure": "train_eval_error" if arm.get("train_eval_error") else "train_error"}


def _convergence(with_runs: list[dict[str, Any]], without_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's "dropout roughly doubles the number of iterations required to converge", measured:
    epochs each arm takes to reach the training error the arm with dropout ends at (its worst seed's,
    so every seed reaches it; eval-mode training error where measured), and the ratio of their means
    (with over without)."""
    key = "train_eval_error" if all("train_eval_error" in r["curve"][-1] for r in with_runs + without_runs) else "train_error"
    target = max(r["curve"][-1][key] for r in with_runs)  # every seed with dropout gets there by its last epoch
    reach = {name: [stats.epochs_to([p[key] for p in r["curve"]], target) for r in runs]
             for name, runs in (("with", with_runs), ("without", without_runs))}
    got = {name: [x for x in xs if x is not None] for name, xs in reach.items()}
    ratio = (stats.mean_std(got["with"])[0] / stats.mean_std(got["without"])[0]) if got["with"] and got["without"] else None
    return {"measure": key, "target": target, "epochs": reach, "ratio": ratio}


def _measure_speed(exp: Experiment, fast: list[dict[str, Any]], slow: list[dict[str, Any]]) -> dict[str, Any]:
    """Figure 1: epochs to 25% training error per seed, and tanh's over ReLU's (a lower bound if tanh never got there)."""
    epochs = int(fast[0]["config"]["epochs"])  # the most a run may take (runs stop once they reach 25%)
    reach = {label: [stats.epochs_to([p["train_error"] for p in r["curve"]], FIGURE1_ERROR) for r in runs]
             for label, runs in ((exp.with_arm.label, fast), (exp.without_arm.label, slow))}
    a, b = reach[exp.with_arm.label], reach[exp.without_arm.label]
    paper = exp.paper["speedup"]
    if any(x is None for x in a):
        word, why, ratio, bound = "inconclusive", f"ReLU did not reach {FIGURE1_ERROR:.0%} training error within {epochs} epochs in every seed; give it more epochs", None, False
    else:
        bound = any(y is None for y in b)
        slow_epochs = [float(epochs) if y is None else y for y in b]  # a lower bound where tanh never got there
        ratio = stats.mean_std(slow_epochs)[0] / stats.mean_std(a)[0]
        faster_every_seed = all(y > x for x, y in zip(a, slow_epochs))
        at_least = "at least " if bound else ""
        if faster_every_seed and ratio >= paper / 2:
            word, why = "reproduced", f"ReLU reached {FIGURE1_ERROR:.0%} training error first in every seed, {at_least}{ratio:.1f}x sooner (the paper: about {paper:.0f}x)"
        elif not faster_every_seed and not bound and ratio <= 1:
            word, why = "not reproduced", f"tanh was as fast or faster ({ratio:.1f}x)"
        elif bound:
            word, why = "inconclusive", (f"ReLU reached {FIGURE1_ERROR:.0%} {at_least}{ratio:.1f}x sooner, but tanh did not get there within "
                                         f"{epochs} epochs, so the true ratio is unknown; give it more epochs")
        else:
            word, why = "not reproduced", f"ReLU reached {FIGURE1_ERROR:.0%} training error {ratio:.1f}x sooner, not the paper's {paper:.0f}x (half of it or more would count)"
    return {"epochs_to_25": reach, "ratio": ratio, "ratio_is_lower_bound": bound, "max_epochs": epochs,
            "verdict": word, "why": why, "effects": {"speedup": {"diff": ratio, "paper": paper, "verdict": word, "why": why}}}


def run_experiment(exp: Experiment, scale: Scale, scale_name: str, *, data: str, seeds: int, runs_dir: Path, device: str = "auto",
                   say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or read) every run of `exp` and measure it: the content of its results.json."""
    results: dict[str, list[dict[str, Any]]] = {exp.with_arm.label: [], exp.without_arm.label: []}
    pilots = {arm.label: pilot_lr(exp, arm, scale, data, runs_dir, device=device, say=say) for arm in (exp.with_arm, exp.without_arm)}
    todo = arm_runs(exp, scale, data, seeds, {label: lr for label, (lr, _) in pilots.items()})
    configs = {label: config for label, config, _ in todo}
    for i, (label, config, seed) in enumerate(todo, start=1):
        cached = (run_folder(runs_dir, config, seed) / "result.json").is_file()
        say(f"{exp.name} [{i}/{len(todo)}] {label}, seed {seed}" + (" (done before)" if cached else ""))
        results[label].append(train_run(config, seed, runs_dir, device=device, say=say))
    numbers = measure(exp, results)
    return {
        "experiment": exp.name, "title": exp.title, "section": exp.section, "claim": exp.claim, "kind": exp.kind,
        "differences": exp.differences,
        "paper": exp.paper, "data": data, "seeds": seeds, "scale_name": scale_name, "scale": scale.__dict__,
        "arms": {arm.label: {"changes": arm.changes, "view": arm.view, "config": configs[arm.label], "runs": results[arm.label],
                             "lr_pilot": pilots[arm.label][1]} for arm in (exp.with_arm, exp.without_arm)},
        **numbers,
        "seconds_trained": sum({r["run_dir"]: r["seconds"] for rs in results.values() for r in rs}.values())
        + sum(t["seconds"] for _, trials in pilots.values() for t in trials),
    }
