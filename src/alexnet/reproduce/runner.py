"""Training the runs an experiment needs, once each, and measuring the experiment from them (measure.py).

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
from alexnet.errors import UsageError, printable
from alexnet.limits import STATE_FILE_BYTES, Refused, load_json, read_regular
from alexnet.reproduce import stats
from alexnet.reproduce.experiments import Arm, Experiment, Scale, arm_config
from alexnet.reproduce.measure import FIGURE1_ERROR, measure

# Fields that do not change what a run learns, left out of its identity.
NOT_IN_KEY = ("device", "workers", "out", "resume", "tensorboard")
# Fields written out at the value they took implicitly when the runs were first keyed (TrainConfig's
# default then): spelling them out does not change what a run is, so it keeps its key and results.
IMPLICIT_BEFORE = {"translate": -1}


def show(line: str) -> None:
    """A line for the terminal, its control characters escaped (a folder's name may hold any)."""
    print(printable(line))


def run_key(config: dict[str, Any]) -> str:
    """A short stable name for a training config (sha1 of its sorted JSON)."""
    kept = {k: v for k, v in config.items() if k not in NOT_IN_KEY
            and not (k in IMPLICIT_BEFORE and IMPLICIT_BEFORE[k] == v)}
    return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:10]


def run_folder(runs_dir: Path, config: dict[str, Any], seed: int) -> Path:
    return runs_dir / f"{config['model']}-{run_key(config)}-seed{seed}"


def train_run(config: dict[str, Any], seed: int, runs_dir: Path, *, device: str = "auto",
              say: Callable[[str], None] = show) -> dict[str, Any]:
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


CURVE_FIELDS = ("epoch", "train_error", "val_error")  # what the reports and measures read of each epoch


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_result(path: Path, config: dict[str, Any], seed: int) -> tuple[dict[str, Any] | None, str]:
    """A run's result.json, checked: (the result, "") or (None, what is wrong with it)."""
    try:
        result = load_json(read_regular(path, STATE_FILE_BYTES))
    except (OSError, Refused, UnicodeDecodeError, ValueError) as e:
        return None, f"not readable JSON: {type(e).__name__}"
    if not isinstance(result, dict):
        return None, f"a {type(result).__name__}, not an object"
    for key, kind in RESULT_FIELDS.items():
        if not isinstance(result.get(key), kind):
            return None, f"no valid {key!r}"
    for view in ("center", "tencrop"):
        errors = result.get(view)
        if not (view == "tencrop" and errors is None) and not (
                isinstance(errors, dict) and all(_number(errors.get(k)) for k in ("top1_error", "top5_error"))):
            return None, f"no valid {view!r} errors"
    curve = result["curve"]
    if not curve or not all(isinstance(r, dict) and all(_number(r.get(k)) for k in CURVE_FIELDS) for r in curve):
        return None, f"its curve is not a list of epochs with {', '.join(CURVE_FIELDS)}"
    if result["config"] != config or result["seed"] != seed:
        return None, "another run's config or seed"
    return result, ""


# At most this many rates are added beyond either end of an arm's lr grid when the best rate sits
# at its edge (each step a factor of sqrt(10), so the grid stays evenly spaced in log).
MAX_WIDEN = 3


def pilot_lr(exp: Experiment, arm: Arm, scale: Scale, data: str, runs_dir: Path, *, device: str = "auto",
             say: Callable[[str], None] = show) -> tuple[float | None, list[dict[str, Any]]]:
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




def run_experiment(exp: Experiment, scale: Scale, scale_name: str, *, data: str, seeds: int, runs_dir: Path,
                   device: str = "auto", say: Callable[[str], None] = show) -> dict[str, Any]:
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
