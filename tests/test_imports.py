"""The house rules of the package's layout (DEVELOPERS.md, "Where things are"), checked on the
source itself: no import circle between modules, only the allowed arrows between packages,
scratch/ without torch, no private name imported from another module, no module over 450 lines.

Imports are read with `ast` from every module, those inside functions too (a lazy import is
still an arrow of the design), so nothing is imported to check them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Which package may import which: data flows dataset -> model -> engine -> run folder -> the
# verbs that read it. "alexnet" is the top-level modules' own (config, errors, atomic).
ALLOWED = {
    "errors": set(),
    "atomic": {"errors"},
    "lazy": set(),  # a package's names imported on first use (alexnet/__init__, bench/__init__)
    "limits": {"errors"},  # the size limits, the bounded reader every file goes through, safe YAML
    "config": {"errors", "atomic", "limits"},
    "data": {"errors", "atomic", "limits", "config"},  # config.kv_pairs: the one k=v splitter
    "models": {"errors", "limits"},
    "scratch": set(),  # NumPy only: read and run without the rest of the package
    # viz draws; engine.console says whether a Jupyter kernel runs it (its inline backend)
    "viz": {"errors", "atomic", "limits", "config", "data", "models", "engine"},
    "engine": {"errors", "atomic", "limits", "config", "data", "models", "scratch"},
    "inference": {"errors", "atomic", "limits", "config", "data", "models", "engine"},
    # inference: the ONNX export and the int8 copy the baselines run
    "bench": {"errors", "lazy", "limits", "config", "data", "models", "engine", "inference"},
    "reproduce": {"errors", "atomic", "limits", "config", "data", "models", "engine", "inference", "viz"},
    # the Gradio page: what inference computes, drawn by viz
    "demo": {"errors", "limits", "data", "engine", "inference", "viz"},
    "cli": {"errors", "atomic", "limits", "config", "data", "models", "scratch", "viz", "engine", "inference", "bench",
            "reproduce", "demo"},
    "__main__": {"cli"},
    "configs": set(),  # the YAML presets (package data)
    "alexnet": {"lazy"},  # alexnet/__init__.py names its exports as strings, imported on first use
}
LONGEST = {"alexnet.engine.train": 500}  # lines per module: 450, or this


def modules(src: Path) -> dict[str, Path]:
    """Every module under src/alexnet by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted((src / "alexnet").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(src: Path) -> dict[str, list[tuple[str, str]]]:
    """module -> [(imported alexnet module, name)] for each import of the package in it."""
    mods = modules(src)
    graph: dict[str, list[tuple[str, str]]] = {}
    for name, path in mods.items():
        out = graph[name] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out += [(a.name, "") for a in node.names if a.name.split(".")[0] == "alexnet"]
            elif (isinstance(node, ast.ImportFrom) and node.level == 0
                  and (node.module or "").split(".")[0] == "alexnet"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    out.append((full, "") if full in mods else (node.module, a.name))
    return graph


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "alexnet"


def circles(graph: dict[str, list[tuple[str, str]]]) -> list[list[str]]:
    """The import circles between modules, each as a path that ends where it starts."""
    found, state, path = [], {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        path.append(m)
        for target, _ in graph.get(m, []):
            if state.get(target) == "open":
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def forbidden(graph: dict[str, list[tuple[str, str]]]) -> list[str]:
    """'a -> b' for each import across packages that ALLOWED does not list."""
    bad = set()
    for m, targets in graph.items():
        for target, _ in targets:
            src, dst = package(m), package(target)
            if src != dst and dst not in ALLOWED.get(src, set()):
                bad.add(f"{m} -> {target} ({src} may not import {dst})")
    return sorted(bad)


def test_no_import_circle_between_modules():
    assert circles(imports(SRC)) == []


def test_packages_import_only_along_the_allowed_arrows():
    graph = imports(SRC)
    assert set(map(package, graph)) <= set(ALLOWED), "a new package: add its arrows to ALLOWED and DEVELOPERS.md"
    assert forbidden(graph) == []


def test_scratch_never_imports_torch():
    for name, path in modules(SRC).items():
        if package(name) != "scratch":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            roots = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(r.split(".")[0] in ("torch", "torchvision") for r in roots), f"{name} imports torch"


def test_no_private_name_is_imported_from_another_module():
    private = [f"{m}: {target}.{name}" for m, targets in imports(SRC).items()
               for target, name in targets if name.startswith("_")]
    assert private == []


def test_no_module_is_over_450_lines_but_the_training_loop_within_500():
    """engine/train.py is the one training story (fit, train_one_epoch), allowed a little more room."""
    long = {name: n for name, path in modules(SRC).items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST.get(name, 450)}
    assert long == {}


HISTORY = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b|\b[Ii]ssues? #?\d+")  # a date, "issue 32"


def history(src: Path) -> list[str]:
    """file:line of every date or issue number in the package's code and presets: those belong in
    BENCHMARKS.md and the issues, the code cites the section."""
    files = sorted([*(src / "alexnet").rglob("*.py"), *(src / "alexnet").rglob("*.yaml")])
    return [f"{path.relative_to(src)}:{n}" for path in files
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if HISTORY.search(line)]


def test_no_dates_or_issue_numbers_in_the_code():
    assert history(SRC) == []


def test_the_history_check_finds_a_date_and_an_issue(tmp_path):
    src = write(tmp_path, {"alexnet/a.py": "x = 1  # measured 2026-12-04\n", "alexnet/c.yaml": "# see issue 19\n",
                           "alexnet/b.py": "size = 2026  # not a date\n"})
    assert history(src) == ["alexnet/a.py:1", "alexnet/c.yaml:1"]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_checks_find_a_circle_a_forbidden_arrow_and_a_private_import(tmp_path):
    """The checks above on a made-up package that breaks each rule, so they can fail."""
    src = write(tmp_path, {
        "alexnet/__init__.py": "",
        "alexnet/models/__init__.py": "def build():\n    from alexnet.engine.train import fit  # models -> engine\n",
        "alexnet/engine/__init__.py": "",
        "alexnet/engine/train.py": "from alexnet.engine.evaluate import _helper\n",
        "alexnet/engine/evaluate.py": "import alexnet.engine.train\n",
    })
    graph = imports(src)
    assert circles(graph) == [["alexnet.engine.evaluate", "alexnet.engine.train", "alexnet.engine.evaluate"]]
    assert forbidden(graph) == ["alexnet.models -> alexnet.engine.train (models may not import engine)"]
    assert ("alexnet.engine.evaluate", "_helper") in graph["alexnet.engine.train"]


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_allowed_package_exists(name):
    assert name in {package(m) for m in modules(SRC)}, f"ALLOWED names {name}, which is no package here"
