"""The NumPy backend (alexnet train --backend numpy): it learns, writes torch-backend checkpoints
that `alexnet eval` scores as the NumPy run did, resumes exactly, and refuses what it cannot do."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet import fit  # the public fit: the engine's, and the run's pictures
from alexnet.config import make_config, read_yaml
from alexnet.engine.backends import smoothed_cross_entropy
from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
from alexnet.engine.evaluate import evaluate_checkpoint
from alexnet.errors import UsageError

SMALL = "shapes:train=640,test=160,size=32"


def small_config(out, **kw):
    """The numpy preset on little data; no augmentation, so that a resumed run can be compared
    number for number with an uninterrupted one (the dropout masks are drawn per epoch)."""
    values = dict(data=SMALL, workers=0, tensorboard=False, augment="none", schedule="plateau", epochs=3, out=str(out))
    return make_config(read_yaml("numpy"), **{**values, **kw})


def read_log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    """One three-epoch NumPy run, shared by the tests below."""
    run = tmp_path_factory.mktemp("numpy") / "run"
    result = fit(small_config(run, tta="flip"))
    return run, result


def test_preset_is_sgd_on_the_numpy_backend():
    cfg = make_config(read_yaml("numpy"))
    assert (cfg.backend, cfg.model, cfg.optimizer, cfg.data) == ("numpy", "alexnet_simple", "sgd", "shapes")


def test_loss_falls_and_the_run_folder_is_a_torch_run(run3):
    run, result = run3
    log = read_log(run)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert set(log[0]) == {"epoch", "step", "lr", "lr_end", "train_loss", "train_top1", "images", "seconds",
                           "images_per_s", "val_loss", "val_top1", "val_top5"}
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert result["best_top1"] == max(r["val_top1"] for r in log) and log[-1]["val_top1"] > 0.2  # chance is 0.1
    assert result["tta"] == "flip" and 0 < result["final_top1"] <= 1
    assert result["steps"] == 30 and result["device"] == "cpu" and result["epochs"] == 3
    for name in ("config.yaml", "last.pt", "best.pt", "curves.png", "filters.png"):
        assert (run / name).is_file(), name
    ckpt = load_checkpoint(run, prefer="last")
    assert ckpt["model_name"] == "alexnet_simple" and ckpt["epoch"] == 3 and ckpt["step"] == 30
    assert ckpt["config"]["backend"] == "numpy"
    group = ckpt["optimizer"]["param_groups"][0]
    assert group["momentum"] == 0.9 and group["nesterov"] is True
    assert len(ckpt["optimizer"]["state"]) == len(ckpt["model"])  # a momentum buffer per tensor
    assert ckpt["init_filters"].shape == ckpt["model"]["features.conv1.weight"].shape
    assert not torch.equal(ckpt["init_filters"], ckpt["model"]["features.conv1.weight"])


def test_torch_eval_of_the_checkpoint_gives_the_numpy_accuracy(run3):
    run, _ = run3
    ckpt = load_checkpoint(run, prefer="last")
    model_from_checkpoint(ckpt)  # loads strictly
    # what `alexnet eval RUN --tta center` computes with torch: the epochs' own view
    result = evaluate_checkpoint(ckpt, workers=0, tta="center")
    assert result["n"] == 160
    assert abs(result["top1"] - read_log(run)[-1]["val_top1"]) <= 1 / 160
    assert result["loss"] == pytest.approx(read_log(run)[-1]["val_loss"], rel=1e-4)


def test_torch_eval_with_views_gives_the_numpy_tta_accuracy(run3):
    run, numpy_result = run3  # trained with tta=flip: the final evaluation averages two views in NumPy
    result = evaluate_checkpoint(load_checkpoint(run, prefer="last"), workers=0)  # the run's own views: flip
    assert result["views"] == 2 and result["tta"] == "flip"
    assert abs(result["top1"] - numpy_result["final_top1"]) <= 1 / 160
    assert result["loss"] == pytest.approx(numpy_result["final_loss"], rel=1e-4)


def test_resume_continues_exactly(run3, tmp_path):
    run, _ = run3
    two = tmp_path / "two"
    fit(small_config(two, epochs=2, tta="flip"))
    shutil.copytree(two, tmp_path / "copy")
    result = fit(make_config(load_checkpoint(two, prefer="last")["config"], epochs=3, resume=str(two)))
    assert result["epochs"] == 3 and [r["epoch"] for r in read_log(two)] == [1, 2, 3]
    # weights, momentum and dropout masks restored: epoch 3 is the uninterrupted run's epoch 3
    resumed, straight = load_checkpoint(two, prefer="last"), load_checkpoint(run, prefer="last")
    for key, value in straight["model"].items():  # the same NumPy sums in the same order: equal, not close
        assert torch.equal(resumed["model"][key], value), key
    assert read_log(two)[-1]["val_top1"] == read_log(run)[-1]["val_top1"]
    with pytest.raises(UsageError, match="already trained 3 of 3"):
        fit(make_config(resumed["config"], epochs=3, resume=str(two)))
    # the checkpoint is a torch-backend one: the torch engine continues it too
    copy = tmp_path / "copy"
    torch_result = fit(make_config(load_checkpoint(copy, prefer="last")["config"], epochs=3, resume=str(copy),
                                   backend="torch"))
    assert torch_result["epochs"] == 3


@pytest.mark.parametrize(("change", "message"), [
    (dict(optimizer="adamw"), "SGD only"),
    (dict(device="cuda"), "CPU only"),
    (dict(amp=True), "float32 only"),
    (dict(model="alexnet_owt"),
     "no NumPy version; the numpy backend trains: alexnet2012, alexnet_mini, alexnet_simple"),
    (dict(image_size=36), "takes 3x32x32 inputs"),  # the torch net takes 32..39 px, the NumPy one 32 only
    (dict(image_size=64), "does not fit alexnet_simple: it takes inputs of 32 to 39 px"),
    (dict(model_args={"dropout": 2.0}), "dropout"),
])
def test_refuses_what_it_cannot_do(tmp_path, change, message):
    with pytest.raises(UsageError, match=message):
        fit(small_config(tmp_path / "run", **change))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_smoothed_cross_entropy_is_torchs(smoothing):
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(6, 5)), rng.integers(0, 5, size=6)
    loss, grad = smoothed_cross_entropy(logits, y, smoothing)
    t = torch.tensor(logits, requires_grad=True)
    expected = F.cross_entropy(t, torch.tensor(y), label_smoothing=smoothing)
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-14)
