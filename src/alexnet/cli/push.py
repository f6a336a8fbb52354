"""Share a trained net on the Hugging Face Hub: alexnet push RUN ORG/NAME [--private] [--to-folder DIR].

Writes the Hub's layout (model.safetensors, config.json), a model card (README.md) generated from
the run, its training curves (curves.png) and its resolved config (training.yaml), then uploads the
folder with huggingface_hub (the token as huggingface_hub finds it: HF_TOKEN or `hf auth login`).
With --to-folder the files are written to DIR and nothing is uploaded. RUN may also be a folder
already in the Hub's layout (from --to-folder or alexnet convert): it is checked and uploaded as it is.
Anyone loads the result with `--weights hf-hub:ORG/NAME` (or `--weights DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alexnet.errors import UsageError, printable

EPILOG = """examples:
  alexnet push runs/RUN my-org/alexnet-cifar10 --to-folder shared/alexnet-cifar10
  alexnet push runs/RUN my-org/alexnet-cifar10 --private
  alexnet push shared/alexnet-cifar10 my-org/alexnet-cifar10"""

# what an upload of a Hub-layout folder sends: the weights, their description and what the card shows
LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")  # the Hub's license ids: mit, apache-2.0, cc-by-nc-4.0, other
SENT = ("model.safetensors", "config.json", "README.md", "curves.png", "training.yaml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run folder or checkpoint, or a folder in the Hub's layout")
    p.add_argument("repo", metavar="ORG/NAME", help="the Hub repo to create or update")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its own)")
    p.add_argument("--to-folder", default=None, metavar="DIR",
                   help="write the files into DIR (new, or an empty folder) and upload nothing")
    p.add_argument("--license", default="mit", metavar="ID", help="the card's license (a Hub license id; default mit)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from alexnet.engine.run_folder import is_run_folder
    from alexnet.inference.hub import HUB_FILES, check_can_upload, check_repo_id
    from alexnet.inference.weights import select_model

    check_repo_id(args.repo)
    if not LICENSE.fullmatch(args.license):
        raise UsageError(f"--license {printable(args.license)!r}: give a Hub license id, such as mit, apache-2.0, "
                         "cc-by-4.0 or other (lower case letters, digits, '.', '-', '+')")
    if not args.to_folder:
        check_can_upload(args.repo)  # before any work
    source = Path(args.run)
    if source.is_dir() and (source / HUB_FILES[1]).is_file() and not is_run_folder(source):
        from alexnet.inference.weights import load_weights

        ckpt = load_weights(source)  # checked whole (digest, shapes) before anything is sent
        if args.to_folder:
            raise UsageError(f"{source} is already in the Hub's layout: upload it without --to-folder")
        _check_card(source, args.repo)
        return _report(args, _upload_as_is(source, args), ckpt, uploaded=True)
    if args.to_folder:
        check_new_folder(args.to_folder)  # before any work
    ckpt = select_model(checkpoint=args.run)
    if args.to_folder:
        with new_folder(args.to_folder) as folder:
            write_run_folder(ckpt, folder, args.repo, license=args.license)
        return _report(args, str(args.to_folder), ckpt, uploaded=False)
    with tempfile.TemporaryDirectory(prefix="alexnet-push-") as tmp:
        write_run_folder(ckpt, Path(tmp), args.repo, license=args.license)
        return _report(args, _upload(Path(tmp), args), ckpt, uploaded=True)


def write_run_folder(ckpt: dict[str, Any], folder: Path, repo: str, *, license: str = "mit") -> None:
    """The Hub layout of a run's checkpoint, its card, curves and resolved config, into `folder`."""
    import yaml

    from alexnet.inference.card import CURVES_FILE, TRAINING_FILE, recipe, run_card
    from alexnet.inference.weights import save_hub_folder

    save_hub_folder(ckpt, folder)
    curves = _curves(Path(ckpt["path"]), folder / CURVES_FILE)
    config = ckpt.get("config")
    if isinstance(config, dict):
        (folder / TRAINING_FILE).write_text(yaml.safe_dump(recipe(config), sort_keys=False))
    (folder / "README.md").write_text(run_card(ckpt, repo, license=license, curves=curves))


@contextmanager
def new_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A folder to fill that becomes `path` only when filled whole; `path` must not exist or be an
    empty folder, so nothing already on disk is replaced or left half-written."""
    out = check_new_folder(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise UsageError(f"--to-folder {out}: cannot write in {out.parent}: {e.strerror or e}") from None
    try:
        yield tmp
        if out.is_dir():
            out.rmdir()  # the empty folder it replaces
        os.rename(tmp, out)
    except OSError as e:
        raise UsageError(f"--to-folder {out}: cannot write it: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_new_folder(path: str | os.PathLike) -> Path:
    """`path` as a folder to write, refused in one line unless it is new (in a folder that exists) or empty."""
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--to-folder {out}: {'not a folder' if not out.is_dir() else 'not empty'}; "
                         "give a new or empty folder")
    if not out.parent.is_dir():
        raise UsageError(f"--to-folder {out}: no folder {out.parent} to make it in")
    return out


def _curves(checkpoint: Path, out: Path) -> bool:
    """The run's curves.png copied beside the card, or drawn from its metrics.jsonl; False when neither."""
    run_dir = checkpoint if checkpoint.is_dir() else checkpoint.parent
    if (run_dir / "curves.png").is_file():
        shutil.copyfile(run_dir / "curves.png", out)
        return True
    from alexnet.engine.run_folder import read_metrics
    from alexnet.viz.curves import plot_curves

    try:
        records = read_metrics(run_dir)
    except UsageError:
        return False
    if not records:
        return False
    plot_curves([(run_dir.name, records)], out, title=f"training curves: {run_dir.name}")
    return True


def _upload(folder: Path, args: argparse.Namespace) -> str:
    from alexnet.inference.hub import upload

    return upload(folder, args.repo, private=args.private, message=f"alexnet push {Path(args.run).name}")


def _upload_as_is(source: Path, args: argparse.Namespace) -> str:
    """Upload the known files of a Hub-layout folder, nothing else that may lie beside them, and
    none that is a link or not a regular file (it could send what lies elsewhere)."""
    from alexnet.limits import WEIGHTS_FILE_BYTES, Refused, check_size

    with tempfile.TemporaryDirectory(prefix="alexnet-push-") as tmp:
        for name in SENT:
            path = source / name
            if not os.path.lexists(path):
                continue
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise UsageError(f"{path}: not a regular file (a link, a folder or a device): only files are sent")
            try:
                check_size(st.st_size, WEIGHTS_FILE_BYTES, name)
            except Refused as e:
                raise UsageError(f"{path}: {e}") from None
            shutil.copyfile(path, Path(tmp) / name)
        return _upload(Path(tmp), args)


def _check_card(source: Path, repo: str) -> None:
    """Refuse a Hub folder whose card was written for another repo (or for none): its title, its
    results and its loading instructions would name the wrong place."""
    card = source / "README.md"
    title = None
    if card.is_file() and not card.is_symlink():
        title = next((line[2:].strip() for line in card.read_text(errors="replace").splitlines()
                      if line.startswith("# ")), None)
    if title != repo:
        raise UsageError(f"{source}'s model card was written for {printable(title or 'no Hub repo')}, not {repo}: "
                         f"write the folder again for it (alexnet push RUN {repo} --to-folder DIR, or "
                         f"alexnet convert FILE --to-folder DIR --repo {repo})")


def _report(args: argparse.Namespace, where: str, ckpt: dict[str, Any], *, uploaded: bool) -> int:
    if args.json:
        print(json.dumps({"repo": args.repo, "uploaded": uploaded, "where": where, "model_name": ckpt["model_name"],
                          "classes": len(ckpt["classes"])}))
        return 0
    what = f"{ckpt['model_name']} ({len(ckpt['classes'])} classes)"
    if uploaded:
        lines = [f"pushed {what} to {args.repo}: {where}",
                 f"load it with: alexnet predict IMAGE --weights hf-hub:{args.repo}"]
    else:
        lines = [f"wrote {what} for {args.repo} to {where}: model.safetensors, config.json, "
                 "README.md (the model card)",
                 f"load it with: alexnet predict IMAGE --weights {where}",
                 f"upload it with: alexnet push {where} {args.repo}"]
    for line in lines:
        print(printable(line))
    return 0
