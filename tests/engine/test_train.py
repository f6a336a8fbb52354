"""Training end to end on small built-in data: the loss falls, checkpoints rebuild, resume continues."""

import json
from pathlib import Path

import pytest
import torch

from alexnet.config import make_config, read_yaml
from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from alexnet.engine.optim import Plateau, learning_rates, plateau_after
from alexnet.engine.train import fit, open_training_data
from alexnet.errors import UsageError

SMALL = "shapes:train=640,test=160,size=32"


def small_config(tmp_path, **kw):
    base = read_yaml("fast")
    return make_config(base, data=SMALL, workers=0, batch_size=64, tensorboard=False, out=str(tmp_path / "run"), **kw)


def read_log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_checkpoints_rebuild(tmp_path):
    result = fit(small_config(tmp_path, epochs=4))
    run = tmp_path / "run"
    log = read_log(run)
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < log[0]["train_loss"] * 0.8
    assert result["final_top1"] > 0.3  # chance is 0.1
    assert set(result) >= {"run_dir", "epochs", "best_top1", "final_top1", "final_top5", "seconds"}
    for name in ("config.yaml", "last.pt", "best.pt"):
        assert (run / name).is_file()
    ckpt = load_checkpoint(run, prefer="last")
    assert ckpt["epoch"] == 4 and ckpt["model_name"] == "alexnet_mini" and len(ckpt["classes"]) == 10
    model = model_from_checkpoint(ckpt).eval()
    assert model.num_classes == 10
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)


def test_resume_continues_from_the_saved_epoch(tmp_path):
    fit(small_config(tmp_path, epochs=2, schedule="cosine"))
    run = tmp_path / "run"
    first = load_checkpoint(run, prefer="last")
    cfg = make_config(first["config"], epochs=3, resume=str(run))
    result = fit(cfg)
    log = read_log(run)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[2]["step"] == log[1]["step"] + (log[1]["step"] - log[0]["step"])
    assert result["epochs"] == 3
    with pytest.raises(UsageError, match="already trained 3 of 3"):
        fit(make_config(first["config"], epochs=3, resume=str(run)))


def test_refuses_to_overwrite_a_run(tmp_path):
    fit(small_config(tmp_path, epochs=1, max_steps=2))
    with pytest.raises(UsageError, match="already holds a run"):
        fit(small_config(tmp_path, epochs=1, max_steps=2))


def test_max_steps_stops_early(tmp_path):
    result = fit(small_config(tmp_path, epochs=5, max_steps=3))
    assert result["steps"] == 3


def test_train_and_val_images_limit_what_a_run_sees(tmp_path):
    """--train-images / --val-images: steps per epoch follow the subset, and validation counts its images."""
    result = fit(small_config(tmp_path, epochs=1, train_images=128, val_images=50))
    assert result["steps"] == 128 // 64
    log = read_log(tmp_path / "run")
    assert log[0]["images"] == 128
    source = open_training_data(small_config(tmp_path, train_images=128, val_images=50))
    assert (len(source.split("train")), len(source.split("val"))) == (128, 50)


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"a": torch.ones(2)})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(UsageError, match="a is a Boom, which this package never saves"):  # refused by the digest
        save_checkpoint(path, {"a": Boom()})
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):  # the writer fails half-way
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:50])
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"a": torch.zeros(2)})
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_plateau_divides_by_ten_at_most_three_times():
    cfg = make_config({"schedule": "plateau", "plateau_patience": 0, "max_lr_drops": 3, "lr": 0.01})
    state, lrs = Plateau(), []
    for _ in range(8):
        state = plateau_after(state, 0.5, cfg)  # validation accuracy never improves
        lrs.append(learning_rates(cfg, [0.01], 0, state, total_steps=1, steps_per_epoch=1)[0])
    # the first call sets the best value; then one drop per call until three drops are spent
    assert sorted({round(v, 12) for v in lrs}) == [1e-5, 1e-4, 1e-3, 1e-2]
    assert lrs[-4:] == [pytest.approx(1e-5)] * 4


def test_onecycle_shape():
    cfg = make_config({"schedule": "onecycle", "warmup_epochs": 1, "epochs": 4})
    lrs = []
    for step in range(40):
        lrs.append(learning_rates(cfg, [1.0], step, None, total_steps=40, steps_per_epoch=10)[0])
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs.index(1.0) == 9
    assert lrs[-1] < 0.05


def _photo_folder(root, broken: bool):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        for cls in ("dark", "light"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                base = 40 if cls == "dark" else 200
                pixels = np.clip(base + rng.normal(0, 20, (20, 24, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    if broken:
        (root / "train" / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def test_a_corrupt_image_is_skipped_counted_and_reported(tmp_path):
    data = _photo_folder(tmp_path / "photos", broken=True)
    cfg = make_config(model="alexnet_simple", data=f"folder:{data}", epochs=1, batch_size=8, workers=0,
                      tensorboard=False, out=str(tmp_path / "run"), optimizer="adamw", lr=1e-3)
    result = fit(cfg)
    assert result["bad_images"] == 1
    report = (tmp_path / "run" / "bad_images.txt").read_text()
    assert "broken.png" in report
    with pytest.raises(UsageError, match=r"broken\.png"):
        fit(make_config(cfg.__dict__ | {"out": str(tmp_path / "run2"), "strict": True}))


@pytest.mark.parametrize("accum_steps", [1, 3, 7])
def test_micro_batches_add_up_to_the_whole_batchs_gradient(accum_steps):
    """--accum-steps: each micro-batch's backward takes its share n_i/N of the mean loss (uneven
    pieces too: 7 images in 3 are 3+2+2), so .grad is the gradient of F.cross_entropy over the
    whole batch, which torch autograd gives independently."""
    from alexnet.engine.backends import forward_backward
    from alexnet.models import build_model

    torch.manual_seed(0)
    model = build_model("alexnet_simple", num_classes=5, dropout=0.0)
    x, y = torch.randn(7, 3, 32, 32), torch.randint(0, 5, (7,))
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1).backward()
    expected = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    loss, logits = forward_backward(model, x, y, accum_steps=accum_steps, label_smoothing=0.1)
    with torch.no_grad():
        whole = model(x)
    assert logits.shape == (7, 5) and torch.allclose(logits, whole, atol=1e-5)
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(whole, y, label_smoothing=0.1)),
                                        rel=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[k], rtol=1e-4, atol=1e-6)


def test_accum_steps_is_refused_where_it_cannot_run():
    from alexnet.engine.backends import check_numpy_config
    from alexnet.engine.fast import use_cuda_graphs

    with pytest.raises(UsageError, match="accum_steps are options of the torch backend"):
        check_numpy_config(make_config(read_yaml("numpy"), backend="numpy", accum_steps=2))
    used, note = use_cuda_graphs(make_config(cuda_graphs="on", compile="on", accum_steps=2), torch.device("cuda"))
    assert not used and "micro-batches" in note


def test_a_holdout_chooses_and_the_test_split_is_scored_once_at_the_end(tmp_path, capsys):
    """With holdout N the per-epoch validation (best.pt, plateau drops) reads N held-out training
    images, never the test split; the test split is scored once, at the end, with the centre view
    and the run's tta, and those scores are what `alexnet eval` gives for the last net."""
    from alexnet.cli.train import closing_lines
    from alexnet.engine.evaluate import evaluate_checkpoint

    cfg = small_config(tmp_path, epochs=2, holdout=100, schedule="plateau", optimizer="sgd", lr=0.01)
    result = fit(cfg)
    run = tmp_path / "run"
    assert result["val_images"] == 100 and set(result["test"]) == {"center", "flip"}
    ckpt = load_checkpoint(run, prefer="last")
    assert ckpt["config"]["holdout"] == 100
    held = open_training_data(cfg)
    assert len(held.split("train")) == 540 and len(held.split("test")) == 160
    for view, scores in result["test"].items():
        scored = evaluate_checkpoint(ckpt, workers=0, tta=view, split="test")
        assert scores["top1"] == pytest.approx(scored["top1"], abs=1e-6)
    # the logged validation is the holdout's: the same net scored on the 100 held-out images
    from alexnet.data.loader import make_loader
    from alexnet.data.transforms import EvalViews, eval_prepare, prep_stats
    from alexnet.engine.evaluate import evaluate

    model = model_from_checkpoint(ckpt).eval()
    loader = make_loader(held.split("val"), eval_prepare(ckpt["augment"], size=32, channels=3), batch_size=50,
                         shuffle=False, workers=0)
    val = evaluate(model, loader, device=torch.device("cpu"), num_classes=10,
                   views=EvalViews(size=32, channels=3, **prep_stats(ckpt)))
    # bf16 autocast while training may flip one image
    assert read_log(run)[-1]["val_top1"] == pytest.approx(val["top1"], abs=0.011)
    # `alexnet eval RUN --tta center`: its 'val' is the run's holdout, as in training
    again = evaluate_checkpoint(ckpt, workers=0, tta="center")
    assert again["n"] == 100 and again["top1"] == pytest.approx(val["top1"], abs=1e-6)
    line = closing_lines(cfg, result)[0]
    assert "validation (holdout): best epoch top-1" in line
    assert f"test split: top-1 {result['test']['center']['top1']:.2%} (center)" in line
    assert "test split (160 images, scored once) with center" in capsys.readouterr().err


def test_without_a_holdout_the_test_split_is_val_and_not_scored_twice(tmp_path):
    result = fit(small_config(tmp_path, epochs=1))
    assert result["test"] == {} and result["val_images"] == 160
