"""Two processes, one `--out`: a run that a live process holds is never deleted or reused.

Real processes hold real locks here: a second `alexnet reproduce` paused (SIGSTOP) inside a run,
and a live process holding a run folder through the trainer's own `claimed`.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alexnet.cli import main
from alexnet.engine.run_folder import MARKER

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
ARGS = ["reproduce", "lrn", "--scale", "smoke", "--data", "shapes:train=300,test=100"]


def _wait(check, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_a_second_reproduce_meeting_a_run_the_first_holds_stops_busy_and_deletes_nothing(tmp_path, capsys):
    """The first, paused inside its first run (marker made, no last.pt yet: the state that was
    taken for half-done and deleted), keeps its folder; resumed, it finishes with whole runs."""
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "alexnet", *ARGS, "--out", str(out)], cwd=tmp_path, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: any((out / "runs").glob(f"*/{MARKER}")), first)
        first.send_signal(signal.SIGSTOP)
        [folder] = [p.parent for p in (out / "runs").glob(f"*/{MARKER}")]
        before = _tree(folder)
        assert main([*ARGS, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"run {folder} is busy: process {first.pid} on " in err, err
        assert _tree(folder) == before  # nothing of the first's touched
        first.send_signal(signal.SIGCONT)
        _out, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    for run in (out / "runs").glob(f"*/{MARKER}"):
        epochs = [json.loads(line)["epoch"] for line in (run.parent / "metrics.jsonl").read_text().splitlines()]
        assert epochs == list(range(1, len(epochs) + 1)) and epochs, (run.parent, epochs)
        assert json.loads((run.parent / "result.json").read_text())["run_dir"] == run.parent.name


def test_a_run_folder_a_live_trainer_holds_is_not_taken_for_half_done(tmp_path, capsys):
    """A marked folder with no checkpoint is trained again from scratch, but not while a process (an
    `alexnet train` by hand) holds it through the trainer's own lock."""
    out = tmp_path / "out"
    assert main([*ARGS, "--out", str(out)]) == 0
    capsys.readouterr()
    runs = sorted(p.parent for p in (out / "runs").glob(f"*/{MARKER}"))
    folder = runs[0]
    for name in ("result.json", "last.pt", "best.pt"):  # the state of a run killed before its first checkpoint
        (folder / name).unlink()
    (folder / "notes.txt").write_text("the holder's")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from alexnet.engine.run_folder import claimed
        with claimed(Path({str(folder)!r}), new=False):
            print("held", flush=True)
            time.sleep(600)
        """)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _tree(folder)
        assert main([*ARGS, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{folder} is in use: process {holder.pid} on " in err, err
        assert _tree(folder) == before
    finally:
        holder.kill()
        holder.wait()
    assert main([*ARGS, "--out", str(out)]) == 0  # the holder gone: the run is trained again
    assert (folder / "result.json").is_file() and not (folder / "notes.txt").exists()


def test_out_at_a_folder_of_someone_elses_is_refused_and_an_earlier_reproduce_folder_is_adopted(tmp_path, capsys):
    """reproduce rewrites OUT/NAME/report.md and results.json: a user's folder holding such files was
    written over without a word."""
    import shutil

    from alexnet.cli.reproduce import MARKER as OURS
    from alexnet.cli.reproduce import _claim

    users = tmp_path / "users"
    (users / "lrn").mkdir(parents=True)
    (users / "lrn" / "report.md").write_text("my notes\n")
    (users / "lrn" / "results.json").write_text('{"x": 1}')
    assert main([*ARGS, "--out", str(users)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a folder of `alexnet reproduce` and is not empty (lrn)" in err, err
    assert (users / "lrn" / "report.md").read_text() == "my notes\n" and not (users / "runs").exists()
    trained = tmp_path / "trained"  # a working folder where `alexnet train` made runs/: not reproduce's
    (trained / "runs").mkdir(parents=True)
    assert main(["train", "--data", "shapes:train=32,test=16,size=32", "--model", "alexnet_simple", "--epochs", "1",
                 "--batch-size", "16", "--workers", "0", "--no-tensorboard", "--out",
                 str(trained / "runs" / "alexnet_simple-shapes-20261207-101010")]) == 0
    (trained / "lrn").mkdir()
    (trained / "lrn" / "report.md").write_text("my notes\n")
    capsys.readouterr()
    assert main([*ARGS, "--out", str(trained)]) == 2
    assert "is not a folder of `alexnet reproduce`" in capsys.readouterr().err
    assert (trained / "lrn" / "report.md").read_text() == "my notes\n"
    earlier = tmp_path / "earlier"  # the committed CPU-scale reports, written before the marker was
    shutil.copytree(ROOT / "docs" / "reproduce" / "cpu", earlier, ignore=shutil.ignore_patterns("runs"))
    _claim(earlier)
    assert (earlier / OURS).is_file()
    _claim(tmp_path / "new")
    assert (tmp_path / "new" / OURS).is_file()
