"""CIFAR-10 from pickled batches, a JPEG tree and archives of either, written by the tests."""

from __future__ import annotations

import gzip
import io
import pickle
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cache_folder, file_state, finishes, peak_memory_growth, png_claiming, write_image, write_unopenable
from PIL import Image

import alexnet.data.archive as archive_module
import alexnet.data.cifar_files as cifar_files
from alexnet.data import BadImage, open_dataset
from alexnet.errors import DataError
from alexnet.limits import CIFAR_IMAGE_BYTES

pytestmark = pytest.mark.usefixtures("isolated")

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --- writers -----------------------------------------------------------------------------------


def batch_pickle(data: np.ndarray, labels: list[int], name: bytes = b"training batch") -> bytes:
    """A batch as the originals hold it: a dict with bytes keys, pickled at protocol 2, with the
    numpy module name a numpy-1 / Python-2 pickle has."""
    batch = {b"batch_label": name, b"labels": labels, b"data": data, b"filenames": [b"x.png"] * len(labels)}
    raw = pickle.dumps(batch, protocol=2)
    return raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_batches(folder: Path, n: int = 4, n_test: int = 3) -> tuple[np.ndarray, list[int]]:
    """Five train batches of `n` images and a test batch; returns the train data and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    all_data, all_labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        (folder / f"data_batch_{i}").write_bytes(batch_pickle(data, labels))
        all_data.append(data)
        all_labels += labels
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    (folder / "test_batch").write_bytes(batch_pickle(test, list(range(n_test)), b"testing batch"))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": n, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate(all_data), all_labels


TRAIN_COUNTS = {"airplane": 3, "cat": 2}
TEST_COUNTS = {"airplane": 1, "cat": 2}


def write_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """A small CIFAR-10 JPEG tree of flat-colour 32x32 images; returns path -> colour."""
    colours = {}
    rng = np.random.default_rng(2)
    for split, counts in (("train", TRAIN_COUNTS), ("test", TEST_COUNTS)):
        for name, n in counts.items():
            for i in range(n):
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                colours[str(write_image(root / split / name / f"{i:04d}.jpg", colour))] = colour
    return colours


def write_tar(archive: Path, root: Path, prefix: str = "") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=f"{prefix}{child.name}")
    return archive


# --- (a) pickled batches -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["", "cifar-10-batches-py"])
def test_pickled_batches(tmp_path: Path, layout: str):
    data, labels = write_batches(tmp_path / "c" / layout)
    source = open_dataset(f"cifar10:{tmp_path / 'c'}")
    assert source.name == "cifar10" and source.classes == CLASSES
    assert source.channels == 3 and source.image_size == (32, 32)
    assert source.mean == (0.4914, 0.4822, 0.4465)
    train, val = source.split("train"), source.split("val")
    assert len(train) == 20 and len(val) == 3 and source.split("test") is val
    assert train.targets == labels and val.targets == [0, 1, 2]
    image, label = train[6]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32) and label == labels[6]
    # a row is 1024 red, then 1024 green, then 1024 blue values, each plane row-major
    c, y, x = 1, 5, 7
    assert image[c, y, x] == data[6, c * 1024 + y * 32 + x]


def test_python3_pickles_load_too(tmp_path: Path):
    write_batches(tmp_path / "c")
    data = np.zeros((2, 3072), np.uint8)
    (tmp_path / "c" / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [1, 2]}))
    assert open_dataset(f"cifar10:{tmp_path / 'c'}").split("val").targets == [1, 2]


class _Payload:
    """Unpickling this calls open(path, 'w'): a stand-in for any code a hostile pickle could run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused(tmp_path: Path):
    write_batches(tmp_path / "c")
    marker = tmp_path / "pwned.txt"
    hostile = pickle.dumps({b"data": _Payload(str(marker)), b"labels": []}, protocol=2)
    (tmp_path / "c" / "data_batch_2").write_bytes(hostile)
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{tmp_path / 'c'}")
    assert "data_batch_2" in str(err.value) and "refused" in str(err.value)
    assert not marker.exists()
    # the payload is live: an ordinary unpickler would have run it
    pickle.loads(hostile)
    assert marker.exists()


def test_bad_batches(tmp_path: Path):
    write_batches(tmp_path / "c")
    path = tmp_path / "c" / "data_batch_3"
    path.write_bytes(batch_pickle(np.zeros((4, 3000), np.uint8), [0] * 4))
    with pytest.raises(DataError, match=r"data_batch_3.*3072"):
        open_dataset(f"cifar10:{tmp_path / 'c'}")
    path.write_bytes(batch_pickle(np.zeros((4, 3072), np.uint8), [0] * 3))
    with pytest.raises(DataError, match="4 images but 3 labels"):
        open_dataset(f"cifar10:{tmp_path / 'c'}")
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="data_batch_3"):
        open_dataset(f"cifar10:{tmp_path / 'c'}")
    path.unlink()
    with pytest.raises(DataError, match="lacks data_batch_3"):
        open_dataset(f"cifar10:{tmp_path / 'c'}")


# --- (b) the JPEG tree -------------------------------------------------------------------------


def _check_tree_source(source, colours: dict) -> None:
    train, test = source.split("train"), source.split("test")
    assert len(train) == 5 and len(test) == 3 and source.split("val") is test
    assert sorted(train.targets) == [0, 0, 0, 3, 3]  # airplane = 0, cat = 3 in the CIFAR-10 order
    assert train.images.shape == (5, 3, 32, 32) and train.images.dtype == torch.uint8
    # the tree is read class by class, files sorted: item 3 is cat/0000.jpg
    image, label = train[3]
    assert label == 3
    expected = next(c for p, c in colours.items() if p.endswith("train/cat/0000.jpg"))
    assert torch.allclose(image.float().mean(dim=(1, 2)), torch.tensor(expected, dtype=torch.float), atol=4)


def test_jpeg_tree_is_decoded_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    colours = write_tree(tmp_path / "tree")
    source = open_dataset(f"cifar10:{tmp_path / 'tree'}")
    assert source.classes == CLASSES
    _check_tree_source(source, colours)
    assert list((cache_folder() / "decoded").glob("cifar10-tree-*.pt"))

    def no_decoding(*args):
        raise AssertionError("decoded again instead of using the cache")

    with monkeypatch.context() as m:
        m.setattr(cifar_files, "_decode_split", no_decoding)
        _check_tree_source(open_dataset(f"cifar10:{tmp_path / 'tree'}"), colours)

    # a file added to the tree makes the cache stale
    write_image(tmp_path / "tree" / "train" / "cat" / "0009.jpg")
    assert len(open_dataset(f"cifar10:{tmp_path / 'tree'}").split("train")) == 6


def test_a_pipe_in_the_decode_caches_place_is_left_alone_and_no_temporary_file_stays(tmp_path: Path):
    """The cache was written with its own temporary file and os.replace: a named pipe at its path was
    replaced by a file, and a SIGTERM while writing left the temporary file. It now goes through
    atomic_path: the pipe stays (the images are decoded, with a warning), nothing else is left."""
    import os
    import stat

    colours = write_tree(tmp_path / "tree")
    open_dataset(f"cifar10:{tmp_path / 'tree'}")
    [cached] = (cache_folder() / "decoded").glob("cifar10-tree-*.pt")
    cached.unlink()
    os.mkfifo(cached)
    with pytest.warns(UserWarning, match="is a named pipe, not a regular file"):
        _check_tree_source(open_dataset(f"cifar10:{tmp_path / 'tree'}"), colours)
    assert stat.S_ISFIFO(os.lstat(cached).st_mode)
    assert [p.name for p in (cache_folder() / "decoded").iterdir()] == [cached.name]


def test_broken_files_in_a_tree_are_skipped_and_listed(tmp_path: Path):
    write_tree(tmp_path / "tree")
    cat = tmp_path / "tree" / "train" / "cat"
    good = (cat / "0000.jpg").read_bytes()
    (cat / "0100.jpg").write_bytes(good[: len(good) // 2])
    (cat / "0101.jpg").write_bytes(b"")
    write_image(cat / "0102.jpg", size=(16, 16))
    write_image(cat / "0103.png")  # not a JPEG, still an image
    train = open_dataset(f"cifar10:{tmp_path / 'tree'}").split("train")
    assert len(train) == 6
    assert {Path(b.path).name for b in train.bad} == {"0100.jpg", "0101.jpg", "0102.jpg"}
    assert all(isinstance(b, BadImage) and b.reason for b in train.bad)
    assert any("16x16" in b.reason for b in train.bad)


def test_pil_decodes_when_torchvision_has_no_codecs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    colours = write_tree(tmp_path / "tree")
    cat = tmp_path / "tree" / "train" / "cat"
    (cat / "0100.jpg").write_bytes(b"garbage")
    monkeypatch.setitem(sys.modules, "torchvision.io", None)  # `from torchvision.io import` fails
    source = open_dataset(f"cifar10:{tmp_path / 'tree'}")
    _check_tree_source(source, colours)
    assert [Path(b.path).name for b in source.split("train").bad] == ["0100.jpg"]


def test_foreign_class_folder_is_refused(tmp_path: Path):
    write_tree(tmp_path / "tree")
    write_image(tmp_path / "tree" / "train" / "spaceship" / "0.jpg")
    with pytest.raises(DataError, match="spaceship"):
        open_dataset(f"cifar10:{tmp_path / 'tree'}")


# --- (c) archives ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "cifar10/"])
def test_jpeg_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str):
    colours = write_tree(tmp_path / "tree")
    archive = write_tar(tmp_path / "cifar10-jpeg.tar.gz", tmp_path / "tree", prefix)
    source = open_dataset(f"cifar10:{archive}")
    train = source.split("train")
    assert len(train) == 5 and len(source.split("val")) == 3
    assert sorted(train.targets) == [0, 0, 0, 3, 3]
    expected = next(c for p, c in colours.items() if p.endswith("train/cat/0000.jpg"))
    assert torch.allclose(train[3][0].float().mean(dim=(1, 2)), torch.tensor(expected, dtype=torch.float), atol=4)
    cached = list((cache_folder() / "decoded").glob("cifar10-cifar10-jpeg.tar.gz-*.pt"))
    assert len(cached) == 1
    assert not list(cache_folder().rglob("*.jpg"))  # nothing was extracted

    # the second open reads the cache; a folder holding the archive works too
    monkeypatch.setattr(cifar_files, "_decode_split", lambda *a: pytest.fail("decoded again"))
    assert len(open_dataset(f"cifar10:{tmp_path}").split("train")) == 5


def test_archive_of_the_pickled_batches(tmp_path: Path):
    _, labels = write_batches(tmp_path / "src" / "cifar-10-batches-py")
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", tmp_path / "src")
    source = open_dataset(f"cifar10:{archive}")
    assert source.split("train").targets == labels and len(source.split("val")) == 3


def test_default_search_finds_an_archive_in_alexnet_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_tree(tmp_path / "tree")
    (tmp_path / "store").mkdir()
    write_tar(tmp_path / "store" / "cifar10-jpeg.tar.gz", tmp_path / "tree")
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "store"))
    assert len(open_dataset("cifar10").split("train")) == 5


def _tar_with(archive: Path, member: tarfile.TarInfo, data: bytes | None = None) -> Path:
    """A JPEG-tree archive with one extra `member` appended."""
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32)).save(jpeg, "JPEG")
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            info = tarfile.TarInfo(f"{split}/cat/0.jpg")
            info.size = len(jpeg.getvalue())
            tar.addfile(info, io.BytesIO(jpeg.getvalue()))
        tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return archive


@pytest.mark.parametrize("name", ["../evil.txt", "train/../../evil.txt", "/tmp/evil-absolute.txt"])
def test_archive_with_escaping_member_is_refused(tmp_path: Path, name: str):
    member = tarfile.TarInfo(name)
    member.size = 4
    archive = _tar_with(tmp_path / "arch" / "cifar10-jpeg.tar.gz", member, b"evil")
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{archive}")
    assert name in str(err.value) and "refusing" in str(err.value)
    assert not list(tmp_path.rglob("evil*")) and not Path("/tmp/evil-absolute.txt").exists()


def test_archive_with_link_is_refused(tmp_path: Path):
    member = tarfile.TarInfo("train/cat/link.jpg")
    member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = _tar_with(tmp_path / "arch" / "cifar10-jpeg.tar.gz", member)
    with pytest.raises(DataError, match="link"):
        open_dataset(f"cifar10:{archive}")


def test_not_an_archive(tmp_path: Path):
    (tmp_path / "cifar10-jpeg.tar.gz").write_bytes(b"this is not gzip")
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{tmp_path / 'cifar10-jpeg.tar.gz'}")
    # one line, not tarfile's five (one per decompression method it tried)
    assert str(err.value) == (f"{tmp_path / 'cifar10-jpeg.tar.gz'}: cannot read the archive "
                              "(not a tar file, nor a gzip, bzip2 or xz compressed one)")


# --- finding nothing ---------------------------------------------------------------------------


def test_missing_or_empty_paths(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(f"cifar10:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds neither"):
        open_dataset(f"cifar10:{tmp_path / 'empty'}")


def test_failed_download_says_why_and_where_it_looked(monkeypatch: pytest.MonkeyPatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as err:
        open_dataset("cifar10")
    message = str(err.value)
    assert "no route to host" in message and re.search(r"data/cifar10 or \d+ other places", message)
    assert "\n" not in message


# --- files and members that must not be read whole (issue 16) ---------------------------------


def test_a_tree_refuses_pipes_devices_huge_files_and_pixel_bombs_before_reading(tmp_path: Path):
    write_tree(tmp_path / "tree")
    cat = tmp_path / "tree" / "train" / "cat"
    hostile = write_unopenable(cat, huge_bytes=CIFAR_IMAGE_BYTES + 1)  # a pipe, a link to /dev/zero, a sparse file
    (cat / "bomb.png").write_bytes(png_claiming(20_000, 20_000))  # 1.2 GB of pixels, over PIL's limit
    (cat / "big.png").write_bytes(png_claiming(9_000, 9_000))  # 243 MB, under PIL's limit but not 32x32
    before = file_state([*hostile.values(), cat / "bomb.png", cat / "big.png"])
    result, grew_mib = peak_memory_growth(
        f"train = alexnet.data.open_dataset({'cifar10:' + str(tmp_path / 'tree')!r}).split('train')\n"
        "result['bad'] = {b.path: b.reason for b in train.bad}\n"
        "result['n'] = len(train)")
    assert result["n"] == 5  # the good ones
    pipe_or_device = "not a regular file (a pipe or device)"
    assert result["bad"] == {str(hostile["fifo"]): pipe_or_device, str(hostile["zero"]): pipe_or_device,
                             str(hostile["huge"]): "file is too large (1 MiB, over the limit of 1 MiB)",
                             str(cat / "bomb.png"): "too many pixels (decompression bomb?)",
                             str(cat / "big.png"): "is 9000x9000 px, not 32x32"}
    assert grew_mib < 64, f"peak memory grew {grew_mib:.0f} MiB: something was decoded"
    assert file_state([*hostile.values(), cat / "bomb.png", cat / "big.png"]) == before


def _tar_block(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _file_members(*names: str) -> bytes:
    """Tar members holding a real 32x32 JPEG each, uncompressed."""
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 99, 199)).save(jpeg, "JPEG")
    data = jpeg.getvalue()
    return b"".join(_tar_block(n, len(data)) + data + bytes(-len(data) % 512) for n in names)


def test_an_archive_member_too_large_is_listed_and_never_read(tmp_path: Path):
    # A 0.3 MB .tar.gz holding a 256 MiB member: gzip members may follow one another in a file
    # (RFC 1952, 2.2), so the zeros are one compressed MiB repeated, streamed through gzip here.
    zeros = gzip.compress(bytes(2**20))
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    members = _file_members("train/cat/0.jpg", "test/cat/0.jpg") + _tar_block("train/cat/huge.jpg", 256 * 2**20)
    archive.write_bytes(gzip.compress(members) + zeros * 256
                        + gzip.compress(_file_members("test/cat/1.jpg") + bytes(1024)))
    assert archive.stat().st_size < 2**20
    before = archive.read_bytes()
    result, grew_mib = peak_memory_growth(
        f"source = alexnet.data.open_dataset({'cifar10:' + str(archive)!r})\n"
        "result['bad'] = {b.path: b.reason for b in source.split('train').bad}\n"
        "result['n'] = [len(source.split('train')), len(source.split('test'))]")
    assert result == {"bad": {"train/cat/huge.jpg": "file is too large (256 MiB, over the limit of 1 MiB)"},
                      "n": [1, 2]}
    assert grew_mib < 64, f"peak memory grew {grew_mib:.0f} MiB: the member was read"
    assert archive.read_bytes() == before


def _gnu_tar() -> bool:
    try:
        return b"GNU tar" in subprocess.run(["tar", "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def _sparse_tar(archive: Path, src: Path, name: str, islands: int = 0) -> Path:
    """A real GNU tar --sparse archive of `src`, with `src/name` a 1 TiB file of holes (no disk)
    but for `islands` runs of 10 bytes, one per MiB (more than 4 make tar extend the sparse map)."""
    (src / name).parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(src / name, "wb") as f:
            for i in range(islands):
                f.seek(i * 2**20)
                f.write(b"x" * 10)
            f.truncate(2**40)
    except OSError as err:
        pytest.skip(f"this file system holds no 1 TiB sparse file ({err})")
    subprocess.run(["tar", "--sparse", "-czf", str(archive), "-C", str(src), "."], check=True, timeout=60)
    assert archive.stat().st_size < 2**20  # well under a MiB that claims 1 TiB
    return archive


@pytest.mark.skipif(not _gnu_tar(), reason="GNU tar is not installed")
def test_a_gnu_sparse_member_claiming_a_tib_is_listed_and_never_read(tmp_path: Path):
    write_tree(tmp_path / "src")
    archive = _sparse_tar(tmp_path / "cifar10-jpeg.tar.gz", tmp_path / "src", "train/cat/huge.jpg")
    train = finishes(lambda: open_dataset(f"cifar10:{archive}").split("train"))
    assert len(train) == 5
    reasons = {b.path: b.reason for b in train.bad}
    assert reasons == {"train/cat/huge.jpg": "file is too large (1 TiB, over the limit of 1 MiB)"}


@pytest.mark.skipif(not _gnu_tar(), reason="GNU tar is not installed")
def test_a_sparse_batch_claiming_a_tib_is_a_one_line_error(tmp_path: Path):
    write_batches(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "src" / "cifar-10-batches-py" / "data_batch_2").unlink()
    archive = _sparse_tar(tmp_path / "cifar-10-python.tar.gz", tmp_path / "src", "cifar-10-batches-py/data_batch_2")
    with pytest.raises(DataError) as err:
        finishes(lambda: open_dataset(f"cifar10:{archive}"))
    assert str(err.value) == (f"{archive}:cifar-10-batches-py/data_batch_2: file is too large "
                              "(1 TiB, over the limit of 256 MiB)")


@pytest.mark.skipif(not _gnu_tar(), reason="GNU tar is not installed")
def test_a_sparse_member_with_an_extended_map_refuses_the_archive(tmp_path: Path):
    # tarfile reads a sparse map's extension blocks, as many as the archive has, before the member
    write_tree(tmp_path / "src")
    archive = _sparse_tar(tmp_path / "cifar10-jpeg.tar.gz", tmp_path / "src", "train/cat/holes.jpg", islands=10)
    assert len(tarfile.open(archive).getmember("./train/cat/holes.jpg").sparse) == 10  # the map did need extending
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{archive}")
    assert str(err.value) == (f"{archive}: refusing the archive: member './train/cat/holes.jpg' is a sparse file "
                              "with an extended map")


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME])
def test_a_tar_header_claiming_a_tib_refuses_the_archive(tmp_path: Path, kind: bytes):
    # tarfile reads a pax header or a GNU long name whole: 1 TiB was a MemoryError traceback
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    members = _file_members("train/cat/0.jpg") + _tar_block("././@PaxHeader", 2**40, kind) + bytes(1024)
    archive.write_bytes(gzip.compress(members))
    with pytest.raises(DataError) as err:
        open_dataset(f"cifar10:{archive}")
    assert str(err.value) == (f"{archive}: refusing the archive: the header of member '././@PaxHeader' is too large "
                              "(1 TiB, over the limit of 1 MiB)")


def test_members_are_bounded_in_number_and_in_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the limits themselves are far above CIFAR-10's (alexnet.limits); smaller ones show the checks
    write_tree(tmp_path / "tree")
    archive = write_tar(tmp_path / "cifar10-jpeg.tar.gz", tmp_path / "tree")
    with monkeypatch.context() as m:
        m.setattr(archive_module, "ARCHIVE_MEMBERS", 4)
        with pytest.raises(DataError, match="refusing the archive: more than 4 members"):
            open_dataset(f"cifar10:{archive}")
    with monkeypatch.context() as m:
        m.setattr(archive_module, "ARCHIVE_READ_BYTES", 2000)
        with pytest.raises(DataError,
                           match=r"refusing the archive: the data read from it is too large \(.* over the limit of "
                                 r"1.95 KiB\)"):
            open_dataset(f"cifar10:{archive}")
    assert len(open_dataset(f"cifar10:{archive}").split("train")) == 5


def test_a_missing_dataset_is_a_short_line_naming_the_first_place_and_alexnet_data(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")  # no ./data, no ../shared beside it
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "store"))
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError) as refused:
        open_dataset("cifar10", download=False)
    message = str(refused.value)
    assert message.startswith(f"cifar10: not found in {tmp_path / 'store' / 'cifar10'} or ")
    assert "other places" in message and "ALEXNET_DATA" in message, message
    assert len(message.replace(str(tmp_path), "")) < 200, message
