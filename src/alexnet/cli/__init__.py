"""The `alexnet` command: one module per verb, each with `add_arguments(parser)` and `run(args) -> int`.

Errors a user can cause (UsageError) print one line, `alexnet VERB: error: ...`, and exit 2
(a run that failed on valid input, RunFailed: diverged or out of memory, exits 1; a run stopped
by SIGINT/SIGTERM after saving, Interrupted, exits 130/143);
argparse's own errors are shortened to one line too, and so are warnings (`alexnet VERB: warning:
...`, without Python's source-line echo). With --json an error is also one JSON object on stdout,
{"error": ..., "verb": ..., "exit_code": ...}. Nothing past this package sees argparse.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterable
from importlib import import_module

from alexnet.errors import Interrupted, RunFailed, UsageError, printable

VERBS = {
    "train": "train a model (presets: fast, paper, d2l), or fine-tune one: --init-from WEIGHTS",
    "eval": "evaluate a checkpoint or run folder",
    "summary": "layer table of a model: kernels, strides, output shapes, parameters, multiply-adds",
    "models": "list the models with their parameters and input size",
    "predict": "classify image files or folders with a trained or pretrained net",
    "viz": "pictures: filters, feature maps, predictions, heatmap, neighbours, curves, augmentations, confusion, "
           "attributions (Grad-CAM, occlusion, saliency)",
    "demo": "a web page to try a net in: upload a photo, see its top-5 and where the net looked (needs .[demo])",
    "export": "write a trained net as ONNX, torch.export (.pt2), safetensors or TorchScript, checked after writing",
    "push": "share a run on the Hugging Face Hub: weights, config and a model card (or --to-folder DIR)",
    "convert": "turn Caffe's bvlc_alexnet.caffemodel into a folder in the Hub's layout, with its model card",
    "reproduce": (
        "the paper's claims (ReLU, towers, LRN, pooling, PCA lighting, dropout, ten-crop) as experiments with reports"
    ),
    "bench": "measure images/s, peak memory and MFU of training, inference and the input pipeline, against torchvision",
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message += did_you_mean(message, [o for a in self._actions for o in a.option_strings])
        self._print_message(f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n", sys.stderr)
        raise RefusedArguments(message, self.prog)


def did_you_mean(message: str, options: list[str]) -> str:
    """'; did you mean --model?' for an unknown option or choice close to a known one, as git
    suggests a verb; '' otherwise."""
    if message.startswith("unrecognized arguments: "):
        word, known = message.split()[2].split("=")[0], options
    elif match := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
        word, known = match[1], re.findall(r"[\w.-]+", match[2])
    else:
        return ""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class RefusedArguments(SystemExit):
    """argparse's refusal (exit 2), carrying its message for --json."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(2)
        self.message, self.prog = message, prog


def build_parser(verbs: Iterable[str] | None = None) -> Parser:
    """The parser, with the options of `verbs` (default: all). Only those verbs' modules are
    imported, so `alexnet --help` and `alexnet VERB --help` load no torch (litgpt's lazy verbs)."""
    parser = Parser(prog="alexnet", description="AlexNet (Krizhevsky, Sutskever & Hinton, 2012) on PyTorch.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {import_module('alexnet').__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    chosen = set(VERBS if verbs is None else verbs)
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter)
        if verb in chosen:
            module = import_module(f"alexnet.cli.{verb}")
            p.description, p.epilog = module.__doc__.strip().splitlines()[0], getattr(module, "EPILOG", None)
            module.add_arguments(p)
    return parser


def verb_parser(parser: Parser, verb: str | None) -> Parser:
    """The parser of `verb` (the top-level one where there is none)."""
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[verb] if verb in subs.choices else parser


def verb_of(argv: list[str]) -> str | None:
    """The verb named on the command line: the first word that is not an option (the top level
    has only --help and --version, which take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser([verb_of(argv)])
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the verb's parser says it, so the error names `alexnet VERB --help` and its options
            verb_parser(parser, args.verb).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version, or argparse's one-line error: its exit code
        if isinstance(e, RefusedArguments) and "--json" in argv:
            print_json_error(e.prog.partition(" ")[2] or None, e.message, 2)
        return int(e.code or 0)
    if args.verb is None:
        parser.print_help()
        return 2
    print_any_file_name()
    with warnings.catch_warnings():  # restores Python's own display when main returns
        warnings.showwarning = lambda message, *_, **__: print(
            f"alexnet {args.verb}: warning: {printable(str(message))}", file=sys.stderr
        )
        return run_verb(args)


def print_any_file_name() -> None:
    """Let stdout print file names that are not valid UTF-8.

    Linux file names are bytes; Python hands one that does not decode to us as a str holding
    surrogates (PEP 383), which print() refuses under a strict UTF-8 locale (en_US.UTF-8).
    Printing them as their own bytes, as `ls` does, never fails.
    """
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="surrogateescape")


class Terminated(BaseException):
    """SIGTERM outside training: unwinds the verb as Ctrl-C does, so that its temporary files are
    removed (atomic.py) and nothing half-written stays; training saves first (engine/console.py)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def run_verb(args: argparse.Namespace) -> int:
    """Run the verb; the errors a user can meet become one line and an exit code."""
    main_thread = threading.current_thread() is threading.main_thread()  # signals can be caught there only
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _run(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(import_module(f"alexnet.cli.{args.verb}").run(args) or 0)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:  # the reader went away (`alexnet eval RUN | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped
    except RunFailed as e:  # valid input, but the run blew up or ran out of memory: not a usage error
        return refuse(args, str(e), 1)
    except UsageError as e:
        return refuse(args, str(e), 2)
    except OSError as e:  # a file or disk error no writer above turned into a UsageError: still one line
        return refuse(args, f"{e.filename}: {e.strerror or e}" if e.filename else str(e.strerror or e), 2)
    except Interrupted as e:  # SIGINT/SIGTERM during training: state saved, 130 or 143
        print(f"alexnet {args.verb}: {printable(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"alexnet {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"alexnet {args.verb}: stopped by SIGTERM; no file was left half-written", file=sys.stderr)
        return 143


def refuse(args: argparse.Namespace, message: str, code: int) -> int:
    """The error's one line on stderr, and with --json the same as one JSON object on stdout
    (a program reading the output then always gets JSON); returns the exit code."""
    print(f"alexnet {args.verb}: error: {printable(message)}", file=sys.stderr)
    if getattr(args, "json", False):
        print_json_error(args.verb, message, code)
    return code


def print_json_error(verb: str | None, message: str, code: int) -> None:
    print(json.dumps({"error": message, "verb": verb, "exit_code": code}), flush=True)
