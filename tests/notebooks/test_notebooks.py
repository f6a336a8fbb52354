"""Every notebook in notebooks/ runs top to bottom in a fresh Jupyter kernel at smoke scale
(ALEXNET_SMOKE=1); the notebooks' own cells assert that what they print is sane (accuracy above
chance, shapes, NumPy equal to torch), so a notebook that runs is a notebook that works."""

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def runner():
    spec = importlib.util.spec_from_file_location("notebook_runner", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs_at_smoke_scale(name, tmp_path_factory):
    pytest.importorskip("nbclient", reason="the notebooks need the test extra's nbclient and ipykernel")
    pytest.importorskip("ipykernel", reason="the notebooks need the test extra's nbclient and ipykernel")
    if name.startswith("03-"):  # the d2l recipe is Fashion-MNIST's: skipped where no copy is on disk
        from alexnet.data.mnist import open_fashion_mnist
        from alexnet.errors import DataError

        try:
            open_fashion_mnist(None, download=False)
        except DataError:
            pytest.skip("Fashion-MNIST is not on disk (Debian package dataset-fashion-mnist; .ci/run installs it)")
    runs = tmp_path_factory.getbasetemp() / "notebook-runs"  # shared: 01 may use 04's run, as at full scale
    seconds = runner().execute(NOTEBOOKS / name, smoke=True, save=False, timeout=300, runs=runs)
    print(f"{name}: {seconds:.0f} s at smoke scale")  # a figure, not a test: no test asserts a duration


def test_every_notebook_has_committed_outputs_with_a_picture():
    import json

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert outputs, f"{path.name} is committed without outputs: run python notebooks/run.py {path.name}"
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} shows no picture"
        text = "".join("".join(o.get("text", "")) for o in outputs)
        assert "SMOKE scale" not in text, f"{path.name} was saved from a smoke run"


def test_the_notebooks_use_only_public_names():
    """A notebook that needs a private name means the API lacks something (DEVELOPERS.md, rule 8)."""
    import ast
    import json

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alexnet"):
                    names = [node.module, *(a.name for a in node.names)]
                elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id == "alexnet"):
                    names = [node.attr]
                else:
                    continue
                # dunders are public
                private = [n for n in names if any(p.startswith("_") and not p.endswith("__") for p in n.split("."))]
                assert not private, f"{path.name} uses {private}"


def test_the_kernel_runs_over_ipc_without_a_warning(tmp_path, capfd):
    """A one-cell notebook: its output comes back, and the kernel prints no warning (over TCP it
    warned once per notebook that its ports are unencrypted)."""
    pytest.importorskip("nbclient", reason="the notebooks need the test extra's nbclient and ipykernel")
    nbformat = pytest.importorskip("nbformat")
    path = tmp_path / "one.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(41 + 1)")]), path)
    runner().execute(path, smoke=True, save=True)
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    assert "WARNING" not in capfd.readouterr().err


BAD_NOTEBOOKS = {  # what a crash, a bad merge or a hand edit leaves, and what nbformat says of it
    "not JSON": "{not json",
    "a list": "[1, 2]",
    "empty object": "{}",
    "cells a number": '{"cells": 5, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    "a cell without source": '{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    "a future format": '{"nbformat": 99, "nbformat_minor": 0, "cells": [], "metadata": {}}',
    "not UTF-8": b"\xff\xfe{}",
    "truncated": None,  # half of a real notebook
}


@pytest.mark.parametrize("what", list(BAD_NOTEBOOKS))
def test_a_damaged_notebook_is_one_line_exit_2_before_any_runs(what, tmp_path, monkeypatch, capsys):
    pytest.importorskip("nbformat")
    module = runner()
    monkeypatch.setattr(module, "HERE", tmp_path)
    good = tmp_path / "00-good.ipynb"
    good.write_bytes((NOTEBOOKS / "00-from-scratch.ipynb").read_bytes())
    content = BAD_NOTEBOOKS[what]
    content = good.read_bytes()[: good.stat().st_size // 2] if content is None else content
    bad = tmp_path / "01-bad.ipynb"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    ran = []
    monkeypatch.setattr(module, "execute", lambda path, **kw: ran.append(path) or 0.0)
    assert module.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("run.py: error: 01-bad.ipynb is not a notebook"), err
    assert ran == [] and bad.read_bytes() == (content if isinstance(content, bytes) else content.encode())


def test_only_notebooks_in_notebooks_are_run(tmp_path, monkeypatch, capsys):
    """A path elsewhere (relative, absolute, or a link in notebooks/ to a file outside) is refused:
    run.py writes outputs back into what it runs."""
    pytest.importorskip("nbformat")
    module = runner()
    here = tmp_path / "notebooks"
    here.mkdir()
    monkeypatch.setattr(module, "HERE", here)
    outside = tmp_path / "mine.ipynb"
    outside.write_bytes((NOTEBOOKS / "00-from-scratch.ipynb").read_bytes())
    (here / "link.ipynb").symlink_to(outside)
    monkeypatch.setattr(module, "execute", lambda path, **kw: pytest.fail(f"ran {path}"))
    for name in ("../mine.ipynb", str(outside), "link.ipynb"):
        assert module.main([name]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "in notebooks/" in err, err


def test_outputs_are_written_back_atomically(tmp_path, monkeypatch):
    """A write that fails half-way (a full disk, a kill) leaves the notebook as it was, and no temporary file."""
    pytest.importorskip("nbclient", reason="the notebooks need the test extra's nbclient and ipykernel")
    nbformat = pytest.importorskip("nbformat")
    path = tmp_path / "one.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(41 + 1)")]), path)
    before = path.read_bytes()
    real_write = nbformat.write

    def half_then_fail(nb, fp, **kw):
        real_write(nb, fp, **kw)
        Path(fp).write_bytes(Path(fp).read_bytes()[:20])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nbformat, "write", half_then_fail)
    from alexnet.errors import UsageError

    with pytest.raises(UsageError, match="No space left on device"):
        runner().execute(path, smoke=True, save=True)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["one.ipynb"]


def test_sigterm_while_a_notebook_runs_is_one_line_and_leaves_it_as_it_was(tmp_path):
    """A real SIGTERM to a real `python notebooks/run.py` while a cell runs (it gave three tracebacks)."""
    pytest.importorskip("nbclient", reason="the notebooks need the test extra's nbclient and ipykernel")
    nbformat = pytest.importorskip("nbformat")
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    here = tmp_path / "notebooks"
    here.mkdir()
    shutil.copy(NOTEBOOKS / "run.py", here / "run.py")
    cell = "open('started', 'w').close()\nimport time\ntime.sleep(120)"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), here / "slow.ipynb")
    before = (here / "slow.ipynb").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(NOTEBOOKS.parent / "src")}
    proc = subprocess.Popen([sys.executable, str(here / "run.py"), "slow.ipynb"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (here / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    said = "run.py: stopped by SIGTERM while running slow.ipynb; the notebook is as it was"
    assert err.strip().splitlines() == [said], err
    assert (here / "slow.ipynb").read_bytes() == before
