"""Fixtures for the dataset tests: an isolated environment and writers of small image trees."""

from __future__ import annotations

import os
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
