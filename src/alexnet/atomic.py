"""Writing a file so that a crash never leaves half of it: a temporary file beside it, fsync, rename.

Used for everything the package writes that a user keeps: checkpoints, exported nets, pictures,
a run's config and metrics. A process killed outright (SIGKILL, power loss) leaves its temporary
file behind, named `.NAME.XXXXXXXX.tmp`; `remove_leftovers` clears a run's own when it continues.
The temporary file gets the permissions a plain open() would have given (0666 less the umask;
mkstemp alone would make it 0600, private to its owner).

One policy for every file a command writes (`check_output`, called before any work): it refuses a
path that is not a regular file or a link to one (the rename would replace a device, a pipe or a
socket with a file: as root, `--out /dev/null --force` would replace /dev/null), refuses to
write over the command's own input, and replaces a user's existing file only with `--force`.
`atomic_path` refuses what is not a regular file again, just before the rename.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alexnet.errors import UsageError


@contextmanager
def atomic_path(path: str | os.PathLike, what: str = "") -> Iterator[str]:
    """Yield a temporary file name beside `path`; when the block succeeds it becomes `path`.

    If the block (or the fsync and rename) fails, the temporary file is removed and whatever
    was at `path` before is untouched. A failure to write (an OSError, or another library's
    error on a full or read-only disk) is a one-line UsageError, "cannot write [what] PATH:
    reason; the previous NAME is intact" (or "no file was written").
    """
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    _refuse_special(path, label)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UsageError(f"cannot write {label}: {e.strerror or e}; {_kept(path)}") from None
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the data on disk before the name points at it
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        _refuse_special(path, label)  # the work may take minutes: a pipe may have taken the name since
        os.replace(tmp, path)
    except OSError as e:
        raise UsageError(f"cannot write {label}: {e.strerror or e}; {_kept(path)}") from None
    except Exception as e:  # torch's zip writer, safetensors and onnx report a full disk as their own errors
        reason = disk_trouble(path.parent)
        if reason is None:
            raise
        raise UsageError(f"cannot write {label}: {reason}; {_kept(path)}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def check_output(path: str | os.PathLike, *, force: bool = False, inputs: Iterable[str | os.PathLike] = (),
                 flag: str = "--out") -> Path:
    """`path` if a command may write it, else a one-line UsageError: it must be missing or a
    regular file (links followed), not one of `inputs` (the files the command reads), and
    an existing file is replaced only with `force`."""
    path = Path(path)
    kind = not_regular(path)
    if kind:
        raise UsageError(f"{flag} {path} is {kind}, not a regular file; give a file's path (nothing was written)")
    if path.exists():
        for source in inputs:
            if _reads(source, path):
                raise UsageError(f"{flag} {path} is the command's own input ({source}); writing it would replace it, "
                                 f"give another {flag}")
        if not force:
            raise UsageError(f"{path} exists; pass --force to replace it, or give another {flag}")
    return path


def _reads(source: str | os.PathLike, path: Path) -> bool:
    """Whether the command reading `source` reads the existing file `path`: the same file (a link
    or a hard link to it included), or a file inside the folder `source` (images it walks)."""
    try:
        if os.path.samefile(path, source):
            return True
        if not os.path.isdir(source):
            return False
        return Path(path).resolve().is_relative_to(Path(source).resolve())
    except OSError:
        return False


def not_regular(path: Path) -> str | None:
    """What is at `path` when it is neither missing nor a regular file (links followed), in a few
    words ('a character device'); None when writing it replaces no more than a file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a link to nothing" if os.path.islink(path) else None
    except OSError:
        return None  # unreadable: the write itself says why
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _refuse_special(path: Path, label: str) -> None:
    kind = not_regular(path)
    if kind:
        raise UsageError(f"cannot write {label}: it is {kind}, not a regular file; nothing was written")


def disk_trouble(folder: Path) -> str | None:
    """Why writing into `folder` fails, if its filesystem is read-only or (nearly) full; else None.

    torch.save on a full tmpfs raises `RuntimeError: [enforce fail at inline_container.cc:672]
    unexpected pos` rather than an OSError, so the filesystem itself is asked.
    """
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS)
    if st.f_bavail * st.f_frsize < 1 << 20:  # under 1 MiB left: what a failed write leaves behind
        return os.strerror(errno.ENOSPC)
    return None


def _kept(path: Path) -> str:
    return f"the previous {path.name} is intact" if path.exists() else "no file was written"


def remove_leftovers(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that killed writers of the files `names` left in `folder`.

    Only `.NAME.XXXXXXXX.tmp` for a NAME in `names`: another program's hidden temporary file
    of the same shape is not ours to delete.
    """
    gone = []
    for name in names:
        for tmp in Path(folder).glob(f".{glob.escape(name)}.*.tmp"):
            if tmp.is_file() and not tmp.is_symlink() and _TEMP_NAME.fullmatch(tmp.name[len(name) + 1:]):
                tmp.unlink(missing_ok=True)
                gone.append(tmp)
    return gone


# what mkstemp adds to the prefix ".NAME.": eight characters from [a-z0-9_], then the suffix
_TEMP_NAME = re.compile(r"\.[a-z0-9_]{8}\.tmp")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
