"""predict on real photographs and odd image modes, against torchvision's own eval transform.

The reference for every image is torchvision: AlexNet_Weights.IMAGENET1K_V1.transforms()
(resize 256, centre crop 224, normalise) or TenCrop, applied to the same photo, and
torchvision's alexnet with the weights the test saved in torchvision's format.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from alexnet.cli import main
from alexnet.inference.predict import predict
from alexnet.inference.weights import load_weights

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "imagenet-sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"{SAMPLE} is absent")


@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("weights") / "alexnet-owt.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _reference(model: torch.nn.Module, image: Image.Image, tencrop: bool = False) -> torch.Tensor:
    """torchvision's eval transform (or TenCrop of the 256 square) and model -> softmax, K."""
    rgb = image.convert("RGB")
    if not tencrop:
        x = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.transforms()(rgb)[None]  # 1,3,224,224
    else:
        square = v2.functional.center_crop(v2.functional.resize(v2.functional.pil_to_tensor(rgb), 256, antialias=True),
                                           256)
        crops = torch.stack(v2.TenCrop(224)(square))  # 10,3,224,224
        x = v2.functional.normalize(crops.float() / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        return model(x).softmax(dim=1).mean(dim=0)


def _photos(n: int, mode: str) -> list[Path]:
    found = []
    for path in sorted(SAMPLE.glob("*/*")):
        with Image.open(path) as img:
            if img.mode == mode:
                found.append(path)
        if len(found) == n:
            break
    return found


@needs_sample
@pytest.mark.parametrize("tta", ["center", "tencrop"])
def test_real_photos_match_torchvision(tv_weights, tta: str) -> None:
    model, weights = tv_weights
    photos = _photos(3, "RGB") + _photos(2, "L")  # the sample's grayscale photos too
    assert len(photos) == 5
    results = predict(photos, load_weights(weights, "alexnet_owt"), topk=5, tta=tta, batch_size=2)
    for photo, result in zip(photos, results):
        assert result["path"] == str(photo)
        with Image.open(photo) as img:
            reference = _reference(model, img, tencrop=tta == "tencrop")
        top = reference.topk(5)
        assert [e["index"] for e in result["topk"]] == top.indices.tolist()
        np.testing.assert_allclose([e["prob"] for e in result["topk"]], top.values.numpy(), rtol=1e-4, atol=1e-7)
        categories = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
        assert result["topk"][0]["class"] == categories[top.indices[0]]


def test_odd_modes_convert_and_a_bad_file_is_an_entry(tmp_path: Path, tv_weights) -> None:
    model, weights = tv_weights
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8))
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (300, 260), dtype=np.uint8)))
    rgba.save(tmp_path / "rgba.png")
    rgb.convert("P").save(tmp_path / "palette.png")
    rgb.convert("L").save(tmp_path / "grey.png")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a JPEG")
    files = sorted(tmp_path.iterdir())
    results = predict(tmp_path, load_weights(weights, "alexnet_owt"), topk=3)  # a folder expands to its images
    assert [r["path"] for r in results] == [str(f) for f in files]
    by_name = {Path(r["path"]).name: r for r in results}
    assert by_name["broken.jpg"] == {"path": str(tmp_path / "broken.jpg"), "error": "not an image file"}
    expected = {  # what each file should be seen as: RGB, composited on white where transparent
        "cmyk.jpg": Image.open(tmp_path / "cmyk.jpg").convert("RGB"),
        "rgba.png": Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB"),
        "palette.png": Image.open(tmp_path / "palette.png").convert("RGB"),
        "grey.png": Image.open(tmp_path / "grey.png").convert("RGB"),
    }
    for name, image in expected.items():
        top = _reference(model, image).topk(3)
        assert [e["index"] for e in by_name[name]["topk"]] == top.indices.tolist(), name
        np.testing.assert_allclose([e["prob"] for e in by_name[name]["topk"]], top.values.numpy(), rtol=2e-3, atol=1e-6)


def test_python_api_takes_modules_tensors_and_pil(tv_weights) -> None:
    from alexnet.engine.checkpoint import model_from_checkpoint

    model, weights = tv_weights
    ours = model_from_checkpoint(load_weights(weights, "alexnet_owt"))  # carries ImageNet's names and statistics
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    as_tensor = v2.functional.pil_to_tensor(image)
    a, b = predict([image, as_tensor], ours, topk=2)
    assert a["path"] == "<image 0>" and b["path"] == "<image 1>"
    assert a["topk"] == b["topk"]
    assert [e["index"] for e in a["topk"]] == _reference(model, image).topk(2).indices.tolist()
    bad = predict(torch.zeros(3, 8, 8), ours)  # float, not uint8
    assert "uint8" in bad[0]["error"]


def test_cli_json_lines_table_and_exit_code(tmp_path: Path, tv_weights, capsys: pytest.CaptureFixture) -> None:
    _, weights = tv_weights
    Image.fromarray(np.full((64, 80, 3), 200, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"")
    args = [str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), str(tmp_path / "missing.jpg"),
            "--model", "alexnet_owt", "--weights", str(weights), "--topk", "2", "--device", "cpu"]
    assert main(["predict", *args, "--json"]) == 1
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [list(line) for line in lines] == [["path", "topk"], ["path", "error"], ["path", "error"]]
    assert len(lines[0]["topk"]) == 2 and set(lines[0]["topk"][0]) == {"class", "index", "prob"}
    assert lines[1]["error"] == "empty file" and lines[2]["error"] == "missing file"
    assert "2 of 3 input(s) could not be read" in err
    assert main(["predict", str(tmp_path / "a.png"), "--model", "alexnet_owt", "--weights", str(weights), "--device",
                 "cpu"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == str(tmp_path / "a.png") and len(out.splitlines()) == 6


@pytest.mark.parametrize("argv, message", [
    (["x.jpg"], "say which net to use"),
    (["x.jpg", "--model", "alexnet_owt"], "--model needs --weights"),
    (["x.jpg", "--checkpoint", "nowhere", "--weights", "imagenet1k"], "either --checkpoint, or --model"),
    (["x.jpg", "--model", "alexnet_owt", "--weights", "nope.pth"], "no such file"),
    (["x.jpg", "--model", "alexnet_owt", "--weights", "imagenet1k", "--topk", "0"], "argument --topk: must be >= 1"),
])
def test_cli_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_model_carries_its_run_preparation_and_a_bare_model_is_refused(tmp_path: Path) -> None:
    """Issue 15: a model rebuilt from a run classifies as the run does (its class names, its own
    statistics); a model that carries neither is refused in one line, never given ImageNet's."""
    from alexnet.config import make_config
    from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from alexnet.engine.train import fit
    from alexnet.errors import UsageError
    from alexnet.inference.export import export
    from alexnet.models import build_model

    run = tmp_path / "run"
    fit(make_config(data="shapes:train=256,test=64,size=32", epochs=1, batch_size=64, workers=0, tensorboard=False,
                    out=str(run)))
    ckpt = load_checkpoint(run)
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)) for _ in range(6)]
    model = model_from_checkpoint(ckpt)
    assert model.classes == list(ckpt["classes"]) and model.prep["mean"] == ckpt["mean"]
    by_run, by_model = predict(images, run, topk=3), predict(images, model, topk=3)
    assert by_model == by_run and {e["class"] for r in by_run for e in r["topk"]} <= set(ckpt["classes"])
    assert export(model, "safetensors", tmp_path / "net.safetensors")["check"] is not None
    bare = build_model("alexnet_mini", num_classes=len(ckpt["classes"]))
    bare.load_state_dict(ckpt["model"])
    for consumer in (lambda: predict(images, bare), lambda: export(bare, "onnx", tmp_path / "bare.onnx")):
        with pytest.raises(UsageError, match="carries no class names or input preparation: pass its run folder"):
            consumer()
    assert not (tmp_path / "bare.onnx").exists()
