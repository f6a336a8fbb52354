"""What tests in several folders share: one trained alexnet_mini, trained once per session."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

# The quickstart's recipe (preset fast) on 1,000 shapes training images for 8 epochs: a net that
# has learned something, cheap enough to train once for the whole suite. Its 500 test images
# are the held-out set tests/engine/test_tencrop.py and tests/inference/test_int8.py score.
TRAINED_DATA = "shapes:train=1000,test=500"


@pytest.fixture(scope="session")
def trained_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The checkpoint dict (best.pt) of alexnet_mini trained on TRAINED_DATA with the fast preset."""
    from alexnet.config import make_config, read_yaml
    from alexnet.engine.checkpoint import load_checkpoint
    from alexnet.engine.train import fit

    run = tmp_path_factory.mktemp("trained-shapes") / "run"
    fit(make_config(read_yaml("fast"), data=TRAINED_DATA, epochs=8, workers=0, tensorboard=False, out=str(run)))
    return load_checkpoint(run)


class HubCache:
    """A Hugging Face cache at `root`, filled the way huggingface_hub fills it: content-addressed
    blobs, a snapshot folder per commit of links to them, refs/REF holding the commit
    (huggingface_hub's file_download.py, and its "Understand caching" guide)."""

    commit = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, repo: str, files: Path, ref: str = "main") -> None:
        """The files of the folder `files` as revision `ref` of the model repo `repo`."""
        repo_dir = self.root / ("models--" + repo.replace("/", "--"))
        snapshot = repo_dir / "snapshots" / self.commit
        for d in (repo_dir / "blobs", repo_dir / "refs", snapshot):
            d.mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / ref).write_text(self.commit)
        for f in sorted(files.iterdir()):
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            shutil.copyfile(f, repo_dir / "blobs" / digest)
            os.symlink(f"../../blobs/{digest}", snapshot / f.name)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubCache:
    """HF_HUB_OFFLINE=1 with an empty cache of our own (huggingface_hub reads both at import, so its
    constants are set too; subprocesses get the environment)."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return HubCache(cache)
