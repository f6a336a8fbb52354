"""The one-table summary of every experiment measured under an --out folder (docs/paper.md).

Each experiment's latest results.json gives a row per judged effect, against the paper's number;
the summary's first line (SUMMARY_TITLE) is how a rerun knows the file is its own to rewrite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alexnet.errors import UsageError
from alexnet.limits import STATE_FILE_BYTES, Refused, load_json, read_regular
from alexnet.reproduce.report import interval_text, value_text, write_text


def _training_time(runs_dir: Path) -> str:
    """The summed training time of every run kept under `runs_dir` (each run's own clock), and where it ran."""
    results = []
    for p in sorted(runs_dir.glob("*/result.json")):
        try:  # a damaged one is measured again by the next run of its experiment; not counted here
            r = load_json(read_regular(p, STATE_FILE_BYTES))
        except (OSError, Refused, UnicodeDecodeError, ValueError):
            continue
        if isinstance(r, dict) and isinstance(r.get("seconds"), (int, float)):
            results.append(r)
    if not results:
        return ""
    minutes = sum(r["seconds"] for r in results) / 60
    devices = ", ".join(sorted({r.get("device", "?") for r in results}))
    return f"Their {len(results)} runs trained in {minutes:.0f} min in all ({devices}, each run's own clock)."


def summary_rows(r: dict[str, Any], link: str) -> list[str]:
    """docs/paper.md's rows of one experiment: one per judged effect (dropout has two statements)."""
    scale = f"{r['scale_name']}, {r['seeds']}"
    idle = r["why"].startswith("the nets did not learn")
    rows = []
    for m, e in r["effects"].items():
        if e["verdict"] == "not judged":
            continue
        # one row per statement where the claim has two (dropout); else the experiment's own verdict,
        # which also weighs what the interval alone does not (a regulariser with nothing to prevent)
        verdict = e["verdict"] if m in ("overfitting", "iterations") and not idle else r["verdict"]
        ratio = m in ("speedup", "iterations")
        if m == "speedup":
            paper = f"{e['paper']:g}x faster"
            measured = "—" if e["diff"] is None else (
                f"≥ {e['diff']:.1f}x faster" if r["ratio_is_lower_bound"] else f"{e['diff']:.2f}x faster"
            )
        elif m == "iterations":
            paper, measured = (f"{e['paper']:g}x the epochs",
                               "—" if e["diff"] is None else f"{e['diff']:.2f}x the epochs")
        elif m == "overfitting":
            paper, measured = "direction only", f"gap shrank {e['diff']:+.2f} pts"
        else:
            paper = "direction only" if e["paper"] is None else f"{e['paper']:+.1f} pts {m.replace('top', 'top-')}"
            measured = f"{e['diff']:+.2f} pts {m.replace('top', 'top-')}"
        interval = ("—" if e.get("lo") is None or (m == "speedup" and r.get("ratio_is_lower_bound"))
                    else interval_text(e, ratio))
        mde = "—" if e.get("mde") is None else value_text(e["mde"], ratio).lstrip("+")
        title = r["title"] + (f": {m}" if m in ("overfitting", "iterations") else "")
        rows.append(f"| {title} | {r['section']} | {paper} | {measured} | {interval} | {mde} | {verdict} | {scale} "
                    f"| [report]({link}) |")
    return rows


SUMMARY_TITLE = "# The paper's claims, measured"  # the summary's first line: how a rerun knows the file is its own


def write_summary(out: Path, summary_path: Path) -> Path:
    """The table of every experiment under `out` that has a results.json, against the paper's numbers."""
    from alexnet.reproduce.experiments import EXPERIMENTS

    rows = ["| claim | section | paper | measured | 95% interval | MDE | verdict | scale, seeds | report |",
            "|---|---|---|---|---|---|---|---|---|"]
    found = 0
    for name in EXPERIMENTS:
        path = out / name / "results.json"
        if not path.is_file():
            continue
        found += 1
        try:
            r = load_json(read_regular(path, STATE_FILE_BYTES))
            rows += summary_rows(r, os.path.relpath(out / name / "report.md", summary_path.parent))
        except (OSError, Refused, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"{path} is damaged ({type(e).__name__}); run `alexnet reproduce {name}` with the same "
                             "--out again to rewrite it from its runs") from None
    text = "\n".join([
        SUMMARY_TITLE,
        "",
        "Each row is one claim tested by `alexnet reproduce`: the effect of one of the paper's choices on test error "
        "in percentage points (error without it minus error with it; positive means it helps), or a ratio of epochs. "
        "The arms are paired by seed; intervals are 95% paired t intervals over seeds. **reproduced**: the interval "
        "lies on the paper's side of zero (for a ratio: above 1 and holding the paper's number; *direction "
        "reproduced* where it excludes it or is only a lower bound). **not reproduced**: it lies on the other side. "
        "**inconclusive**: it holds zero; the report says whether the design was underpowered (its MDE, the smallest "
        "effect it would detect with 80% probability, above the paper's effect), the runs were in another regime, or "
        "a regulariser had no overfitting to prevent. Errors are on the test split, scored once per run; every choice "
        "made during training read a validation split held out of the training images. Top-5 is judged only on "
        "sets of 100 classes or more.",
        "",
        *rows,
        "",
        f"{found} of {len(EXPERIMENTS)} experiments have results. {_training_time(out / 'runs')} "
        "Regenerated by every `alexnet reproduce` run.",
        "",
    ])
    write_text(summary_path, text)
    return summary_path
