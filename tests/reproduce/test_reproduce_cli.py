"""`alexnet reproduce` end to end at the smoke scale: every experiment writes its report files, runs
are shared and kept."""

import json
import os
import re

import pytest

from alexnet.cli import main
from alexnet.reproduce.experiments import EXPERIMENTS
from alexnet.reproduce.runner import MAX_WIDEN

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "all", "--scale", "smoke", "--data", "shapes:train=300,test=100", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_writes_its_report(smoke, name):
    folder = smoke / name
    exp = EXPERIMENTS[name]
    expected = {"report.md", "curves.png", "results.json"} | ({"errors.png"} if exp.kind != "speed" else set())
    assert {p.name for p in folder.iterdir()} == expected
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((folder / "results.json").read_text())
    assert result["experiment"] == name and result["seeds"] == 2 and result["scale_name"] == "smoke"
    words = ("reproduced", "direction reproduced", "not reproduced", "inconclusive")
    assert result["verdict"] in words or all(part.split(" ", 1)[1] in words for part in result["verdict"].split("; "))
    arms = list(result["arms"].values())
    assert [len(a["runs"]) for a in arms] == [2, 2]
    # a run stops early only where the experiment says so (figure 1 at 25% training error)
    assert all(len(r["curve"]) == a["config"]["epochs"]
               or (a["config"].get("stop_train_error") and len(r["curve"]) <= a["config"]["epochs"])
               for a in arms for r in a["runs"])
    report = (folder / "report.md").read_text()
    for heading in ("## What the paper says", "## How it was tested", "## What we measured", "## Pictures"):
        assert heading in report
    assert f"**Verdict: {result['verdict']}.**" in report
    assert f"Command: `alexnet reproduce all --scale smoke --data shapes:train=300,test=100 --out {smoke}`" in report
    assert exp.claim in report
    if exp.kind == "speed":
        assert set(result["epochs_to_25"]) == set(result["arms"])
        # the grid, widened until the chosen rate has a slower one on each side
        for arm, a in zip((exp.with_arm, exp.without_arm), arms):
            lrs = [t["lr"] for t in a["lr_pilot"]]
            grid = arm.lr_grid
            assert set(grid) <= set(lrs) and len(lrs) <= len(grid) + MAX_WIDEN and lrs == sorted(lrs)
            chosen = lrs.index(a["config"]["lr"])
            assert (0 < chosen < len(lrs) - 1 or len(lrs) == len(grid) + MAX_WIDEN
                    or a["lr_pilot"][-1]["train_error"] == 1.0)
            assert a["runs"][0]["config"]["lr"] == a["config"]["lr"]  # seed 0 is the chosen rate's pilot
    else:
        assert result["metrics"] == ["top1"]  # 10 classes: no top-5 verdict
        for m in ("top1",) if exp.overfitting else result["metrics"]:
            e = result["effects"][m]
            label_with, label_without = list(result["arms"])
            means = [sum(v) / len(v) for v in (result["measured"][label_with][m], result["measured"][label_without][m])]
            assert e["diff"] == pytest.approx(means[1] - means[0])  # without - with
            assert e["lo"] <= e["diff"] <= e["hi"]


def test_measured_errors_are_the_test_split_scored_by_eval(smoke):
    """The errors a verdict reads are each run's last net on the test split, as `alexnet eval`
    scores it; the per-epoch curve read the holdout instead, which is other images."""
    from alexnet.engine.checkpoint import load_checkpoint
    from alexnet.engine.evaluate import evaluate_checkpoint

    result = json.loads((smoke / "towers" / "results.json").read_text())
    label, arm = next(iter(result["arms"].items()))
    for run, err in zip(arm["runs"], result["measured"][label]["top1"]):
        assert run["scored_on"] == "test" and err == pytest.approx(100 * run["tencrop"]["top1_error"])
        ckpt = load_checkpoint(smoke / "runs" / run["run_dir"], prefer="last")
        for view in ("center", "tencrop"):
            scored = evaluate_checkpoint(ckpt, workers=0, tta=view, split="test")
            assert run[view]["top1_error"] == pytest.approx(1 - scored["top1"], abs=1e-6)


def test_base_runs_are_shared(smoke):
    runs = [p.name for p in (smoke / "runs").iterdir() if not p.name.startswith(".")]  # not the runs' locks
    count = {model: sum(r.startswith(model + "-") for r in runs)
             for model in ("alexnet_mini", "convnet_local", "convnet4")}
    # alexnet_mini: the base and three ablations (towers, pooling, PCA) plus dropout's own two configs, 2 seeds each;
    # convnet_local: lrn's two arms; convnet4: figure 1's two arms and at least 4 lr pilots per arm
    assert count["alexnet_mini"] == (4 + 2) * 2 and count["convnet_local"] == 2 * 2
    # convnet4: each arm's three lr pilots or more (seed 0 is the chosen pilot) and seed 1
    assert count["convnet4"] >= 2 * 3 + 2 and len(runs) == sum(count.values())


def test_summary_table_has_a_row_per_experiment(smoke):
    table = (smoke / "paper.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "report.md" in line]
    assert len(rows) == len(EXPERIMENTS) + 1  # dropout's two statements, one row each
    assert "| MDE |" in table and all(row.count("|") == 10 for row in rows)
    for name in EXPERIMENTS:
        assert f"]({name}/report.md)" in table


def test_a_second_run_trains_nothing(smoke, capsys):
    before = {p: p.stat().st_mtime_ns for p in (smoke / "runs").rglob("result.json")}
    assert main(["reproduce", "lrn", "--scale", "smoke", "--data", "shapes:train=300,test=100", "--out",
                 str(smoke)]) == 0
    out = capsys.readouterr().out
    assert out.count("(done before)") == 4 and "training " not in out
    assert {p: p.stat().st_mtime_ns for p in (smoke / "runs").rglob("result.json")} == before


def test_list(capsys):
    assert main(["reproduce", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPERIMENTS) and "+1.7" in out and "iterations 2x" in out and "speedup 6x" in out


@pytest.mark.parametrize("args, words", [
    (["lrm"], "unknown experiment 'lrm'"),
    (["all", "--scale", "huge"], "invalid choice: 'huge'"),
    (["lrn", "--seeds", "0"], "--seeds: must be in [1, 100]"),
    (["lrn", "--data", "nosuch"], "unknown dataset 'nosuch'"),
])
def test_bad_input_is_one_line_exit_2(args, words, capsys):
    assert main(["reproduce", *args, "--out", "/nonexistent/never-written"]) == 2
    err = capsys.readouterr().err
    assert re.search(re.escape(words), err) and err.count("\n") == 1 and "Traceback" not in err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    assert main(["reproduce", "lrn", "--scale", "smoke", "--data", "shapes", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err and f.read_text() == "keep me"


def test_summary_that_is_a_folder_is_refused_before_training(tmp_path, capsys):
    assert main(["reproduce", "lrn", "--scale", "smoke", "--data", "shapes", "--out", str(tmp_path / "out"),
                 "--summary", str(tmp_path)]) == 2
    assert "--summary" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_an_unwritable_report_folder_is_one_line(tmp_path):
    from alexnet.errors import UsageError
    from alexnet.reproduce.summary import write_summary

    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(UsageError, match="cannot write"):
        write_summary(tmp_path, blocker / "paper.md")  # its parent is a file
    assert blocker.read_text() == "keep me"


def test_curves_of_seeds_that_stop_at_different_epochs(tmp_path):
    """Figure 1's runs stop at 25% training error, each seed at its own epoch: the mean runs over
    the epochs all reached, and the picture is still drawn (it once failed on 16 against 15)."""
    from PIL import Image

    from alexnet.reproduce.report import _mean_curve, plot_curves

    def run(errors):
        return {"curve": [{"epoch": e + 1, "train_error": v} for e, v in enumerate(errors)]}

    arms = {"ReLU": {"runs": [run([0.6, 0.4, 0.3, 0.24]), run([0.6, 0.45, 0.24])]},
            "tanh": {"runs": [run([0.7, 0.5, 0.35, 0.3, 0.24]), run([0.7, 0.5, 0.4, 0.24])]}}
    epochs, mean, lo, hi = _mean_curve(arms["ReLU"]["runs"], "train_error")
    assert epochs == [1, 2, 3]
    assert mean == pytest.approx([60, 42.5, 27])
    assert (lo, hi) == (pytest.approx([60, 40, 24]), pytest.approx([60, 45, 30]))
    result = {"kind": "speed", "arms": arms, "title": "relu-vs-tanh", "seeds": 2}
    path = plot_curves(result, tmp_path / "curves.png")
    assert Image.open(path).size[0] > 100


RESULT_DAMAGE = {
    "an empty curve": lambda r: {**r, "curve": []},
    "a curve of numbers": lambda r: {**r, "curve": [1]},
    "an epoch without its epoch": lambda r: {**r, "curve": [{k: v for k, v in r["curve"][0].items() if k != "epoch"}]},
    "ten-crop errors that are text": lambda r: {**r, "tencrop": {"top1_error": "x", "top5_error": 0.1}},
    "center errors missing": lambda r: {**r, "center": {}},
}


@pytest.mark.parametrize("what", [*RESULT_DAMAGE, "nested too deeply", "a sparse 3 GB file"])
def test_a_result_damaged_inside_is_measured_again_not_a_traceback(smoke, tmp_path, what):
    """Valid JSON with the wrong insides (which gave IndexError, TypeError, KeyError in the measures),
    JSON nested past Python's stack (RecursionError), and a file far larger than any result."""
    from alexnet.reproduce.runner import read_result

    source = next((smoke / "runs").rglob("result.json"))
    good = json.loads(source.read_text())
    path = tmp_path / "result.json"
    if what == "nested too deeply":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif what == "a sparse 3 GB file":
        path.write_text(source.read_text())
        os.truncate(path, 3 << 30)
    else:
        path.write_text(json.dumps(RESULT_DAMAGE[what](good)))
    assert read_result(source, good["config"], good["seed"]) == (good, "")
    result, damage = read_result(path, good["config"], good["seed"])
    assert result is None and damage, damage


def test_summary_sources_nested_too_deeply_or_huge_are_one_line(tmp_path):
    from alexnet.errors import UsageError
    from alexnet.reproduce.summary import write_summary

    (tmp_path / "towers").mkdir()
    for content in ("[" * 100_000 + "]" * 100_000, None):
        path = tmp_path / "towers" / "results.json"
        path.write_text(content or "{}")
        if content is None:
            os.truncate(path, 3 << 30)
        with pytest.raises(UsageError, match=r"towers/results\.json is damaged"):
            write_summary(tmp_path, tmp_path / "paper.md")


def test_damaged_result_files_are_measured_again_and_a_damaged_summary_source_is_one_line(smoke, capsys):
    """Our own state files, damaged as a crash or a hand edit leaves them: each run's result.json
    truncated, emptied to {}, made a list, or another run's is measured again, named; an
    experiment's damaged results.json stops the summary in one line. (Last in this file: it
    changes the shared runs.)"""
    from alexnet.reproduce.runner import read_result

    runs = sorted((smoke / "runs").rglob("result.json"))
    lrn_runs = [p for p in runs if json.loads(p.read_text())["config"]["model"] == "convnet_local"][:4]
    assert len(lrn_runs) == 4
    good = json.loads(lrn_runs[0].read_text())
    lrn_runs[0].write_text(lrn_runs[0].read_text()[:40])  # truncated
    lrn_runs[1].write_text("{}")
    lrn_runs[2].write_text("[1, 2]")
    lrn_runs[3].write_text(json.dumps({**good, "seed": 99}))  # another run's
    assert read_result(lrn_runs[1], good["config"], good["seed"]) == (None, "no valid 'seed'")
    args = ["reproduce", "lrn", "--scale", "smoke", "--data", "shapes:train=300,test=100", "--out", str(smoke)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("is damaged") == 4 and "Traceback" not in out
    for p in lrn_runs:
        assert read_result(p, json.loads(p.read_text())["config"], json.loads(p.read_text())["seed"])[1] == ""
    (smoke / "towers" / "results.json").write_text("{not json")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "towers/results.json is damaged (JSONDecodeError)" in err and len(err.strip().splitlines()) == 1
