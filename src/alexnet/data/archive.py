"""Reading the files inside a dataset archive (.tar, .tar.gz, .tgz, ...) without extracting it.

A dataset archive is read once, member by member, straight from the compressed stream, and what
the reader makes of it is cached (see `alexnet.data.cifar_files`). Nothing from the archive is
ever written to disk, so a hostile member name cannot place a file anywhere; still, an archive
whose member names are absolute or climb out with ``..``, or that holds links or device files,
has been tampered with or was not made for us, and is refused whole.

Nor may a small archive make the reader allocate much: a member is read only when the size its
header claims is within the caller's limit (a 9 MB gzip can hold a 2 GiB member, a 755-byte tar
a 1 TiB GNU sparse file), the wanted members together within `ARCHIVE_READ_BYTES`, tar's own
extension headers within `TAR_HEADER_BYTES` (see `alexnet.limits`).

Why not extract: CIFAR-10 as JPEGs is 60,000 tiny files; creating them costs far more time and
disk than streaming them (measured: BENCHMARKS.md, 'CPU: this project's machine').
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from alexnet.errors import DataError
from alexnet.limits import (
    ARCHIVE_FILE_BYTES,
    ARCHIVE_MEMBERS,
    ARCHIVE_READ_BYTES,
    TAR_HEADER_BYTES,
    Refused,
    check_size,
    open_regular,
)

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES) and path.is_file()


def archive_key(path: str | os.PathLike) -> str:
    """``<name>-<size>-<mtime>``: changes whenever the archive is replaced or rewritten."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    return f"{path.name}-{stat.st_size}-{stat.st_mtime_ns}"


def read_members(
    archive: str | os.PathLike, limit_of: Callable[[PurePosixPath], int | None]
) -> Iterator[tuple[PurePosixPath, bytes | Refused]]:
    """Yield ``(name, contents)`` for every regular file in `archive` that is wanted: whose
    ``limit_of(name)`` is the most bytes it may hold, not None. A member larger than that is not
    read: its contents are a `Refused` saying so, for the caller to list or raise.

    Raises a `DataError` naming the archive if it is unreadable, holds an unsafe member, or more
    than `ARCHIVE_MEMBERS` members or `ARCHIVE_READ_BYTES` of wanted ones (alexnet.limits).
    """
    archive = Path(archive)
    total = 0
    try:
        with open_regular(archive, ARCHIVE_FILE_BYTES) as raw, \
                tarfile.open(fileobj=raw, mode="r:*", tarinfo=_BoundedTarInfo) as tar:
            for count, member in enumerate(tar, start=1):
                if count > ARCHIVE_MEMBERS:
                    raise Refused(f"more than {ARCHIVE_MEMBERS:,} members")
                name = _vetted_name(archive, member)
                limit = limit_of(name) if member.isfile() else None
                if limit is None:
                    continue
                try:
                    # member.size is what the header claims (for a GNU sparse file, its size with
                    # the holes filled): checked before a byte is read
                    check_size(member.size, limit)
                except Refused as err:
                    yield name, err
                    continue
                total += member.size
                check_size(total, ARCHIVE_READ_BYTES, "the data read from it")
                f = tar.extractfile(member)
                yield name, f.read(member.size) if f is not None else b""
    except Refused as err:
        raise DataError(f"{archive}: refusing the archive: {err}") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{archive}: cannot read the archive ({_one_line(err)})") from None


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that checks the sizes of tar's own extension headers before tarfile reads them:
    tarfile reads a pax header or a GNU long name whole, and a GNU sparse map block by block, so
    a few bytes of gzip could otherwise make it allocate gigabytes."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES:
            check_size(self.size, TAR_HEADER_BYTES, f"the header of member {self.name!r}")
        if self.type == tarfile.GNUTYPE_SPARSE and getattr(self, "_sparse_structs", ((), False))[1]:
            # 'isextended': more sparse-map blocks follow, as many as the archive likes. A real
            # image is never stored sparse (it has no holes), so a long map is refused outright.
            raise Refused(f"member {self.name!r} is a sparse file with an extended map")
        return super()._proc_member(tarfile_)


_HEADER_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                 tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


def _one_line(err: BaseException) -> str:
    text = str(err)
    if "could not be opened successfully" in text:  # tarfile's 5-line list of the methods it tried
        return "not a tar file, nor a gzip, bzip2 or xz compressed one"
    text = " ".join(text.split()) or type(err).__name__
    return text if len(text) <= 150 else text[:147] + "..."


def _vetted_name(archive: Path, member: tarfile.TarInfo) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DataError(f"{archive}: refusing the archive: member {member.name!r} points outside it")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing the archive: member {member.name!r} is a link or device")
    return name
