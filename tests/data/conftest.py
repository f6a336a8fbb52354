"""Fixtures for the dataset tests: an isolated environment and writers of small image trees."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared" / "datasets").resolve()
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Caches go to a fresh folder ($ALEXNET_CACHE), $ALEXNET_DATA is unset, and the working
    directory is an empty folder, so the default search places (./data, ../shared/datasets) hold
    nothing unless a test puts something there. Both live outside the test's tmp_path, which
    stays free for the test's own files. The reader tests use it for every test (``pytestmark``)."""
    env = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("ALEXNET_CACHE", str(env / "cache"))
    monkeypatch.delenv("ALEXNET_DATA", raising=False)
    (env / "cwd").mkdir()
    monkeypatch.chdir(env / "cwd")
    return env


def cache_folder() -> Path:
    return Path(os.environ["ALEXNET_CACHE"])


def write_image(path: Path, colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32)) -> Path:
    """A flat-colour image at `path`, its format chosen by the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def image_tree():
    """make(root, {'class': n, ...}, ext='.jpg') writes n images per class folder; returns root."""

    def make(root: Path, counts: dict[str, int], ext: str = ".jpg", size: tuple[int, int] = (32, 32)) -> Path:
        rng = np.random.default_rng(len(counts))
        for name, n in counts.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                write_image(root / name / f"{i:04d}{ext}", colour, size)
        return root

    return make


# --- files no reader may open or read whole (issue 16) ----------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of about 100 bytes whose header claims `width` x `height` RGB pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + chunk(b"IEND", b""))


def write_unopenable(folder: Path, huge_bytes: int, ext: str = ".jpg") -> dict[str, Path]:
    """In `folder`: a named pipe with no writer (opening it to read blocks for ever), a link to
    /dev/zero (reading it never ends) and a sparse file of `huge_bytes` that starts like a JPEG
    (it takes no disk), each named ``*<ext>``; returns {'fifo' | 'zero' | 'huge': path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"fifo": folder / f"pipe{ext}", "zero": folder / f"zero{ext}", "huge": folder / f"huge{ext}"}
    os.mkfifo(paths["fifo"])
    paths["zero"].symlink_to("/dev/zero")
    with open(paths["huge"], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(huge_bytes)
    return paths


def file_state(paths) -> list[tuple[str, int, int, str]]:
    """(path, lstat mode, lstat size, link target) of each path: equal before and after a run when
    the run left the files as they were."""
    return [(str(p), os.lstat(p).st_mode, os.lstat(p).st_size, os.readlink(p) if os.path.islink(p) else "")
            for p in paths]


def finishes(fn, timeout: float = 20.0):
    """fn()'s result, failing the test if it does not return within `timeout` seconds (a hang on a
    pipe): it runs in a daemon thread, which a blocked open cannot keep alive past the tests."""
    result: list = []
    errors: list = []

    def run():
        try:
            result.append(fn())
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not result:
        pytest.fail(f"did not finish in {timeout} s (blocked on a pipe, or reading a device?)")
    return result[0]


def peak_memory_growth(code: str, timeout: float = 120) -> tuple[dict, float]:
    """Run `code` in a fresh Python (torch, PIL and alexnet.data already imported) and return (the
    dict it leaves in `result`, how many MiB its peak resident memory grew while `code` ran). A
    fresh process, because the peak of this one is already high from the tests before."""
    script = (
        "import json, resource, torch, PIL.Image, alexnet.data, alexnet.data.cifar, alexnet.data.mnist\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result = {}\n"
        f"{code}\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(json.dumps({'result': result, 'grew_kib': grew}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["result"], out["grew_kib"] / 1024
