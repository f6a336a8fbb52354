"""`alexnet --help` and every `alexnet VERB --help` answer without importing torch: each runs in a
fresh interpreter, which then reports whether torch is in sys.modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alexnet.cli import VERBS

PROBE = """
import contextlib, io, sys
from alexnet.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
assert code == 0, code
assert "usage: alexnet" in out.getvalue(), out.getvalue()
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


@pytest.mark.parametrize("argv", [["--help"], *[[verb, "--help"] for verb in VERBS]], ids=" ".join)
def test_help_imports_no_torch(argv):
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"alexnet {' '.join(argv)} imported torch"


def test_top_level_help_lists_every_verb(capsys):
    from alexnet.cli import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in VERBS)


def test_a_verb_parses_only_its_own_options():
    from alexnet.cli import build_parser

    args = build_parser(["summary"]).parse_args(["summary", "alexnet2012"])
    assert args.verb == "summary"
