"""Execute the notebooks in a fresh Jupyter kernel each: `python notebooks/run.py [NAME ...]`.

At full scale (the default) the outputs are written back into the .ipynb, so the notebooks read
on GitHub without running; `--smoke` sets ALEXNET_SMOKE=1 (a few steps, small subsets) and writes
nothing, which is what tests/notebooks/test_notebooks.py does. Progress-bar widgets are dropped
from saved outputs: without a live kernel they render as nothing but their placeholder text.

Only the notebooks in notebooks/ are run. Each is read and checked against the notebook schema
(nbformat.validate) before any runs: one that is not JSON, or not a notebook, is a one-line
error, exit 2. Outputs are written back atomically (a temporary file, then a rename), so an
interrupted write leaves the notebook as it was.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDGET = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_BYTES = 64 * 2**20  # ours with their outputs are under 2 MB each


def execute(path: Path, *, smoke: bool, save: bool, timeout: int = 1800, runs: Path | None = None) -> float:
    """Run every cell of `path` top to bottom in a new kernel (cwd: notebooks/); returns seconds.
    `runs` is where the notebook's training runs go (ALEXNET_RUNS; default notebooks/runs/).
    A failing cell raises nbclient's CellExecutionError, naming the cell and the error."""
    import nbclient
    import nbformat
    from traitlets.config import Config

    nb = read(path)
    before = {key: os.environ.get(key) for key in ("ALEXNET_SMOKE", "ALEXNET_RUNS")}
    os.environ["ALEXNET_SMOKE"] = "1" if smoke else "0"  # the kernel inherits the environment
    if runs is not None:
        os.environ["ALEXNET_RUNS"] = str(runs)
    started = time.perf_counter()
    try:
        # over IPC (Unix sockets in a private folder), not TCP: the kernel then has no cause to
        # warn, once per notebook, that its TCP ports are unencrypted
        with tempfile.TemporaryDirectory() as sockets:
            ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
            client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", config=ipc,
                                             resources={"metadata": {"path": str(path.parent)}},
                                             on_notebook_start=_take_signals)
            _running[:] = [client]
            client.execute()
    finally:
        _running.clear()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - started
    if save:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
        nb.metadata.pop("widgets", None)
        from alexnet.atomic import atomic_path

        with atomic_path(path) as tmp:
            nbformat.write(nb, tmp)
    return seconds


_running: list = []  # the NotebookClient at work, whose kernel a signal stops
_signals: list[signal.Signals] = []  # SIGINT / SIGTERM received while running


def _on_signal(signum: int) -> None:
    _signals.append(signal.Signals(signum))
    if not _kill_kernel():  # no kernel yet: stop here; else nbclient finds its kernel dead and stops
        raise KeyboardInterrupt


def _take_signals(**_: object) -> None:
    """nbclient answers SIGINT and SIGTERM by shutting the kernel down mid-cell, which then prints
    its own tracebacks; once the kernel runs, they are ours again (`_on_signal`)."""
    import asyncio

    loop = asyncio.get_event_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, _on_signal, s)


def _kill_kernel() -> bool:
    """Kill the running notebook's kernel outright (it would print its own errors if shut down
    mid-cell); whether there was one."""
    km = getattr(_running[0], "km", None) if _running else None
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return False
    return True


class BadNotebook(Exception):
    """A notebook that cannot be run; the text says which and why, in one line."""


def read(path: Path):  # -> nbformat.NotebookNode
    """The notebook at `path`, checked against nbformat's schema, or BadNotebook."""
    import nbformat

    try:
        if path.stat().st_size > NOTEBOOK_BYTES:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than {NOTEBOOK_BYTES:,}")
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # nbformat raises NotJSONError, ValidationError, TypeError, ... for what is not one
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise BadNotebook(f"{path.name} is not a notebook that can run ({type(e).__name__}: {reason})") from None
    return nb


def _error(message: str) -> int:
    from alexnet.errors import printable

    print(printable(f"run.py: error: {message}"), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebooks to run (default: all of notebooks/*.ipynb)")
    p.add_argument("--smoke", action="store_true", help="ALEXNET_SMOKE=1, and write nothing back")
    args = p.parse_args(argv)
    paths = [HERE / n for n in args.names] if args.names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        # by name, in notebooks/ itself: not a path elsewhere (../x.ipynb, /tmp/x.ipynb, a link out)
        if path.suffix != ".ipynb" or not path.is_file() or path.resolve().parent != HERE:
            known = ", ".join(p.name for p in sorted(HERE.glob("*.ipynb")))
            return _error(f"no notebook {path.name!r} in notebooks/ (give a name there); there are: {known}")
        try:
            read(path)
        except BadNotebook as e:
            return _error(str(e))
    from alexnet.errors import UsageError

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, frame: _on_signal(signum))
    for path in paths:
        try:
            seconds = execute(path, smoke=args.smoke, save=not args.smoke)
        except UsageError as e:  # the outputs could not be written back; the notebook is as it was
            return _error(str(e))
        except BaseException:
            if not _signals:
                raise
            print(f"run.py: stopped by {_signals[0].name} while running {path.name}; the notebook is as it was",
                  file=sys.stderr)
            return 128 + _signals[0]
        print(f"{path.name}: {seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
