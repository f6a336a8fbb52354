"""The Hub's layout and ids: a folder of model.safetensors + config.json, and `hf-hub:ORG/NAME[@REV]`
read offline from a Hugging Face cache laid out as huggingface_hub lays it out
(models--ORG--NAME/{blobs,refs,snapshots}: huggingface_hub's file_download.py and its cache docs).

The reference for "the same net" is the run's own checkpoint: logits bit-identical on real photos.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.errors import UsageError
from alexnet.inference.hub import parse_hub_id
from alexnet.inference.weights import load_weights, save_hub_folder

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "imagenet-sample"


def logits(ckpt: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    net = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        return net(images)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Real photos as the 32 px net sees them (any fixed input tests bit-identity; real ones are the case)."""
    if not SAMPLE.is_dir():
        pytest.skip(f"needs the ImageNet sample photographs in {SAMPLE}")
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor, resize

    files = sorted(SAMPLE.glob("*/*.JPEG"))[:16]
    return torch.stack([resize(pil_to_tensor(Image.open(f).convert("RGB")), [32, 32], antialias=True)
                        for f in files]).float().div(255).sub(0.5).div(0.25)  # N,3,32,32


@pytest.fixture()
def folder(trained_shapes: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "mini"
    out.mkdir()
    return save_hub_folder(trained_shapes, out)


def test_a_hub_folder_loads_back_bit_identical(trained_shapes, folder, photos) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    ckpt = load_weights(folder)
    assert torch.equal(logits(ckpt, photos), logits(trained_shapes, photos))
    for key in ("model_name", "model_args", "classes", "input_size", "mean", "std", "augment", "input_norm"):
        assert ckpt[key] == trained_shapes[key], key
    config = json.loads((folder / "config.json").read_text())  # plain JSON a user or another tool can read
    assert config["model_name"] == "alexnet_mini" and len(config["classes"]) == 10
    assert load_weights(folder / "model.safetensors")["classes"] == trained_shapes["classes"]  # alone, too


def test_hf_hub_ids_load_offline_from_the_cache(trained_shapes, folder, photos, offline) -> None:
    offline.put("someone/alexnet-mini", folder)
    want = logits(trained_shapes, photos)
    for name in ("hf-hub:someone/alexnet-mini", f"hf-hub:someone/alexnet-mini@{offline.commit}",
                 "hf-hub:someone/alexnet-mini@main"):
        ckpt = load_weights(name)
        assert ckpt["path"] == name
        assert torch.equal(logits(ckpt, photos), want), name


@pytest.mark.parametrize(("name", "words"), [
    ("hf-hub:someone", "hf-hub:ORG/NAME"),
    ("hf-hub:some one/x", "hf-hub:ORG/NAME"),
    ("hf-hub:../etc/passwd", "hf-hub:ORG/NAME"),
    ("hf-hub:a/b/c", "hf-hub:ORG/NAME"),
    ("hf-hub:a/b\x1b[31m", "hf-hub:ORG/NAME"),
    ("hf-hub:a/b--c", "hf-hub:ORG/NAME"),
    ("hf-hub:a--b/c", "hf-hub:ORG/NAME"),
    ("hf-hub:a/b@-x", "revision"),
    ("hf-hub:a/b@x y", "revision"),
    ("hf-hub:a/b@../../x", "revision"),
])
def test_odd_hub_ids_are_one_line(name: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as e:
        parse_hub_id(name)
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_what_is_not_in_the_cache_is_one_line(folder, offline) -> None:
    with pytest.raises(UsageError, match="not in the Hugging Face cache"):
        load_weights("hf-hub:someone/nothing-here")
    offline.put("someone/mini", folder)
    with pytest.raises(UsageError, match="not in the Hugging Face cache"):
        load_weights("hf-hub:someone/mini@v2")  # a revision never downloaded
    (folder / "config.json").unlink()
    offline.put("someone/half", folder)
    with pytest.raises(UsageError, match=r"has no config\.json"):
        load_weights("hf-hub:someone/half")


def lie(config: dict[str, Any], key: str) -> None:
    """Change one field of config.json as a careless edit or a wrong copy would."""
    value = {"model_name": "alexnet_owt", "classes": [*config["classes"][:-1], "cat"],
             "mean": [0.0, 0.0, 0.0], "input_size": [3, 64, 64], "digest": "sha256:" + "0" * 64}[key]
    config[key] = value


@pytest.mark.parametrize("key", ["model_name", "classes", "mean", "input_size", "digest"])
def test_a_config_json_that_lies_is_one_line(folder, key: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    lie(config, key)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match=r"config\.json and model\.safetensors do not match") as e:
        load_weights(folder)
    assert "\n" not in str(e.value)


def test_config_json_with_another_nets_weights_is_one_line(folder, tmp_path) -> None:
    from alexnet.inference.weights import describe_model
    from alexnet.models import build_model

    other = tmp_path / "other"
    other.mkdir()
    save_hub_folder(describe_model(build_model("alexnet_mini", num_classes=3), source="x"), other)
    shutil.copyfile(other / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(UsageError, match="do not match"):
        load_weights(folder)


@pytest.mark.parametrize("damage", ["no weights", "no config", "config not json", "config a list", "config empty",
                                    "weights truncated", "config a fifo"])
def test_a_broken_hub_folder_is_one_line(folder, damage: str) -> None:
    config, weights = folder / "config.json", folder / "model.safetensors"
    if damage == "no weights":
        weights.unlink()
        words = "no model.safetensors"
    elif damage == "no config":
        config.unlink()
        words = "no config.json"
    elif damage == "config not json":
        config.write_text("{model_name: alexnet_mini")
        words = "cannot read config.json"
    elif damage == "config a list":
        config.write_text("[1, 2]")
        words = "not an alexnet description"
    elif damage == "config empty":
        config.write_text("")
        words = "cannot read config.json"
    elif damage == "weights truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
        words = "cannot read"
    else:
        config.unlink()
        os.mkfifo(config)
        words = "cannot read config.json"
    with pytest.raises(UsageError, match=words) as e:
        load_weights(folder)
    assert "\n" not in str(e.value)


def test_export_writes_hub_weights_here_under_the_repos_name(folder, offline, tmp_path, monkeypatch) -> None:
    from alexnet.inference.export import export

    offline.put("someone/alexnet-mini", folder)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = export("hf-hub:someone/alexnet-mini", "safetensors")
    assert result["path"] == "alexnet-mini.safetensors" and (here / "alexnet-mini.safetensors").is_file()


@pytest.mark.parametrize("covers", ["absent", "tensors", "a list"])
def test_a_hub_folder_must_carry_its_digest(folder, covers: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    if covers == "absent":
        del config["digest"], config["digest_covers"]
    else:
        config["digest_covers"] = "tensors" if covers == "tensors" else ["all"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="has no digest"):
        load_weights(folder)


def test_export_of_the_current_folder_is_named_after_it(folder, monkeypatch) -> None:
    from alexnet.inference.export import export

    monkeypatch.chdir(folder)
    assert Path(export(".", "safetensors")["path"]) == folder.parent / "mini.safetensors"


@pytest.mark.parametrize("change", ["mean image named, none held", "two classes alike", "an empty class name"])
def test_a_description_that_cannot_be_used_is_one_line(trained_shapes, tmp_path, change: str) -> None:
    """Written whole and with a valid digest, yet unusable: refused in one line rather than guessed at."""
    ckpt = dict(trained_shapes)
    if change == "mean image named, none held":
        ckpt.update(input_norm="mean_image", mean_image=None)
        words = "holds none"
    else:
        classes = list(ckpt["classes"])
        classes[1] = classes[0] if change == "two classes alike" else " "
        ckpt["classes"] = classes
        words = "distinct and not empty"
    folder = tmp_path / "odd"
    folder.mkdir()
    save_hub_folder(ckpt, folder)
    with pytest.raises(UsageError, match=words) as e:
        load_weights(folder)
    assert "\n" not in str(e.value)
