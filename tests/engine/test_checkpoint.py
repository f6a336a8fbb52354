"""Checkpoints from a file are checked before use: every field of the description and of the
training state (check_checkpoint), and the digest of the tensors (check_digest).

The bad checkpoints are real files: a checkpoint written by `alexnet train`, one field changed,
saved with torch.save. Each goes through every command that loads a checkpoint (predict, predict
--weights, eval, train --resume, export, viz) in this process, so an exception other than the
one-line UsageError would fail the test; each must end with exit 2 and one line naming the field.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from alexnet.cli import main
from alexnet.config import make_config, read_yaml
from alexnet.engine.checkpoint import load_checkpoint
from alexnet.engine.checks import check_checkpoint, checkpoint_digest, tensor_digest
from alexnet.engine.train import fit
from alexnet.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DELETE = object()  # a row's value: the key is removed


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of a real one-step training run (alexnet_simple: 10 classes, 3x32x32)."""
    run = tmp_path_factory.mktemp("ckpt") / "run"
    assert main(["train", "--model", "alexnet_simple", "--data", "shapes:train=20,test=10", "--batch-size", "10",
                 "--max-steps", "1", "--workers", "0", "--no-tensorboard", "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def good(trained: Path) -> dict:
    ckpt = torch.load(trained / "last.pt", weights_only=True)
    assert {"digest", "optimizer", "rng", "config"} <= set(ckpt)
    return ckpt


def _opt(ckpt: dict, change) -> dict:
    opt = {"state": dict(ckpt["optimizer"]["state"]),
           "param_groups": [dict(g) for g in ckpt["optimizer"]["param_groups"]]}
    change(opt)
    return opt


def _rng(ckpt: dict, part: str, value) -> dict:
    return {**ckpt["rng"], part: value}


W = "features.conv1.weight"  # alexnet_simple's first weight
PARTIAL = {"batches": 1, "loss_sum": torch.tensor(2.3), "correct": torch.tensor(1), "images": 10, "nonfinite": 0,
           "seconds": 0.5, "lr": 0.01}

# (id, key, value or a function of the good checkpoint, words the error must contain)
ROWS = [
    *[(f"no {key}", key, DELETE, f"has no '{key}'") for key in
      ("model_name", "model_args", "model", "classes", "input_size", "mean", "std", "augment")],
    *[(f"no {key}", key, DELETE, f"without '{key}'") for key in ("config", "optimizer", "epoch", "step", "best_top1")],
    ("model_name unknown", "model_name", "lenet", "model_name must be one of"),
    ("model_name a number", "model_name", 5, "model_name"),
    ("model_args a string", "model_args", "towers=1", "model_args"),
    ("model_args a list value", "model_args", {"lrn": [1]}, "model_args"),
    ("model_args unknown option", "model_args", {"wings": 2}, "has no option 'wings'"),
    ("num_classes 1e11", "model_args", {"num_classes": 10**11}, "num_classes must be at most 100,000"),
    ("num_classes float", "model_args", {"num_classes": 1e11}, "num_classes"),
    ("in_channels 2", "model_args", {"in_channels": 2}, "in_channels must be 1 or 3"),
    ("num_classes 5", "model_args", {"num_classes": 5}, "does not fit"),
    ("model a string", "model", "weights", "model must be a state_dict"),
    ("model empty", "model", {}, "is missing"),
    ("model wrong shape", "model", lambda c: {**c["model"], "classifier.fc5.weight": torch.zeros(3, 3)},
     "has shape (3, 3)"),
    ("model extra tensor", "model", lambda c: {**c["model"], "extra": torch.zeros(1)}, "unexpected tensor 'extra'"),
    ("classes 5", "classes", 5, "classes must be a list of class names"),
    ("classes too few", "classes", ["a", "b"], "must name the net's 10 outputs"),
    ("classes not names", "classes", list(range(10)), "classes must be a list"),
    ("input_size negative", "input_size", [3, -5, 0], "input_size must be [3, S, S]"),
    ("input_size a string", "input_size", "abc", "input_size"),
    ("input_size two numbers", "input_size", [3, 32], "input_size"),
    ("input_size bools", "input_size", [True, 32, 32], "input_size"),
    ("input_size channels", "input_size", [1, 32, 32], "input_size"),
    ("input_size huge", "input_size", [3, 100000, 100000], "input_size"),
    ("input_size too small for the net", "input_size", [3, 8, 8], "does not fit alexnet_simple"),
    ("mean a string", "mean", "x", "mean must be 1 or 3 numbers from -1 to 2"),
    ("mean 1e308", "mean", [1e308] * 3, "mean must be"),
    ("mean nan", "mean", [math.nan, 0.5, 0.5], "mean"),
    ("mean two", "mean", [0.5, 0.5], "mean"),
    ("std zero", "std", [0.0, 0.2, 0.2], "std must be 1 or 3 numbers from 0.001 to 10"),
    ("std 1e-308", "std", [1e-308] * 3, "std must be"),
    ("std negative", "std", [-0.2], "std"),
    ("std infinite", "std", [math.inf] * 3, "std"),
    ("std empty", "std", [], "std"),
    ("augment", "augment", "fancy", "augment must be one of"),
    ("input_norm", "input_norm", "zscore", "input_norm"),
    ("translate negative", "translate", -1, "translate must be the small augmentation's border in pixels, 0 to 31"),
    ("translate the whole side", "translate", 32, "translate must be"),
    ("translate huge", "translate", 10**12, "translate"),
    ("translate a string", "translate", "2", "translate"),
    ("translate a bool", "translate", True, "translate"),
    ("translate a fraction", "translate", 2.0, "translate"),
    # the run's saved 4 px means nothing there
    ("translate with augment paper", "augment", "paper", "translate must be"),
    ("mean_image a string", "mean_image", "x", "mean_image"),
    ("mean_image 2-d", "mean_image", torch.zeros(32, 32), "mean_image"),
    ("mean_image nan", "mean_image", torch.full((3, 32, 32), math.nan), "mean_image"),
    ("mean_image 1e30", "mean_image", torch.full((3, 32, 32), 1e30), "of 0-255 pixel values"),
    ("mean_image meta", "mean_image", torch.empty(3, 32, 32, device="meta"), "mean_image"),
    ("pca", "pca", {"eigval": torch.ones(2), "eigvec": torch.eye(2)}, "pca"),
    ("pca eigval negative", "pca", {"eigval": -torch.ones(3), "eigvec": torch.eye(3)}, "pca"),
    ("pca eigvec huge", "pca", {"eigval": torch.ones(3), "eigvec": torch.eye(3) * 1e20}, "unit vectors"),
    # the weights' tensors as no run of ours writes them: each once, in the first conv's weight
    *[(f"model {what}", "model", (lambda f: lambda c: {**c["model"], W: f(c["model"][W])})(make), words)
      for what, make, words in [
          ("a NaN weight", lambda w: w.clone().index_fill_(0, torch.tensor([0]), math.nan), "not finite numbers"),
          ("an infinite weight", lambda w: w.clone().fill_(math.inf), "not finite numbers"),
          ("float64 1e300", lambda w: w.double().fill_(1e300), "not finite numbers"),  # infinite as float32
          ("sparse", lambda w: w.to_sparse(), "is a sparse tensor"),
          ("meta", lambda w: torch.empty(w.shape, device="meta"), "is a tensor on the meta device"),
          ("quantized", lambda w: torch.quantize_per_tensor(w, 0.01, 0, torch.qint8), "is a quantized tensor"),
          ("complex", lambda w: w.to(torch.complex64), "is torch.complex64, the model wants torch.float32"),
          ("int", lambda w: w.to(torch.int64), "is torch.int64, the model wants torch.float32"),
          ("bool", lambda w: w.bool(), "is torch.bool"),
      ]],
    ("an extra entry holding a sparse tensor", "notes", torch.eye(3).to_sparse(), "notes is a sparse tensor"),
    ("an extra entry holding a meta tensor", "notes", {"x": [torch.empty(3, device="meta")]},
     "notes.x[0] is a tensor on the meta device"),
    ("data", "data", 5, "data must be a dataset spec"),
    ("version", "version", 99, "version"),
    ("digest not sha256", "digest", "md5:00", "digest must be 'sha256:...'"),
    ("digest of other contents", "digest", "sha256:" + "0" * 64, "do not match the digest"),
    ("no digest", "digest", DELETE, "a version 2 checkpoint without its digest"),
    ("digest None", "digest", None, "a version 2 checkpoint without its digest"),
    ("config a string", "config", "lr: 0.1", "config must be the run's config"),
    ("epoch negative", "epoch", -1, "epoch must be an integer"),
    ("epoch a string", "epoch", "3", "epoch"),
    ("epoch a bool", "epoch", True, "epoch"),
    ("epoch a fraction", "epoch", 1.5, "epoch"),
    ("epoch huge", "epoch", 10**30, "epoch"),
    ("step negative", "step", -3, "step must be an integer"),
    ("best_top1 a string", "best_top1", "x", "best_top1"),
    ("best_top1 out of range", "best_top1", 5.0, "best_top1"),
    ("elapsed negative", "elapsed", -1.0, "elapsed"),
    ("metrics", "metrics", "x", "metrics must be a mapping"),
    ("plateau", "plateau", [1], "plateau must be a mapping"),
    ("init_filters", "init_filters", torch.zeros(2, 2), "init_filters"),
    ("optimizer a string", "optimizer", "sgd", "optimizer must be an optimizer's state_dict"),
    ("optimizer no groups", "optimizer", {"state": {}, "param_groups": []}, "optimizer must be"),
    ("optimizer a parameter lost", "optimizer",
     lambda c: _opt(c, lambda o: o["param_groups"][0].update(params=o["param_groups"][0]["params"][1:])),
     "parameters, each once"),
    ("optimizer state of a stranger", "optimizer", lambda c: _opt(c, lambda o: o["state"].update({999: {}})),
     "its own parameters"),
    ("optimizer state of the wrong shape", "optimizer",
     lambda c: _opt(c, lambda o: o["state"].update({0: {"momentum_buffer": torch.zeros(7)}})),
     "state of parameter 0 must have its shape"),
    ("optimizer state NaN", "optimizer",
     lambda c: _opt(c, lambda o: o["state"].update({0: {**o["state"][0], "exp_avg": torch.full_like(c["model"][W],
                                                                                                  math.nan)}})),
     "optimizer state of parameter 0 must be"),
    ("optimizer state meta", "optimizer",
     lambda c: _opt(c, lambda o: o["state"].update({0: {**o["state"][0], "exp_avg": torch.empty(c["model"][W].shape,
                                                                                               device="meta")}})),
     "optimizer state of parameter 0 must be"),
    ("optimizer groups split otherwise", "optimizer", lambda c: _opt(c, lambda o: o.update(param_groups=[
        {**o["param_groups"][0], "params": o["param_groups"][0]["params"][:2]},
        {**o["param_groups"][0], "params": o["param_groups"][0]["params"][2:]}])), "parameter groups of"),
    ("rng a string", "rng", "x", "rng must be"),
    ("rng torch state", "rng", lambda c: _rng(c, "torch", torch.zeros(3, dtype=torch.uint8)), "rng is not"),
    ("rng numpy keys", "rng",
     lambda c: _rng(c, "numpy", {**c["rng"]["numpy"], "keys": torch.zeros(5, dtype=torch.int64)}), "rng is not"),
    ("rng python state", "rng", lambda c: _rng(c, "python", {**c["rng"]["python"], "state": [1, 2]}), "rng is not"),
    ("rng missing part", "rng", lambda c: {"torch": c["rng"]["torch"]}, "rng is not"),
    ("rng torch state meta", "rng", lambda c: _rng(c, "torch", torch.empty(5056, dtype=torch.uint8, device="meta")),
     "rng"),
    ("partial a string", "partial", "half", "partial must be"),
    ("partial without lr", "partial", {"batches": 1}, "partial must be"),
    ("partial batches 0", "partial", {**PARTIAL, "batches": 0}, "partial batches must be"),
    ("partial lr", "partial", {**PARTIAL, "lr": "x"}, "partial lr must be"),
    ("partial loss_sum", "partial", {**PARTIAL, "loss_sum": "x"}, "partial loss_sum must be"),
    ("partial correct", "partial", {**PARTIAL, "correct": torch.tensor(1.5)}, "partial correct must be"),
    ("partial correct complex", "partial", {**PARTIAL, "correct": torch.tensor(1 + 2j)}, "partial correct must be"),
    ("partial correct bool", "partial", {**PARTIAL, "correct": torch.tensor(True)}, "partial correct must be"),
    ("partial correct meta", "partial", {**PARTIAL, "correct": torch.empty((), dtype=torch.long, device="meta")},
     "partial correct must be"),
    ("partial loss_sum meta", "partial", {**PARTIAL, "loss_sum": torch.empty((), device="meta")},
     "partial loss_sum must be"),
    ("partial images", "partial", {**PARTIAL, "images": -1}, "partial images must be"),
]


def _commands(ckpt: Path, tmp: Path) -> dict[str, list[str]]:
    image = tmp / "photo.png"
    if not image.exists():
        Image.new("RGB", (40, 40), (200, 40, 40)).save(image)
    return {
        "predict": ["predict", str(image), "--checkpoint", str(ckpt)],
        "predict --weights": ["predict", str(image), "--model", "alexnet_simple", "--weights", str(ckpt)],
        "eval": ["eval", str(ckpt), "--workers", "0"],
        "train --resume": ["train", "--resume", str(ckpt)],
        "export": ["export", str(ckpt), "--format", "safetensors", "--out", str(tmp / "net.safetensors")],
        "viz filters": ["viz", "filters", "--checkpoint", str(ckpt), "--out", str(tmp / "filters.png")],
    }


def _write(good: dict, key: str, value, path: Path) -> Path:
    """The checkpoint with one entry changed, and its digest recomputed as a forger would (where
    the change leaves something the digest can take: a meta tensor it refuses)."""
    ckpt = dict(good)
    if value is DELETE:
        del ckpt[key]
    else:
        ckpt[key] = value(good) if callable(value) else value
    if key != "digest":
        try:
            ckpt["digest"] = checkpoint_digest(ckpt)
        except UsageError:
            pass
    torch.save(ckpt, path)
    return path


def test_a_checkpoint_as_training_writes_it_passes_every_check(trained: Path):
    ckpt = load_checkpoint(trained / "last.pt")
    net = check_checkpoint(ckpt)
    assert net.arch == "alexnet_simple" and next(net.parameters()).device.type == "meta"  # no memory taken
    assert ckpt["version"] == 2 and ckpt["digest"] == checkpoint_digest(ckpt)
    check_checkpoint({**ckpt, "partial": dict(PARTIAL)})  # what an interrupted epoch saves


@pytest.mark.parametrize("key,value,words", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_every_bad_field_is_one_line_in_every_command(good: dict, tmp_path: Path, capsys, key, value, words):
    bad = _write(good, key, value, tmp_path / "bad.pt")
    for name, argv in _commands(bad, tmp_path).items():
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (name, captured.err)
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(bad) in lines[0], (name, captured.err)
    assert not (tmp_path / "net.safetensors").exists() and not (tmp_path / "filters.png").exists()


def test_a_config_out_of_range_is_refused_by_resume_naming_the_file(good: dict, tmp_path: Path, capsys):
    bad = _write(good, "config", {**good["config"], "lr": -1.0}, tmp_path / "bad.pt")
    assert load_checkpoint(bad)["config"]["lr"] == -1.0  # eval and predict need no config
    assert main(["train", "--resume", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: its config: lr must be > 0" in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_without_training_state_cannot_be_resumed(good: dict, tmp_path: Path, capsys):
    bare = tmp_path / "bare.pt"
    kept = {k: v for k, v in good.items() if k not in ("config", "optimizer", "epoch", "step", "best_top1")}
    torch.save({**kept, "digest": checkpoint_digest(kept)}, bare)
    load_checkpoint(bare)  # a description alone is a whole checkpoint for eval and predict
    assert main(["train", "--resume", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "holds no training state" in err and len(err.strip().splitlines()) == 1
    for backend in ("torch", "numpy"):  # from Python too, before any data is opened
        with pytest.raises(UsageError, match="holds no training state"):
            fit(make_config(read_yaml(backend if backend == "numpy" else "fast"), backend=backend, resume=str(bare)))


def test_a_text_file_is_not_a_checkpoint(tmp_path: Path, capsys):
    text = tmp_path / "afile"
    text.write_text("hello, I am notes\n")
    assert main(["train", "--resume", str(text)]) == 2
    err = capsys.readouterr().err
    assert f"cannot load checkpoint {text}: not a file torch.save wrote (it starts with b'hello, I')" in err
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="the file is empty"):
        load_checkpoint(tmp_path / "empty.pt")


def test_model_args_far_too_large_take_no_memory(good: dict, tmp_path: Path):
    """alexnet2012 with 100,000 classes is 470M weights (1.9 GB): refused as not fitting the file's
    tensors before it is built. The command's peak memory (os.wait4) shows nothing was allocated."""
    bad = _write(good, "model_name", "alexnet2012", tmp_path / "bad.pt")
    bad = _write({**good, "model_name": "alexnet2012"}, "model_args", {"num_classes": 100_000}, bad)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "alexnet", "eval", str(bad)], stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    assert os.waitstatus_to_exitcode(status) == 2, err
    assert "does not fit alexnet2012" in err and len(err.strip().splitlines()) == 1, err
    # ru_maxrss is in KiB; torch's CUDA build alone maps about 0.8 GiB, and the command peaked at up
    # to 1.55 GiB in a full suite run; building the net would add 1.9 GB on top (2.7 GiB or more)
    assert usage.ru_maxrss < 2.2 * 1024 * 1024, f"peak {usage.ru_maxrss / 1024:.0f} MiB"


def _flip_a_weight_byte(path: Path) -> str:
    """Flip one bit inside the largest tensor's bytes in the file, as a bad disk or copy would."""
    ckpt = torch.load(path, weights_only=True)
    name = max(ckpt["model"], key=lambda k: ckpt["model"][k].numel())
    data = ckpt["model"][name].contiguous().numpy().tobytes()
    raw = bytearray(path.read_bytes())
    at = raw.find(data[:64])
    assert at > 0 and raw.count(data[:64]) == 1
    raw[at + len(data) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    # torch.load alone notices nothing
    assert not torch.equal(torch.load(path, weights_only=True)["model"][name], ckpt["model"][name])
    return name


def test_a_flipped_weight_byte_is_refused(trained: Path, tmp_path: Path, capsys):
    bad = tmp_path / "flipped.pt"
    shutil.copy(trained / "last.pt", bad)
    _flip_a_weight_byte(bad)
    for argv in (["eval", str(bad)], ["predict", str(bad), "--checkpoint", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{bad}: its contents do not match the digest saved with them" in err
        assert len(err.strip().splitlines()) == 1


def test_in_a_run_folder_a_corrupted_last_falls_back_to_best(trained: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _flip_a_weight_byte(run / "last.pt")
    ckpt = load_checkpoint(run, prefer="last")
    assert ckpt["path"] == str(run / "best.pt")
    err = capsys.readouterr().err
    assert f"warning: {run / 'last.pt'}: its contents do not match the digest" in err
    assert f"using {run / 'best.pt'}" in err


def test_a_checkpoint_from_before_digests_still_loads(good: dict, tmp_path: Path):
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in good.items() if k != "digest"} | {"version": 1}, old)  # version 1 had none
    assert "digest" not in load_checkpoint(old)


def test_a_version_1_checkpoint_still_loads_with_its_weights_digest(good: dict, tmp_path: Path):
    """Written when the digest covered the weights only: loads, and its weights are still checked."""
    v1 = tmp_path / "v1.pt"
    torch.save({**good, "version": 1, "digest": tensor_digest(good["model"]), "classes": list("abcdefghij")}, v1)
    assert load_checkpoint(v1)["classes"] == list("abcdefghij")
    model = {**good["model"], W: good["model"][W] + 1}
    torch.save({**good, "version": 1, "digest": tensor_digest(good["model"]), "model": model}, v1)
    with pytest.raises(UsageError, match="do not match the digest"):
        load_checkpoint(v1)


def _nudge_a_byte(t: torch.Tensor) -> torch.Tensor:
    t = t.clone(memory_format=torch.contiguous_format)  # the run saved its moments channels-last
    t.reshape(-1).view(torch.uint8)[t.numel() * t.element_size() // 2] ^= 0x01
    return t


# what a command uses beyond the weights, each changed without the digest recomputed
CHANGES = {
    "a class name": lambda c: {"classes": ["cat", *c["classes"][1:]]},
    "the mean": lambda c: {"mean": [0.4, 0.4, 0.4]},
    "the std": lambda c: {"std": [0.3, 0.3, 0.3]},
    "the augmentation": lambda c: {"augment": "paper", "translate": None},
    "a byte of the optimizer's moments": lambda c: {"optimizer": _opt(c, lambda o: o["state"].update(
        {0: {**o["state"][0], "exp_avg": _nudge_a_byte(o["state"][0]["exp_avg"])}}))},
    "a byte of the torch RNG state": lambda c: {"rng": {**c["rng"], "torch": _nudge_a_byte(c["rng"]["torch"])}},
    "the lr in the config": lambda c: {"config": {**c["config"], "lr": c["config"]["lr"] * 2}},
    "the epoch": lambda c: {"epoch": c["epoch"] + 1},
    "the best score": lambda c: {"best_top1": 0.99},
}


@pytest.mark.parametrize("what", list(CHANGES))
def test_the_digest_covers_everything_a_command_uses(good: dict, tmp_path: Path, capsys, what):
    """A byte flipped in the optimizer state used to be resumed from silently; class names and the
    input preparation could be changed without notice."""
    assert any(isinstance(v, torch.Tensor) for v in good["optimizer"]["state"][0].values())
    bad = tmp_path / "changed.pt"
    torch.save({**good, **CHANGES[what](good)}, bad)
    for argv in (["train", "--resume", str(bad)], ["eval", str(bad), "--workers", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{bad}: its contents do not match the digest" in err, err


def test_the_digest_covers_every_byte_name_and_dtype_and_not_the_memory_layout():
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(4, 3, 5, 5), "fc.bias": torch.randn(10), "count": torch.tensor(3)}
    digest = tensor_digest(state)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert tensor_digest(dict(reversed(state.items()))) == digest  # the order a file lists them in
    assert tensor_digest({**state, "conv.weight": state["conv.weight"].to(memory_format=torch.channels_last)}) == digest
    nudged = state["fc.bias"].clone()
    nudged[7] = torch.nextafter(nudged[7], torch.tensor(math.inf))  # one ulp
    assert tensor_digest({**state, "fc.bias": nudged}) != digest
    assert tensor_digest({**{k: v for k, v in state.items() if k != "fc.bias"}, "fc.bias2": state["fc.bias"]}) != digest
    assert tensor_digest({**state, "fc.bias": state["fc.bias"].view(torch.int32)}) != digest  # same bytes, other dtype


def test_finite_weights_that_overflow_are_refused_by_predict_and_eval_not_printed_as_nan(good: dict, tmp_path: Path,
                                                                                          capsys):
    """Every weight 1e30, each finite: the logits overflow float32. predict printed 'nan%' and exited 0;
    a heatmap or an attribution map of NaNs is a picture of nothing."""
    model = {k: (v * 0 + 1e30 if v.is_floating_point() else v) for k, v in good["model"].items()}
    bad = _write(good, "model", model, tmp_path / "huge.pt")
    image = tmp_path / "photo.png"
    pictures = {f"viz {verb}": ["viz", verb, str(image), "--checkpoint", str(bad), "--out", str(tmp_path / "x.png")]
                for verb in ("heatmap", "explain")}
    for name in ("predict", "eval", *pictures):  # eval printed "loss nan", and --json a bare NaN
        assert main({**_commands(bad, tmp_path), **pictures}[name]) == 2, name
        out, err = capsys.readouterr()
        assert "nan" not in out.lower() and len(err.strip().splitlines()) == 1, err
        assert f"{bad}: its outputs are not finite numbers" in err, err


def test_a_deflated_zip_bomb_is_refused_before_torch_load_inflates_it(tmp_path: Path, capsys):
    """A torch.save zip whose 100 MB of tensor bytes are deflated to a few hundred KB: torch.load
    would inflate every entry whole (2 MB on disk asked for 2 GB). torch.save stores its entries
    uncompressed, so a compressed one is refused from the zip's directory, before any is read."""
    import zipfile

    plain = tmp_path / "plain.pt"
    torch.save({"format": "alexnet-checkpoint", "x": torch.zeros(25_000_000)}, plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as z, zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as w:
        for name in z.namelist():
            w.writestr(name, z.read(name))
    plain.unlink()
    assert bomb.stat().st_size < 1 << 20
    image = tmp_path / "photo.png"
    Image.new("RGB", (40, 40), (200, 40, 40)).save(image)
    for argv in (["eval", str(bomb)], ["predict", str(image), "--model", "alexnet_simple", "--weights", str(bomb)],
                 ["train", "--resume", str(bomb)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is compressed, which torch.save never does" in err, err
