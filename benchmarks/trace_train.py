"""Which files of src/alexnet run, and the call edges between them, from `alexnet train` to the
first checkpoint write: how many rooms a reader walks through to follow one training step.

    python benchmarks/trace_train.py [-- ALEXNET TRAIN ARGS]

Default arguments: `--data shapes:train=256,test=64 --epochs 1 --max-steps 1` into a temporary
folder. Functions only: code that runs while a module is imported (its body, its class bodies,
and what they call) is not a room of the training step; the trace stops at the first call of
`save_checkpoint`. Prints the files in the order they first ran, their count, and
the number of distinct cross-file call edges.
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
from pathlib import Path

import alexnet

PACKAGE = Path(alexnet.__file__).resolve().parent


class Stop(BaseException):
    """Raised at the first checkpoint write, to end the run there."""


def trace(argv: list[str]) -> tuple[list[str], set[tuple[str, str]]]:
    from alexnet.cli import main

    files: list[str] = []
    edges: set[tuple[str, str]] = set()

    root, names = str(PACKAGE) + "/", {}

    def ours(frame) -> str | None:  # called on every Python call: a string test, then a cache
        filename = frame.f_code.co_filename
        if not filename.startswith(root):
            return None
        if filename not in names:
            names[filename] = filename[len(root):]
        return names[filename]

    def importing(frame) -> bool:  # a module or class body on the stack: this call is part of an import
        while frame is not None:
            if frame.f_code.co_name == "<module>" or not frame.f_code.co_flags & inspect.CO_NEWLOCALS:
                return True
            frame = frame.f_back
            if frame is not None and frame.f_code is trace.__code__:
                return False
        return False

    def profile(frame, event, _arg):
        if event != "call" or (me := ours(frame)) is None or importing(frame):
            return
        if me not in files:
            files.append(me)
        caller = frame.f_back and ours(frame.f_back)
        if caller and caller != me:
            edges.add((caller, me))
        if frame.f_code.co_name == "save_checkpoint":
            sys.setprofile(None)
            raise Stop

    sys.setprofile(profile)
    try:
        main(argv)
    except Stop:
        pass
    finally:
        sys.setprofile(None)
    if not any(name.endswith("checkpoint.py") for name in files):
        raise SystemExit("the run ended without writing a checkpoint")
    return files, edges


def main() -> None:
    extra = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", *(extra or ["--data", "shapes:train=256,test=64", "--epochs", "1", "--max-steps", "1"]),
                "--out", str(Path(tmp) / "run")]
        files, edges = trace(argv)
    print("\n".join(files))
    print(f"{len(files)} files of src/alexnet ran before the first checkpoint write; "
          f"{len(edges)} distinct cross-file call edges", flush=True)
    os._exit(0)  # at once: the run was cut off mid-step, its loader workers and handlers still up


if __name__ == "__main__":
    main()
