"""How large anything read from a file, or asked for by a user or a checkpoint, may be, and the one
check every opener makes first.

A dataset comes from anywhere, and a file named ``x.jpg`` may be a named pipe (opening it blocks
for ever), a link to ``/dev/zero`` (reading it never ends), a 1 TiB sparse file, a 6 MB gzip that
inflates to 6 GiB, or a 388 KB PNG of 20,000 x 20,000 pixels (1.2 GB decoded). So
every file is opened through `open_regular` / `read_regular`, which refuse what is not a regular
file without opening it (and without blocking, should it change in between), and every size read
from a file -- its own length, an archive member's, the dimensions in an IDX header -- is checked
with `check_size` against one of the limits below before anything is allocated. Image pixels are
bounded by PIL's ``Image.MAX_IMAGE_PIXELS`` (89.5 Mpx, 256 MiB as 8-bit RGB), which `load_image`
and the device decoder enforce, and CIFAR-10's by their 32x32 header (`alexnet.data.cifar_files`).

A user's YAML (a config file, a `--model-args` value) is read by `load_yaml`: safe_load, then
every value counted with its aliases expanded, so a "billion laughs" of aliases is refused in the
time its text takes to read.

Each limit is set far above the largest real file of its kind (the figures beside it), so real
data never meets one; what a limit refuses is a `Refused`, which the caller turns into a
`BadImage` (listed in bad_images.txt) for an image, or a one-line `DataError` for a dataset file.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

import yaml

from alexnet.errors import UsageError

MiB = 2**20

# Bounds on what a user or a checkpoint asks for (config, models, the CLI's options).
# The largest input side: 4.5x the paper's 227. Larger is rarely meant (a typo such as 2240), and
# its batches alone take gigabytes.
MAX_IMAGE_SIZE = 1024
# The most classes a net may have (models/build_model): ImageNet-21k's fit 4.5 times over, and a
# damaged checkpoint's `num_classes` cannot ask for terabytes before any shape check.
MAX_CLASSES = 100_000
# Bounds of the counts a user gives, so that no value overflows torch's int64 arguments: 2**20 is 16x
# the largest ImageNet batch published (Ying et al. 2018); past a few hundred workers a machine runs
# out of memory or process slots; a product of two counts of up to a billion still fits in int64.
MAX_BATCH_SIZE = 2**20
MAX_WORKERS = 256
MAX_COUNT = 10**9
# YAML aliases let a few hundred bytes stand for billions of values ("billion laughs"), cheap to load
# but slow and huge to expand later (BENCHMARKS.md, 'CPU: this project's machine'), so a file's size
# and its values counted with every alias expanded are bounded before anything else reads them.
MAX_CONFIG_BYTES = 2**20
MAX_YAML_VALUES = 10_000

# An image file, any format. Real photographs are far smaller (the imagenet-sample's largest is
# 0.7 MB, ImageNet's largest tens of MB); an uncompressed 8-bit RGB (RGBA) picture at PIL's
# pixel limit is 256 (341) MiB, so any picture the pixel limit allows fits.
IMAGE_FILE_BYTES = 512 * MiB
# One CIFAR-10 image, a file of a JPEG tree or an archive member: 32x32 pixels are 3 KB raw, the
# real JPEGs at most 1,124 bytes (cifar10-jpeg.tar.gz, measured); 1 MiB leaves room for any
# metadata, and keeps a decoding batch of 1024 files under 1 GiB.
CIFAR_IMAGE_BYTES = 1 * MiB
# One pickled CIFAR-10 batch: the real ones are 31 MB (10,000 images of 3,073 bytes).
CIFAR_BATCH_BYTES = 256 * MiB
# All the members of an archive read into memory together: CIFAR-10's python batches unpack to
# 186 MB (six of 31 MB) and its 60,000 JPEGs to 55 MB (measured).
ARCHIVE_READ_BYTES = 1024 * MiB
# Members listed in an archive (tarfile keeps a record of each): CIFAR-10 as JPEGs has 60,022.
ARCHIVE_MEMBERS = 200_000
# A header inside a tar archive (a pax header or a GNU long name): real ones are a few hundred bytes.
TAR_HEADER_BYTES = 1 * MiB
# The archive file itself (read as a stream, so this bounds time, not memory): CIFAR-10's are 20 MB
# (JPEGs) and 170 MB (python batches).
ARCHIVE_FILE_BYTES = 4096 * MiB
# An IDX file, header and values, after decompression: Fashion-MNIST's largest is 47 MB, EMNIST
# ByClass's training images (the largest IDX data we know of) 547 MB.
IDX_BYTES = 1024 * MiB

# A label file of ImageNet's (val_labels.txt, the devkit's ground truth and meta.mat, Kaggle's
# LOC_val_solution.csv): the real ones are 0.3 to 3 MB for 50,000 validation images.
LABEL_FILE_BYTES = 64 * MiB
# A weights file or checkpoint (.pt, .pth, .safetensors): vgg19's float32 weights take 548 MiB,
# alexnet2012's 233 MiB, a training checkpoint with its momentum about twice that.
WEIGHTS_FILE_BYTES = 4096 * MiB


# A JSON state file of our own (a run's metrics.jsonl, about 1 KB an epoch; a reproduce run's
# result.json and an experiment's results.json, tens of KB).
STATE_FILE_BYTES = 64 * MiB


class Refused(Exception):
    """A file (or an archive member) that was not read; ``str(err)`` says why, in a few words."""


def size_text(n: int) -> str:
    """A byte count for a message: '1.5 GiB', '700 MiB', '12 KiB', '300 bytes'."""
    for unit, scale in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", MiB), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def check_size(size: int, limit: int, what: str = "file") -> None:
    """Raise `Refused` if `size` (bytes, as a file or a header says) is over `limit`."""
    if size > limit:
        raise Refused(f"{what} is too large ({size_text(size)}, over the limit of {size_text(limit)})")


def _check(st: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise Refused("is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not a regular file (a pipe or device)")
    check_size(st.st_size, limit)


def check_regular(path: str | os.PathLike, limit: int) -> None:
    """`Refused` unless `path` is a regular file (links followed) of at most `limit` bytes: for the
    readers that open a file themselves (torch.load, safetensors). A missing file: OSError."""
    _check(os.stat(path), limit)


# Entries of a torch.save zip: one per tensor storage and a few records; alexnet2012's training
# checkpoint (weights and momentum) has about 40.
TORCH_ZIP_ENTRIES = 100_000


def check_torch_zip(path: str | os.PathLike, limit: int) -> None:
    """`Refused` unless the torch.save zip at `path` holds what torch.save writes: entries stored,
    not compressed, at most `limit` bytes in all. A deflated entry is inflated whole by torch.load
    before anything can check it: 2 MB of zeros deflated ask for 2 GB (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise Refused(f"not a whole zip archive ({' '.join(str(e).split())[:80]})") from None
    if len(entries) > TORCH_ZIP_ENTRIES:
        raise Refused(f"holds {len(entries):,} entries, more than {TORCH_ZIP_ENTRIES:,}")
    packed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise Refused(f"its entry {packed[0]!r} is compressed, which torch.save never does (a zip bomb?)")
    check_size(sum(e.file_size for e in entries), limit, "its content")


def open_regular(path: str | os.PathLike, limit: int) -> BinaryIO:
    """`path` opened for reading in binary, if it is a regular file (links followed) of at most
    `limit` bytes; else `Refused`. A missing or unreadable file raises the usual OSError."""
    # stat before opening: opening a pipe blocks until a writer comes, and opening some devices acts
    _check(os.stat(path), limit)
    # O_NONBLOCK: should a pipe have taken the file's place since, the open returns at once; fstat
    # then checks the file actually opened.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _check(os.fstat(fd), limit)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of `path`, checked as `open_regular` checks it; at most `limit` bytes are read,
    so a file that grows after the check is refused, not read whole."""
    with open_regular(path, limit) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(size + 1)  # read(limit + 1) would allocate the whole limit first
        if len(data) > size:  # grown since the check: read on, to one byte past the limit
            data += f.read(limit + 1 - len(data))
    check_size(len(data), limit)
    return data


def read_state_text(path: str | os.PathLike, limit: int = STATE_FILE_BYTES) -> str:
    """A state file of ours as text, read as `read_regular` reads (bytes that are not UTF-8 shown
    as U+FFFD): a 3 GB sparse metrics.jsonl is `Refused`, not read whole."""
    return read_regular(path, limit).decode("utf-8", errors="replace")


def load_json(text: str | bytes) -> Any:
    """json.loads, with JSON nested too deeply for Python's stack a ValueError like any other bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_yaml(text: str, where: str) -> Any:
    """yaml.safe_load of a user's text, or a one-line UsageError naming `where`: not YAML, nested
    too deeply, an alias that contains itself, or more than MAX_YAML_VALUES values once every
    alias is expanded."""
    try:
        value = yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader that also refuses a repeated key
        _count_values(value, {}, set())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{where}: not valid YAML ({problem}{at})") from None
    except RecursionError:
        raise UsageError(f"{where}: YAML nested too deeply") from None
    except _Unbounded as e:
        raise UsageError(f"{where}: {e}") from None
    return value


class _Unbounded(Exception):
    pass


class _UniqueKeys(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, where PyYAML keeps the last
    without a word (`model: vgg16` below `model: alexnet_mini` would train vgg16)."""


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode) -> Iterator[dict]:
    # a generator, as SafeLoader's own: the empty dict first, so that an alias inside itself is
    # found (and counted as unbounded) rather than failing as an unconstructable node
    first: dict[Any, int] = {}
    merge_at = None
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges, and may be overridden
            if merge_at is not None:  # a second `<<` would silently replace the first's values
                raise yaml.constructor.ConstructorError(
                    None, None, f"the merge key << is given twice (first at line {merge_at + 1}; "
                    "merge several with `<<: [*a, *b]`)", key_node.start_mark)
            merge_at = key_node.start_mark.line
            continue
        key = loader.construct_object(key_node)
        try:
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (first at line {first[key] + 1})",
                    key_node.start_mark)
        except TypeError:  # an unhashable key: construct_mapping says so below
            continue
        first[key] = key_node.start_mark.line
    data: dict = {}
    yield data
    data.update(loader.construct_mapping(node))


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _count_values(value: Any, counted: dict[int, int], open_: set[int]) -> int:
    """How many values `value` holds with every alias expanded; a shared list or mapping (an alias)
    is counted once and its count reused, so a bomb is measured in the time its text takes to read."""
    if not isinstance(value, (list, dict)):
        return 1
    key = id(value)
    if key in counted:
        return counted[key]
    if key in open_:
        raise _Unbounded("a YAML alias contains itself")
    open_.add(key)
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    n = 1 + sum(_count_values(item, counted, open_) for item in items)
    if n > MAX_YAML_VALUES:
        raise _Unbounded(f"more than {MAX_YAML_VALUES:,} values once its YAML aliases are expanded "
                         "(a config holds a few dozen)")
    open_.discard(key)
    counted[key] = n
    return n
