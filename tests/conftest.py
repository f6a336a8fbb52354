"""What tests in several folders share: one trained alexnet_mini, trained once per session."""

from __future__ import annotations

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
