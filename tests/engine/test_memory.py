"""Out-of-memory faults (engine/console.py): real allocator errors are recognised, and train, eval
and predict turn one into a one-line message naming the batch size, exit 1, with no traceback."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.cli import main
from alexnet.engine.console import explain_out_of_memory, is_out_of_memory
from alexnet.errors import OutOfMemory
from alexnet.models.convnet import ConvNet

DATA = "shapes:train=128,test=64,size=32"


def real_cpu_error() -> RuntimeError:
    try:
        torch.empty(1 << 50, dtype=torch.uint8)  # 1 PiB: torch's CPU allocator refuses
    except RuntimeError as e:
        return e
    pytest.skip("this machine allocated 1 PiB")


def real_numpy_error() -> MemoryError:
    try:
        np.empty(1 << 50, dtype=np.uint8)
    except MemoryError as e:
        return e
    pytest.skip("this machine allocated 1 PiB")


def test_real_allocator_errors_are_recognised_and_others_are_not():
    assert is_out_of_memory(real_cpu_error())
    assert is_out_of_memory(real_numpy_error())
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB."))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x9 and 8x2)"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_explain_names_the_batch_size_and_a_smaller_one():
    with pytest.raises(OutOfMemory) as info:
        with explain_out_of_memory(256, "cpu"):
            raise real_cpu_error()
    text = str(info.value)
    assert "batch size 256" in text and "--batch-size 128" in text and "can't allocate memory" in text
    assert "enforce fail" not in text and "\n" not in text
    with pytest.raises(OutOfMemory, match="--batch-size 32 or --amp"):  # on a GPU, mixed precision helps too
        with explain_out_of_memory(64, "meta", amp=False):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB.")
    with pytest.raises(RuntimeError, match="shapes"):  # other errors pass through untouched
        with explain_out_of_memory(64, "cpu"):
            raise RuntimeError("shapes cannot be multiplied")


REAL_FORWARD = ConvNet.forward


def fail_like_a_full_gpu(self, x):
    """A net's forward pass as it fails when the batch does not fit on a GPU (a shape check on the
    meta device, which loading a checkpoint makes, allocates nothing and so passes)."""
    if x.device.type == "meta":
        return REAL_FORWARD(self, x)
    raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0] / 8:.2f} GiB. GPU 0 has a total "
                                 "capacity of 79.19 GiB")


def one_line_error(capsys, *words: str) -> None:
    """The error is the last line of stderr (training logs its progress there before it)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert all(w in err.strip().splitlines()[-1] for w in words), err


def test_train_eval_and_predict_explain_out_of_memory(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    base = ["--model", "alexnet_simple", "--data", DATA, "--workers", "0", "--no-tensorboard", "--device", "cpu"]
    assert main(["train", *base, "--epochs", "1", "--batch-size", "64", "--out", str(run)]) == 0
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()

    with monkeypatch.context() as m:
        m.setattr(ConvNet, "forward", fail_like_a_full_gpu)
        assert main(["train", *base, "--epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "run2")]) == 1
        one_line_error(capsys, "alexnet train: error: out of memory while training", "batch size 64", "--batch-size 32")
        assert main(["eval", str(run), "--batch-size", "50", "--workers", "0", "--device", "cpu"]) == 1
        one_line_error(capsys, "out of memory while evaluating", "batch size 50", "--batch-size 25")
        image = tmp_path / "one.png"
        Image.new("RGB", (40, 40), (200, 30, 30)).save(image)
        assert main(["predict", str(image), "--checkpoint", str(run), "--batch-size", "1", "--device", "cpu"]) == 1
        one_line_error(capsys, "out of memory while classifying", "batch size 1", "a smaller model")
    assert (run / "last.pt").read_bytes() == before  # nothing on disk was touched
