"""Writing a file so that a crash never leaves half of it: a temporary file beside it, fsync, rename.

Used for everything the package writes that a user keeps: checkpoints, exported nets, pictures,
a run's config and metrics. A process killed outright (SIGKILL, power loss) leaves its temporary
file behind, named `.NAME.XXXXXXXX.tmp`; `remove_leftovers` clears them when the run continues.
The temporary file gets the permissions a plain open() would have given (0666 less the umask;
mkstemp alone would make it 0600, private to its owner).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside `path`; when the block succeeds it becomes `path`.

    If the block (or the fsync and rename) fails, the temporary file is removed and whatever
    was at `path` before is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the data on disk before the name points at it
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers left in `folder` (one writer per folder)."""
    gone = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file() and _TEMP_NAME.fullmatch(tmp.name):
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


# mkstemp's names: the prefix, eight characters from [a-z0-9_], the suffix
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
