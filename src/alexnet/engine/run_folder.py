"""Run folders: made new or recognised as ours by a marker, written by one process at a time, and
the files a run writes there besides its checkpoints (metrics.jsonl and tb/, bad_images.txt).

A run folder (`runs/<model>-<data>-<date>-<time>/`, or `--out DIR`) belongs to this project:

- `.alexnet-run`, a small JSON file, marks it, written when `alexnet train` makes the folder or
  adopts an empty one. `--out` at a folder that holds anything else and no marker is refused, so
  a user's files are never replaced. An earlier version's folder (no marker) is resumed in place
  only when its `config.yaml` is the checkpoint's own config; `--out` at one is refused.
- The trainer holds an exclusive `fcntl.flock` on the marker for the whole run and writes its PID
  and host there, so a second writer is refused in one line naming the holder. The kernel drops
  the lock when the holder ends, killed or not, so a stale lock cannot block a resume (NFS v4
  included).
- The trainer deletes only its own leftovers: the temporary files (`atomic.py`) of
  `TRAINER_FILES`, never another hidden `.NAME.XXXXXXXX.tmp` in the folder.

`alexnet eval` and `alexnet export` read a run folder without the lock (watching a run's
best.pt while it trains is allowed) and write only their own files, atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from alexnet.atomic import atomic_path, not_regular, remove_leftovers
from alexnet.config import TrainConfig
from alexnet.engine import distributed
from alexnet.engine.distributed import World
from alexnet.errors import UsageError
from alexnet.limits import Refused, load_json, read_state_text

MARKER = ".alexnet-run"
CHECKPOINTS = ("last.pt", "best.pt")
# every file the trainer writes into the folder (tb/ is TensorBoard's, appended, never replaced)
TRAINER_FILES = ("config.yaml", "metrics.jsonl", *CHECKPOINTS, "curves.png", "filters.png", "bad_images.txt")


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` is ours: it has the marker, or it is an earlier version's run (config and
    checkpoint)."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    return (folder / "config.yaml").is_file() and any((folder / name).is_file() for name in CHECKPOINTS)


def holds_a_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in CHECKPOINTS)


def new_run_folder(out: str, name: str, root: Path = Path("runs")) -> Path:
    """The folder a new run trains into: `out`, or a new `root/name[-k]`; made, not yet locked.

    `out` may be missing (it is made), empty (it is adopted), or ours without a checkpoint (a
    run killed before its first one, started over); anything else is a one-line UsageError.
    """
    if not out:
        run, k = root / name, 1
        while True:  # mkdir without exist_ok: two runs started in the same second get two folders
            try:
                run.mkdir(parents=True)
                return run
            except FileExistsError:
                k += 1
                run = root / f"{name}-{k}"
            except OSError as e:
                raise UsageError(f"cannot create run folder {run}: {e.strerror or e}") from None
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise UsageError(f"--out {run} is a file, not a folder; pick a folder for the run")
    if run.is_dir() and not (run / MARKER).is_file():  # a marked folder is checked under its lock (claimed)
        if is_run_folder(run):
            raise UsageError(f"run folder {run} already holds a run; "
                             f"continue it with --resume {run} or pick another --out")
        else:
            try:
                # what a run would replace first
                names = sorted((p.name for p in run.iterdir()), key=lambda n: (n not in TRAINER_FILES, n))
            except OSError as e:
                raise UsageError(f"cannot read --out {run}: {e.strerror or e}") from None
            if names:
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                raise UsageError(f"--out {run} is not an alexnet run folder and is not empty ({shown}); "
                                 "pick a new or empty folder, nothing in it was touched")
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create run folder {run}: {e.strerror or e}") from None
    return run


def resumed_run_folder(checkpoint: str | os.PathLike, config: dict | None) -> Path:
    """The run folder that `--resume` continues: the checkpoint's own, if it is a run folder's last.pt
    or best.pt.

    The folder must carry the marker, or (an earlier version's run) a config.yaml that is the
    checkpoint's own `config`. A checkpoint anywhere else (a copied `model.pt`, a `last.pt` in
    a folder of someone else's) is not continued in place, where it would replace files that
    are not the run's.
    """
    file = Path(checkpoint)
    folder = file.parent
    if file.name not in CHECKPOINTS or not ((folder / MARKER).is_file() or _own_config(folder, config)):
        raise UsageError(f"{file} is not the last.pt or best.pt of a run folder, so resuming it would write beside "
                         "files that are not the run's; continue it in a new folder: "
                         f"alexnet train --resume {file} --out NEW_DIR")
    return folder


def _own_config(folder: Path, config: dict | None) -> bool:
    """Whether folder/config.yaml is the one the checkpoint's run wrote (its `config`, as YAML)."""
    path = folder / "config.yaml"
    try:
        if config is None or not path.is_file() or path.stat().st_size > 1 << 20:  # ours are about 2 KB
            return False
        return yaml.safe_load(path.read_text(encoding="utf-8")) == config
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False


@contextmanager
def claimed(run: Path, *, new: bool) -> Iterator[Path]:
    """Hold `run` for writing: mark it, lock it (refusing a second writer), clear its own leftovers.

    With `new`, a folder that holds a checkpoint once the lock is ours (another run finished
    there between the check and the lock) is refused as well.
    """
    with held(run / MARKER, f"run folder {run} is in use: {{holder}} is training into it; "
                            "wait for it to end, or pick another --out", what=f"run folder {run}"):
        if new and holds_a_run(run):
            raise UsageError(f"run folder {run} already holds a run; "
                             f"continue it with --resume {run} or pick another --out")
        try:
            remove_leftovers(run, TRAINER_FILES)  # temporary files of a run of ours killed mid-write
        except OSError as e:
            raise UsageError(f"cannot write run folder {run}: {e.strerror or e}") from None
        yield run


@contextmanager
def held(lock: Path, busy: str, *, what: str = "") -> Iterator[None]:
    """Hold an exclusive `flock` on the file `lock` (made if missing), writing our PID and host in it.

    A lock another process holds is a one-line UsageError, `busy` with {holder} filled in: a live
    holder's files are never deleted or reused. The file is checked, once locked, to still be the
    one at `lock`: a holder that removed the folder while we waited leaves us a deleted file.
    The kernel releases the lock when the holder ends, killed or not. A lock file that cannot be
    made or written is "cannot write `what`: reason".
    """
    what = what or str(lock)
    kind = "a link" if lock.is_symlink() else not_regular(lock)  # a link could lead anywhere
    if kind:  # and opening a device read-write can act
        raise UsageError(f"cannot write {what}: its lock file {lock.name} is {kind}, not a regular file")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        raise UsageError(f"cannot write {what}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(busy.replace("{holder}", _holder(fd))) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False))
        except OSError:
            same = False
        if not same:
            raise UsageError(busy.replace("{holder}", "another process (it removed the folder meanwhile)"))
        about = {"format": "alexnet-run", "version": 1, "pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.now().isoformat(timespec="seconds")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(about) + "\n").encode(), 0)
        except OSError as e:
            raise UsageError(f"cannot write {what}: {e.strerror or e}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says ('another process' when it cannot be read)."""
    try:
        about = load_json(os.pread(fd, 4096, 0) or b"{}")
        return f"process {int(about['pid'])} on {about['host']} (since {about['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class MetricsLog:
    """Appends one JSON line per record to metrics.jsonl and mirrors scalars to TensorBoard.

    A run continued from a checkpoint of epoch `epoch` (step `step`) first drops the records
    written after that checkpoint: a run killed between logging an epoch and saving it, or
    resumed from an older best.pt, would otherwise list the redone epochs twice. TensorBoard is
    told the same with `purge_step`.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, *, epoch: int = 0, step: int = 0) -> None:
        self.path = run_dir / "metrics.jsonl"
        kept = [r for r in read_metrics(run_dir) if int(r.get("epoch", 0)) <= epoch]
        if self.path.exists():
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when asked

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1)

    def write(self, record: dict[str, Any], step: int) -> None:
        try:  # appended, not atomic: a half-written last line is dropped by read_metrics
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise UsageError(f"cannot write {self.path}: {e.strerror or e}; the last checkpoint is intact") from None
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch", "step"):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        text = read_state_text(path)
    except Refused as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    records = []
    for line in text.splitlines():
        try:
            record = load_json(line)
        except ValueError:  # the last line of a run killed mid-write: drop it
            continue
        # a line damaged into other JSON (a number, a list, an epoch that is no count) is no record
        if isinstance(record, dict) and isinstance(record.get("epoch"), int) and not isinstance(record["epoch"], bool):
            records.append(record)
    return records


def open_run(cfg: TrainConfig, resume: dict[str, Any] | None, world: World, hold: ExitStack) -> Path:
    """The run folder, held for writing by rank 0 until `hold` closes.

    A new run's folder is `--out` or runs/<model>-<data>-<YYYYmmdd-HHMMSS>; a resumed run
    continues in its checkpoint's folder, or in a new `--out` folder when one other than the
    checkpoint's saved `out` is given. Every process learns the folder, or rank 0's one-line
    refusal, which all of them then raise.
    """
    def choose() -> Path:
        if resume is not None:
            own = Path(resume["path"]).parent
            # the out a config saved: the folder may since have been moved or copied
            saved = str((resume.get("config") or {}).get("out") or "")
            if not cfg.out or cfg.out == saved or Path(cfg.out).resolve() == own.resolve():
                return hold.enter_context(claimed(resumed_run_folder(resume["path"], resume.get("config")), new=False))
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{cfg.model}-{cfg.data.split(':', 1)[0]}-{stamp}"
        return hold.enter_context(claimed(new_run_folder(cfg.out, name), new=True))

    if world.size == 1:
        return choose()
    if world.main:
        try:
            shared: Any = str(choose())
        except UsageError as e:
            distributed.share(("refused", str(e)), world)
            raise
    shared = distributed.share(shared if world.main else None, world)
    if isinstance(shared, tuple):
        raise UsageError(shared[1])
    return Path(shared)


def write_bad_images(run_dir: Path, bad: list) -> int:
    """bad_images.txt: each unreadable image once, with its reason; returns how many."""
    unique = {b.path: b.reason for b in bad}
    # a path that is not valid UTF-8 (Linux allows any bytes) is written as its own bytes
    with atomic_path(run_dir / "bad_images.txt") as tmp:
        Path(tmp).write_text("".join(f"{p}\t{r}\n" for p, r in unique.items()), encoding="utf-8",
                             errors="surrogateescape")
    return len(unique)
