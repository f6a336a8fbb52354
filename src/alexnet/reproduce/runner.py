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
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alexnet.atomic import atomic_path
from alexnet.config import make_config
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.run_folder import MARKER, held, read_metrics
from alexnet.errors import UsageError
from alexnet.reproduce import stats
from alexnet.reproduce.experiments import Arm, Experiment, Scale, arm_config

# Fields that do not change what a run learns, left out of its identity.
NOT_IN_KEY = ("device", "workers", "out", "resume", "tensorboard")
# Fields written out at the value they took implicitly when the runs were first keyed (TrainConfig's
# default then): spelling them out does not change what a run is, so it keeps its key and results.
IMPLICIT_BEFORE = {"translate": -1}
# Figure 1's threshold: training error 25%.
FIGURE1_ERROR = 0.25


def run_key(config: dict[str, Any]) -> str:
    """A short stable name for a training config (sha1 of its sorted JSON)."""
    kept = {k: v for k, v in config.items() if k not in NOT_IN_KEY
            and not (k in IMPLICIT_BEFORE and IMPLICIT_BEFORE[k] == v)}
    return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:10]


def run_folder(runs_dir: Path, config: dict[str, Any], seed: int) -> Path:
    return runs_dir / f"{config['model']}-{run_key(config)}-seed{seed}"


def train_run(config: dict[str, Any], seed: int, runs_dir: Path, *, device: str = "auto",
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """The result of `config` trained with `seed`: read from its folder, or trained now (resumed if half done).

    The run is held for the whole of it, training and measuring, by a lock of its own beside
    its folder (runs/.NAME.lock): a second `alexnet reproduce` into the same --out meeting a run
    that the first is still working on stops in one line ("busy") rather than taking the
    folder for a half-done one and deleting it.
    """
    folder = run_folder(runs_dir, config, seed)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {runs_dir}: {e.strerror or e}") from None
    with held(runs_dir / f".{folder.name}.lock", f"run {folder} is busy: {{holder}} is training or measuring "
              "it; wait for it to end, or pick another --out", what=str(runs_dir)):
        return _run(config, seed, folder, device=device, say=say)


def _run(config: dict[str, Any], seed: int, folder: Path, *, device: str,
         say: Callable[[str], None]) -> dict[str, Any]:
    # torch and the data stack load only when a run trains
    from alexnet.engine.train import fit
    from alexnet.viz.run import draw_run_pictures

    done = folder / "result.json"
    if done.is_file():
        result, damage = read_result(done, config, seed)
        if result is not None:
            return result
        say(f"  {done} is damaged ({damage}): the run is measured again")
        done.unlink()  # our own record, rewritten below from the run
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
        # a run of ours that ended before its result was written: train it again, unless a process
        # (an `alexnet train --resume` by hand) holds it
        with held(folder / MARKER, f"run folder {folder} is in use: {{holder}} is training into it; "
                  "wait for it to end, or pick another --out", what=f"run folder {folder}"):
            shutil.rmtree(folder)
    started = time.perf_counter()
    summary = fit(make_config(config, seed=seed, out=str(folder), resume=resume, device=device),
                  on_end=draw_run_pictures)
    records = read_metrics(folder)
    last = records[-1]
    test = summary.get("test") or {}  # the test split, scored once at the end (the runs validate on a holdout)
    if test:
        center = {"top1_error": 1 - test["center"]["top1"], "top5_error": 1 - test["center"]["top5"]}
        tencrop = ({"top1_error": 1 - test["tencrop"]["top1"], "top5_error": 1 - test["tencrop"]["top5"]}
                   if "tencrop" in test else None)
    else:  # data with no test split of its own beyond 'val' (a folder tree with train/val only): the val split
        center = {"top1_error": 1 - last["val_top1"], "top5_error": 1 - last["val_top5"]}
        tencrop = ({"top1_error": 1 - summary["final_top1"], "top5_error": 1 - summary["final_top5"]}
                   if summary["tta"] == "tencrop" else None)
    from alexnet.reproduce.lrn_effect import measure_run

    result = {
        "seed": seed,
        "config": config,
        "run_dir": folder.name,
        "num_classes": summary["num_classes"],
        "curve": [{"epoch": r["epoch"], "train_error": 1 - r["train_top1"], "val_error": 1 - r["val_top1"],
                   "val_top5_error": 1 - r["val_top5"], "train_loss": r["train_loss"], "val_loss": r["val_loss"],
                   **({"train_eval_error": 1 - r["train_eval_top1"]} if "train_eval_top1" in r else {})}
                  for r in records],
        "scored_on": "test" if test else "val",
        "center": center,
        "tencrop": tencrop,
        "lrn_term": measure_run(folder),  # LRN's data term over k in the trained net ({} without LRN)
        "train_images_per_s": summary["train_images_per_s"],
        "seconds": time.perf_counter() - started,
        "device": summary["device"],
    }
    with atomic_path(done) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    return result


# What a run's result.json holds, each with the type it must have.
RESULT_FIELDS = {"seed": int, "config": dict, "run_dir": str, "num_classes": int, "curve": list, "scored_on": str,
                 "center": dict, "train_images_per_s": (int, float), "seconds": (int, float), "device": str}


def read_result(path: Path, config: dict[str, Any], seed: int) -> tuple[dict[str, Any] | None, str]:
    """A run's result.json, checked: (the result, "") or (None, what is wrong with it)."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"not readable JSON: {type(e).__name__}"
    if not isinstance(result, dict):
        return None, f"a {type(result).__name__}, not an object"
    for key, kind in RESULT_FIELDS.items():
        if not isinstance(result.get(key), kind):
            return None, f"no valid {key!r}"
    center = result["center"]
    if not all(isinstance(center.get(k), (int, float)) for k in ("top1_error", "top5_error")):
        return None, "no valid 'center' errors"
    if result["config"] != config or result["seed"] != seed:
        return None, "another run's config or seed"
    return result, ""


# At most this many rates are added beyond either end of an arm's lr grid when the best rate sits
# at its edge (each step a factor of sqrt(10), so the grid stays evenly spaced in log).
MAX_WIDEN = 3


def pilot_lr(exp: Experiment, arm: Arm, scale: Scale, data: str, runs_dir: Path, *, device: str = "auto",
             say: Callable[[str], None] = print) -> tuple[float | None, list[dict[str, Any]]]:
    """The lr at which `arm` reaches figure 1's 25% training error in the fewest epochs (seed 0),
    from arm.lr_grid widened until the best rate has a slower one on either side.

    Each pilot is the arm's own run at that rate: it stops at 25% or at the scale's budget. A
    pilot started after a rate has reached 25% in E epochs stops after ceil(E) + 1 epochs, since
    it can no longer win. The schedule is constant, so a run that stops at 25% is the same run
    whatever its cap: the chosen rate's pilot is the arm's seed-0 run.

    Returns (lr, [{"lr", "epochs_to_25", "train_error", "epochs", "seconds", "result"}, ...] sorted
    by lr); (None, []) for an arm without a grid. A rate that never reaches 25% ranks by its last
    training error after every rate that did; a diverged one (NaN loss) ranks last.
    """
    if not arm.lr_grid:
        return None, []
    from alexnet.errors import TrainingDiverged

    budget = int(arm_config(exp, arm, scale, data)["epochs"])
    trials: list[dict[str, Any]] = []

    def rank(t: dict[str, Any]) -> tuple[float, float, float]:
        reach = t["epochs_to_25"]
        return (reach if reach is not None else math.inf, t["train_error"], t["lr"])

    def trial(lr: float) -> None:
        reached = [t["epochs_to_25"] for t in trials if t["epochs_to_25"] is not None]
        cap = min(budget, math.ceil(min(reached)) + 1) if reached else budget
        config = {**arm_config(exp, arm, scale, data), "lr": lr, "epochs": cap}
        say(f"{exp.name}: lr pilot, {arm.label}, lr {lr:g} (at most {cap} epochs)")
        try:
            result = train_run(config, 0, runs_dir, device=device, say=say)
            curve = [p["train_error"] for p in result["curve"]]
            trials.append({"lr": lr, "epochs_to_25": stats.epochs_to(curve, FIGURE1_ERROR), "train_error": curve[-1],
                           "epochs": len(curve), "seconds": result["seconds"], "result": result})
        except TrainingDiverged:
            trials.append(
                {"lr": lr, "epochs_to_25": None, "train_error": 1.0, "epochs": 0, "seconds": 0.0, "result": None}
            )

    for lr in arm.lr_grid:
        trial(lr)
    step = 10 ** 0.5
    for _ in range(MAX_WIDEN):
        trials.sort(key=lambda t: t["lr"])
        best = min(trials, key=rank)
        if best is trials[0]:
            trial(float(f"{trials[0]['lr'] / step:.3g}"))
        elif best is trials[-1] and best["result"] is not None:
            trial(float(f"{trials[-1]['lr'] * step:.3g}"))
        else:
            break
    trials.sort(key=lambda t: t["lr"])
    return min(trials, key=rank)["lr"], trials


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


# top-5 is read only where the set has at least this many classes (ImageNet's 1000); on 10
# classes it is half of them and says little
TOP5_MIN_CLASSES = 100
# a run whose test error is more than this many times the paper's (on the same task) is in another
# regime: its effect answers the direction at most
REGIME_FACTOR = 2.0


def measure(exp: Experiment, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The experiment's numbers from its runs' results (arm label -> one result per seed, paired by seed)."""
    with_runs, without_runs = results[exp.with_arm.label], results[exp.without_arm.label]
    if exp.kind == "speed":
        return _measure_speed(exp, with_runs, without_runs)
    classes = max((int(r.get("num_classes") or 0) for r in with_runs + without_runs), default=0)
    metrics = ["top1"] + (["top5"] if classes >= TOP5_MIN_CLASSES else [])
    arms: dict[str, dict[str, list[float]]] = {}
    for arm, runs in ((exp.with_arm, with_runs), (exp.without_arm, without_runs)):
        arms[arm.label] = {m: [100 * r[arm.view][f"{m}_error"] for r in runs] for m in ("top1", "top5")}
        arms[arm.label]["center_top1"] = [100 * r["center"]["top1_error"] for r in runs]
        arms[arm.label]["train_error"] = [100 * r["curve"][-1]["train_error"] for r in runs]
        if all("train_eval_error" in r["curve"][-1] for r in runs):  # eval mode, un-augmented, the test's view
            arms[arm.label]["train_eval_error"] = [100 * r["curve"][-1]["train_eval_error"] for r in runs]
    w, wo = arms[exp.with_arm.label], arms[exp.without_arm.label]
    regime = _regime(exp, w["top1"])
    effects = {}
    for m in metrics:
        e = stats.paired_effect(w[m], wo[m])
        word, why = stats.verdict(e, exp.paper.get(m), regime=regime)
        effects[m] = {**e, "paper": exp.paper.get(m), "verdict": word, "why": why}
    numbers: dict[str, Any] = {"measured": arms, "metrics": metrics, "regime": regime}
    lrn = _lrn_terms(with_runs)
    if lrn:
        numbers["lrn_term"] = lrn
    idle = not_learned(arms, with_runs + without_runs, effects["top1"])
    if exp.regulariser:
        numbers["overfitting"] = {
            label: _overfitting(arms[label]) for label in (exp.with_arm.label, exp.without_arm.label)
        }
    if exp.overfitting:
        numbers["convergence"] = _convergence(with_runs, without_runs)
        word, why, effects = _dropout_verdict(exp, numbers, effects)
    else:
        word, why = effects["top1"]["verdict"], effects["top1"]["why"]
        gap = numbers.get("overfitting", {}).get(exp.without_arm.label)
        if gap is not None and (gap["lo"] is None or gap["lo"] <= 0):
            word, why = "inconclusive", (
                "no overfitting to prevent at this scale: " + _gap_text(exp.without_arm.label, gap) + f"; {why}"
            )
    if idle is not None:
        word, why = "inconclusive", f"the nets did not learn: {idle}"
    return {**numbers, "effects": effects, "verdict": word, "why": why}


def _regime(exp: Experiment, errors: list[float]) -> str:
    """Why the runs are far from the paper's regime ('' where they are not, or it is unknown)."""
    if exp.paper_error is None or not errors:
        return ""
    mean = stats.mean_std(errors)[0]
    if mean <= REGIME_FACTOR * exp.paper_error:
        return ""
    return (f"the nets with the feature ended at {mean:.1f}% test error "
            f"where the paper's were at {exp.paper_error:g}%: "
            "another regime, so the paper's number is no yardstick here")


def _lrn_terms(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """LRN's data term over k in the trained nets of one arm, averaged over its runs ({} without LRN)."""
    from alexnet.reproduce.lrn_effect import pooled

    terms = [r["lrn_term"] for r in runs if r.get("lrn_term")]
    return pooled(terms) if terms and len(terms) == len(runs) else {}


def not_learned(
    arms: dict[str, dict[str, list[float]]], runs: list[dict[str, Any]], top1: dict[str, Any]
) -> str | None:
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
        return (f"every run of both arms gave the same error difference ({top1['diff']:+.2f} points), "
                "an interval of zero width")
    return None


def _overfitting(arm: dict[str, list[float]]) -> dict[str, Any]:
    """Test error minus training error of one arm's runs (paired per seed), in points, both with the
    centre view: above zero is overfitting. The training error is the eval-mode pass over
    un-augmented training images where the runs measured it, else the running error of the last
    epoch."""
    train = arm.get("train_eval_error") or arm["train_error"]
    e = stats.paired_effect(train, arm["center_top1"])
    return {**e, "gaps": [t - a for a, t in zip(train, arm["center_top1"])],
            "measure": "train_eval_error" if arm.get("train_eval_error") else "train_error"}


def _gap_text(label: str, gap: dict[str, Any]) -> str:
    interval = "no interval" if gap["lo"] is None else f"95% interval [{gap['lo']:+.2f}, {gap['hi']:+.2f}]"
    return (f"{label}, the test error minus the eval-mode training error is {gap['diff']:+.2f} points "
            f"({interval}), not above zero")


def _convergence(with_runs: list[dict[str, Any]], without_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Dropout's "roughly doubles the number of iterations required to converge", measured: the
    epochs each run takes to bring its training error (eval mode where measured) down to a common
    target, the highest error that every run of both arms has reached by 3/4 of its epochs, and
    their ratio per seed (with over without) as a geometric mean with its interval."""
    key = ("train_eval_error" if all("train_eval_error" in r["curve"][-1] for r in with_runs + without_runs)
           else "train_error")
    runs = with_runs + without_runs
    target = max(min(p[key] for p in r["curve"][: max(1, (3 * len(r["curve"])) // 4)]) for r in runs)
    reach = {name: [stats.epochs_to([p[key] for p in r["curve"]], target) for r in rs]
             for name, rs in (("with", with_runs), ("without", without_runs))}
    pairs = [(a, b) for a, b in zip(reach["with"], reach["without"]) if a is not None and b is not None]
    ratio = stats.ratio_effect([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    return {"measure": key, "target": target, "epochs": reach, "ratio": ratio}


def _dropout_verdict(
    exp: Experiment, numbers: dict[str, Any], effects: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """Section 4.2's two statements, each with its own verdict: (1) without dropout the net overfits
    substantially, and dropout shrinks that overfitting (the per-seed gap without minus with);
    (2) dropout roughly doubles the iterations to converge. The test-error difference at equal
    epochs is reported beside them, not judged: the claim does not state it."""
    w, wo = numbers["overfitting"][exp.with_arm.label], numbers["overfitting"][exp.without_arm.label]
    shrink = stats.paired_effect(w["gaps"], wo["gaps"])  # gap without - gap with, per seed
    if wo["lo"] is None or wo["lo"] <= 0:
        over = ("inconclusive", "no overfitting to prevent at this scale: " + _gap_text(exp.without_arm.label, wo))
    else:
        word, why = stats.verdict(shrink, None)
        over = (word, f"without dropout the net overfit by {wo['diff']:+.2f} points "
                f"(95% interval [{wo['lo']:+.2f}, {wo['hi']:+.2f}]); "
                f"dropout shrank that gap by {shrink['diff']:+.2f} points per seed: {why}")
    conv = numbers["convergence"]
    if conv["ratio"] is None:
        its = ("inconclusive", "some runs never reached the common training error, so there is no ratio")
    else:
        its = stats.ratio_verdict(
            conv["ratio"], exp.paper["iterations"], what="dropout's epochs to converge over those without it:"
        )
    out = {"overfitting": {**shrink, "paper": None, "verdict": over[0], "why": over[1]},
           "iterations": {**conv["ratio"], "paper": exp.paper["iterations"], "verdict": its[0], "why": its[1]}
           if conv["ratio"]
           else {"diff": None, "lo": None, "hi": None, "mde": None, "paper": exp.paper["iterations"],
                 "verdict": its[0], "why": its[1]},
           "top1": {**effects["top1"], "verdict": "not judged",
                    "why": "test error at equal epochs, reported beside the claim, not part of it"}}
    word = over[0] if over[0] == its[0] else f"overfitting {over[0]}; iterations {its[0]}"
    return word, f"(1) {over[1]}; (2) {its[1]}", out


def _measure_speed(exp: Experiment, fast: list[dict[str, Any]], slow: list[dict[str, Any]]) -> dict[str, Any]:
    """Figure 1: epochs to 25% training error per seed, and tanh's over ReLU's per seed (a lower bound where
    tanh never got there)."""
    epochs = max(int(r["config"]["epochs"]) for r in fast + slow)  # the budget (a pilot's cap may be smaller)
    reach = {label: [stats.epochs_to([p["train_error"] for p in r["curve"]], FIGURE1_ERROR) for r in runs]
             for label, runs in ((exp.with_arm.label, fast), (exp.without_arm.label, slow))}
    a, b = reach[exp.with_arm.label], reach[exp.without_arm.label]
    paper = exp.paper["speedup"]
    bound = any(y is None for y in b)
    what = "tanh's epochs to 25% over ReLU's:"
    if any(x is None for x in a):
        ratio = None
        word, why = "inconclusive", (
            f"ReLU did not reach {FIGURE1_ERROR:.0%} training error within {epochs} epochs in every seed; "
            "give it more epochs"
        )
    else:
        # a lower bound where tanh never got there
        slow_epochs = [float(len(r["curve"])) if y is None else y for y, r in zip(b, slow)]
        ratio = stats.ratio_effect(slow_epochs, a)
        word, why = stats.ratio_verdict(ratio, paper, what=what, bound=bound)
    return {"epochs_to_25": reach, "ratio": None if ratio is None else ratio["diff"], "ratio_is_lower_bound": bound,
            "max_epochs": epochs, "verdict": word, "why": why, "metrics": ["speedup"],
            "effects": {"speedup": {**(ratio or {"diff": None, "lo": None, "hi": None, "mde": None}), "paper": paper,
                                    "verdict": word, "why": why}}}


def run_experiment(exp: Experiment, scale: Scale, scale_name: str, *, data: str, seeds: int, runs_dir: Path,
                   device: str = "auto", say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or read) every run of `exp` and measure it: the content of its results.json."""
    results: dict[str, list[dict[str, Any]]] = {exp.with_arm.label: [], exp.without_arm.label: []}
    pilots = {arm.label: pilot_lr(exp, arm, scale, data, runs_dir, device=device, say=say)
              for arm in (exp.with_arm, exp.without_arm)}
    todo = arm_runs(exp, scale, data, seeds, {label: lr for label, (lr, _) in pilots.items()})
    configs = {label: config for label, config, _ in todo}
    chosen = {label: next((t["result"] for t in trials if t["lr"] == lr and t["result"] is not None), None)
              for label, (lr, trials) in pilots.items()}
    for i, (label, config, seed) in enumerate(todo, start=1):
        if seed == 0 and chosen[label] is not None:  # the chosen rate's pilot is this run (pilot_lr)
            say(f"{exp.name} [{i}/{len(todo)}] {label}, seed 0: the lr pilot's run")
            results[label].append(chosen[label])
            continue
        done = run_folder(runs_dir, config, seed) / "result.json"
        cached = done.is_file() and read_result(done, config, seed)[0] is not None
        say(f"{exp.name} [{i}/{len(todo)}] {label}, seed {seed}" + (" (done before)" if cached else ""))
        results[label].append(train_run(config, seed, runs_dir, device=device, say=say))
    numbers = measure(exp, results)
    seconds = {r["run_dir"]: r["seconds"] for rs in results.values() for r in rs}
    seconds.update(
        {t["result"]["run_dir"]: t["seconds"] for _, trials in pilots.values() for t in trials if t["result"]}
    )
    return {
        "experiment": exp.name, "title": exp.title, "section": exp.section, "claim": exp.claim, "kind": exp.kind,
        "differences": exp.differences,
        "paper": exp.paper, "data": data, "seeds": seeds, "scale_name": scale_name, "scale": scale.__dict__,
        "arms": {arm.label: {"changes": arm.changes, "view": arm.view, "config": configs[arm.label],
                             "runs": results[arm.label],
                             "lr_pilot": [{k: v for k, v in t.items() if k != "result"} for t in pilots[arm.label][1]]}
                 for arm in (exp.with_arm, exp.without_arm)},
        "shares_runs_with": shares_runs_with(exp, scale, data),
        **numbers,
        "seconds_trained": sum(seconds.values()),
    }


def shares_runs_with(exp: Experiment, scale: Scale, data: str) -> list[str]:
    """The other experiments whose "with" arm is the same training config as `exp`'s: their runs
    are shared, so one odd seed moves all their estimates together."""
    from alexnet.reproduce.experiments import EXPERIMENTS

    mine = arm_config(exp, exp.with_arm, scale, data)
    return [e.name for e in EXPERIMENTS.values()
            if e.name != exp.name and arm_config(e, e.with_arm, scale, data) == mine]
