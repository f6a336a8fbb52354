"""Weights from torchvision's API, torchvision-format state_dicts, safetensors and our checkpoints.

No weights can be downloaded here, so each test builds torchvision's own model, saves its
state_dict in torchvision's format and loads it through the real code path; the reference is
torchvision's model on the same input.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.errors import UsageError
from alexnet.inference.weights import load_weights, save_safetensors, select_model


@pytest.fixture(scope="module")
def tv_alexnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.alexnet(weights=None).eval()


def _same_outputs(ckpt: dict, reference: torch.nn.Module, size: int = 224) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    ours = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_torchvision_state_dict_file(tmp_path: Path, tv_alexnet: torch.nn.Module) -> None:
    path = tmp_path / "alexnet.pth"
    torch.save(tv_alexnet.state_dict(), path)
    ckpt = load_weights(path, "alexnet_owt")
    assert ckpt["model_name"] == "alexnet_owt" and len(ckpt["classes"]) == 1000
    assert ckpt["classes"][0] == "tench" and ckpt["input_size"] == [3, 224, 224]
    _same_outputs(ckpt, tv_alexnet)


def test_imagenet1k_through_torchvisions_weights_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tv_alexnet: torch.nn.Module) -> None:
    """`--weights imagenet1k` goes through AlexNet_Weights.IMAGENET1K_V1.get_state_dict, which finds
    the file in torch hub's cache, where a download would have put it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enum = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(tv_alexnet.state_dict(), cache / os.path.basename(enum.url))
    ckpt = select_model(model="alexnet_owt", weights="imagenet1k")
    assert ckpt["classes"] == list(enum.meta["categories"])
    transform = enum.transforms()
    assert ckpt["mean"] == list(transform.mean) and ckpt["std"] == list(transform.std)
    assert ckpt["input_size"] == [3, *transform.crop_size, *transform.crop_size]
    assert ckpt["augment"] == "paper"  # resize to 256 (= 224 * 256/224), centre crop 224
    _same_outputs(ckpt, tv_alexnet)


def test_imagenet1k_without_network_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UsageError, match=r"cannot get AlexNet_Weights.IMAGENET1K_V1 .*alexnet-owt-7be5be79.pth") as err:
        load_weights("imagenet1k", "alexnet_owt")
    assert "\n" not in str(err.value)


def test_pretrained_name_for_a_model_without_one() -> None:
    with pytest.raises(UsageError, match="not a pretrained set of alexnet2012"):
        load_weights("imagenet1k", "alexnet2012")


def test_training_script_wrappers_and_ddp_prefix(tmp_path: Path, tv_alexnet: torch.nn.Module) -> None:
    path = tmp_path / "checkpoint.pth"
    wrapped = {"model": {f"module.{k}": v for k, v in tv_alexnet.state_dict().items()}, "epoch": 89, "args": "x"}
    torch.save(wrapped, path)
    _same_outputs(load_weights(path, "alexnet_owt"), tv_alexnet)


def test_num_classes_and_channels_read_off_the_tensors(tmp_path: Path) -> None:
    reference = torchvision.models.alexnet(num_classes=10).eval()
    path = tmp_path / "ten.pth"
    torch.save(reference.state_dict(), path)
    ckpt = load_weights(path, "alexnet_owt")
    assert ckpt["classes"] == [str(i) for i in range(10)] and ckpt["model_args"] == {"num_classes": 10}
    _same_outputs(ckpt, reference)


@pytest.mark.parametrize("damage, message", [
    (lambda sd: sd.pop("features.3.bias"), r"tensor 'features.3.bias' \(192,\) is missing"),
    (lambda sd: sd.__setitem__("features.6.weight", torch.zeros(384, 192, 5, 5)),
     r"tensor 'features.6.weight' has shape \(384, 192, 5, 5\), the model wants \(384, 192, 3, 3\)"),
    (lambda sd: sd.__setitem__("features.99.weight", torch.zeros(1)), r"unexpected tensor 'features.99.weight'"),
])
def test_mismatch_names_the_first_bad_tensor(tmp_path: Path, tv_alexnet: torch.nn.Module, damage, message: str) -> None:
    state = dict(tv_alexnet.state_dict())
    damage(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(UsageError, match=message):
        load_weights(path, "alexnet_owt")


def test_wrong_model_for_the_file(tmp_path: Path, tv_alexnet: torch.nn.Module) -> None:
    path = tmp_path / "owt.pth"
    torch.save(tv_alexnet.state_dict(), path)
    with pytest.raises(UsageError, match=r"does not fit alexnet2012: tensor 'features\.conv1\.weight'"):
        load_weights(path, "alexnet2012")
    with pytest.raises(UsageError, match="bare state_dict: say which model"):
        load_weights(path)


def test_safetensors_ours_and_bare(tmp_path: Path, tv_alexnet: torch.nn.Module) -> None:
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in tv_alexnet.state_dict().items()}, str(bare))
    ckpt = load_weights(bare, "alexnet_owt")
    _same_outputs(ckpt, tv_alexnet)
    ckpt["classes"] = [f"class {i}" for i in range(1000)]
    ours = save_safetensors(ckpt, tmp_path / "ours.safetensors")
    back = load_weights(ours)  # describes itself: no --model needed
    assert back["model_name"] == "alexnet_owt" and back["classes"] == ckpt["classes"]
    _same_outputs(back, tv_alexnet)
    with pytest.raises(UsageError, match="holds a alexnet_owt, not a alexnet2012"):
        load_weights(ours, "alexnet2012")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(ours.read_bytes()[:1000])
    with pytest.raises(UsageError, match="cannot read"):
        load_weights(truncated)


class _Exploit:
    """Unpickling this calls Path.touch on the marker file: code run by merely loading a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name in ("evil.pth", "evil.pt"):
        path = tmp_path / name
        torch.save({"features.0.weight": _Exploit(marker)}, path)
        with pytest.raises(UsageError, match="cannot load"):
            load_weights(path, "alexnet_owt")
        with pytest.raises(UsageError, match="cannot load"):
            select_model(checkpoint=path)
    assert not marker.exists()


# ---- our safetensors' description and digest (issue 16) --------------------------------------

def _ours(tmp_path: Path) -> tuple[dict, dict]:
    """The tensors and header description of an alexnet_simple .safetensors written by save_safetensors."""
    import json

    from safetensors import safe_open

    from alexnet.inference.weights import describe_model
    from alexnet.models import build_model

    torch.manual_seed(0)
    path = save_safetensors(describe_model(build_model("alexnet_simple"), source="test"), tmp_path / "ours.safetensors")
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["alexnet"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, info


def _write_ours(path: Path, state: dict, info: dict | str) -> Path:
    import json

    save_file(state, str(path), metadata={"alexnet": info if isinstance(info, str) else json.dumps(info),
                                          "format": "pt"})
    return path


HEADER_ROWS = [
    ("num_classes 1e11", "model_args", {"num_classes": 10**11}, "num_classes must be at most 100,000"),
    ("in_channels 2", "model_args", {"in_channels": 2}, "in_channels must be 1 or 3"),
    ("model_args a string", "model_args", "x", "model_args"),
    ("model_name a number", "model_name", 5, "model_name"),
    ("classes 5", "classes", 5, "classes must be a list"),
    ("no classes", "classes", None, "has no 'classes'"),
    ("input_size negative", "input_size", [3, -5, 0], "input_size"),
    ("input_size a string", "input_size", "abc", "input_size"),
    ("mean a string", "mean", "x", "mean"),
    ("std zero", "std", [0, 0, 0], "std must be 1 or 3 numbers from 0.001 to 10"),
    ("std 1e-308", "std", [1e-308] * 3, "std must be"),
    ("mean 1e308", "mean", [1e308] * 3, "mean must be"),
    ("augment", "augment", "fancy", "augment"),
    ("input_norm", "input_norm", 3, "input_norm"),
]


@pytest.mark.parametrize("key,value,words", [r[1:] for r in HEADER_ROWS], ids=[r[0] for r in HEADER_ROWS])
def test_a_bad_safetensors_description_is_one_line(tmp_path: Path, capsys, key, value, words) -> None:
    from alexnet.cli import main
    from alexnet.inference.weights import _file_digest

    state, info = _ours(tmp_path)
    info = {k: v for k, v in info.items() if k != key} if value is None else {**info, key: value}
    info["digest"] = _file_digest(state, info)  # recomputed, as a forger would
    bad = _write_ours(tmp_path / "bad.safetensors", state, info)
    with pytest.raises(UsageError, match=words):
        load_weights(bad)
    image = tmp_path / "x.png"
    torchvision.transforms.functional.to_pil_image(torch.zeros(3, 40, 40)).save(image)
    for argv in (["predict", str(image), "--weights", str(bad)],
                 ["export", str(bad), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err and str(bad) in err, err


def test_a_damaged_safetensors_header_is_one_line(tmp_path: Path) -> None:
    state, _ = _ours(tmp_path)
    for header in ("{not json", "[1, 2]"):
        with pytest.raises(UsageError, match="description in its header is damaged"):
            load_weights(_write_ours(tmp_path / "bad.safetensors", state, header))


def test_safetensors_digest_refuses_a_flipped_byte_and_old_files_still_load(tmp_path: Path) -> None:
    state, info = _ours(tmp_path)
    path = tmp_path / "ours.safetensors"
    assert info["digest"].startswith("sha256:") and load_weights(path)["model_name"] == "alexnet_simple"
    name = max(state, key=lambda k: state[k].numel())
    data = state[name].numpy().tobytes()
    raw = bytearray(path.read_bytes())
    at = raw.find(data[:64])
    raw[at + len(data) // 2] ^= 0x01
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(UsageError, match=f"{flipped}: its contents do not match the digest saved with them"):
        load_weights(flipped)
    # the description is covered too: a class name or the statistics changed in the header
    for change in ({"classes": ["cat", *info["classes"][1:]]}, {"mean": [0.1, 0.1, 0.1]}, {"input_norm": "mean_image"}):
        with pytest.raises(UsageError, match="its contents do not match the digest"):
            load_weights(_write_ours(tmp_path / "changed.safetensors", state, {**info, **change}))
    with pytest.raises(UsageError, match="says it has a digest, and it has none"):  # the digest taken out
        load_weights(_write_ours(tmp_path / "stripped.safetensors", state, {**info, "digest": None}))
    old = _write_ours(tmp_path / "old.safetensors", state,
                      {k: v for k, v in info.items() if k not in ("digest", "digest_covers")})
    assert torch.equal(load_weights(old)["model"][name], state[name])  # written before digests: loads as it did
    # written when the digest covered the tensors only: loads, its tensors still checked
    from alexnet.engine.checks import tensor_digest

    tensors_only = {k: v for k, v in info.items() if k != "digest_covers"} | {"digest": tensor_digest(state)}
    assert load_weights(_write_ours(tmp_path / "v1.safetensors", state, tensors_only))["model_name"] == "alexnet_simple"


def _bad_weights_file(folder: Path, kind: str, suffix: str) -> Path:
    """The real bad thing under a weights file's name: a named pipe with no writer (opening it
    would wait for ever), a link to /dev/zero (reading never ends), a 5 GiB sparse file."""
    path = folder / f"{kind}{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(5 * 2**30)
    return path


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors", ".caffemodel"])
@pytest.mark.parametrize("kind,reason", [("fifo", "not a regular file (a pipe or device)"),
                                         ("devzero", "not a regular file (a pipe or device)"),
                                         ("sparse", "file is too large (5 GiB, over the limit of")])
def test_every_weights_reader_refuses_pipes_devices_and_giants_at_once(tmp_path: Path, suffix: str, kind: str,
                                                                       reason: str, capsys) -> None:
    """predict and export, through every weights reader: one line, exit 2, no hang (an alarm
    fails the test instead of waiting), and the file left as it was."""
    import signal

    from alexnet.cli import main

    path = _bad_weights_file(tmp_path, kind, suffix)
    model = "alexnet2012" if suffix == ".caffemodel" else "alexnet_owt"
    before = os.lstat(path)
    image = tmp_path / "x.png"
    torchvision.utils.save_image(torch.rand(3, 40, 40), image)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"{kind}{suffix}: the reader hung"))
    signal.alarm(60)
    try:
        for argv in (["predict", str(image), "--model", model, "--weights", str(path)],
                     ["export", str(path), "--format", "onnx", "--model", model,
                      "--out", str(tmp_path / "out.onnx")]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert reason in err and len(err.strip().splitlines()) == 1, err
    finally:
        signal.alarm(0)
    assert os.lstat(path).st_mode == before.st_mode and not (tmp_path / "out.onnx").exists()
