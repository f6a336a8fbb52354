"""Caffe's bvlc_alexnet.caffemodel and imagenet_mean.binaryproto, loaded as alexnet2012.

No Caffe file can be downloaded here, so the files are written in the real format by the small
protobuf writer of caffe_files.py, made from protobuf's encoding rules (protobuf.dev, "Encoding") and the
field numbers of BVLC/caffe's src/caffe/proto/caffe.proto, sharing no code with the reader:
the V1 `layers` form with legacy num/channels/height/width shapes and packed floats (the form of
the published bvlc_alexnet.caffemodel, 2014), and the `layer` form with BlobShape dims, unpacked
floats, double_data and a blob split in two packed runs. The weights are random, the net is the
full one (61M weights, 244 MB a file), written once per module.

The reference is Caffe's forward pass written out here from models/bvlc_alexnet/deploy.prototxt
and the layers' formulas, in float64 on the BGR, 0-255, mean-subtracted crop Caffe feeds it: LRN
as b = a / (1 + alpha/5 * sum of a^2 over 5 adjacent maps of the whole blob)^0.75 (lrn_layer.cpp).
The loaded net must give its logits from the RGB image through our own preparation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from caffe_files import (
    BGR_MEAN,
    NET,
    V1_CONVOLUTION,
    V1_LRN,
    V1_RELU,
    blob,
    caffe_lrn,
    centre,
    key,
    ld,
    new_layer,
    new_model,
    our_logits,
    random_weights,
    v1_layer,
    v1_model,
    varint,
    vint,
    write,
)

from alexnet.cli import main
from alexnet.errors import UsageError
from alexnet.inference.export import export
from alexnet.inference.predict import predict
from alexnet.inference.weights import load_weights, save_safetensors
from alexnet.models import build_model

# --- the reference: Caffe's forward pass, from its layer definitions ------------------------------

def caffe_forward(weights: dict, x_bgr: torch.Tensor, **lrn: float) -> torch.Tensor:
    """deploy.prototxt on N,3,227,227 BGR mean-subtracted 0-255 input, in float64 -> N,1000."""
    p = {name: (torch.from_numpy(w).double(), torch.from_numpy(b).double()) for name, (w, b) in weights.items()}

    def pool(t):  # Caffe's pooling rounds up; 55, 27, 13 divide evenly
        return F.max_pool2d(t, 3, 2, ceil_mode=True)

    x = pool(caffe_lrn(F.relu(F.conv2d(x_bgr.double(), *p["conv1"], stride=4)), **lrn))  # N,96,27,27
    x = pool(caffe_lrn(F.relu(F.conv2d(x, *p["conv2"], padding=2, groups=2)), **lrn))  # N,256,13,13
    x = F.relu(F.conv2d(x, *p["conv3"], padding=1))
    x = F.relu(F.conv2d(x, *p["conv4"], padding=1, groups=2))
    x = pool(F.relu(F.conv2d(x, *p["conv5"], padding=1, groups=2)))  # N,256,6,6
    x = F.relu(F.linear(x.flatten(1), *p["fc6"]))
    x = F.relu(F.linear(x, *p["fc7"]))
    return F.linear(x, *p["fc8"])


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights() -> dict:
    return random_weights()


@pytest.fixture(scope="module")
def mean_bgr() -> torch.Tensor:
    """A 3x256x256 BGR mean in 0-255 whose channel means are Caffe's, varying over the image."""
    yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    ripple = 6 * torch.sin(xx / 20) * torch.cos(yy / 31)  # 3,R,R: so a crop in the wrong place shows
    return torch.stack([m + ripple * (i + 1) for i, m in enumerate(BGR_MEAN)]).float()


@pytest.fixture(scope="module")
def files(tmp_path_factory, weights, mean_bgr) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("caffe")
    v1 = write(root / "with_mean" / "bvlc_alexnet.caffemodel", v1_model(weights))
    mean = write(root / "with_mean" / "imagenet_mean.binaryproto",
                 blob(mean_bgr.numpy(), (1, 3, 256, 256), legacy=True))
    (root / "alone").mkdir()
    alone = root / "alone" / "bvlc_alexnet.caffemodel"
    os.symlink(v1, alone)  # the same file, with no mean file beside it
    new = write(root / "new" / "bvlc_alexnet.caffemodel", new_model(weights))
    return {"v1": v1, "mean": mean, "alone": alone, "new": new, "root": root}


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """An RGB photo stand-in: uint8 3x256x256, smooth colour fields and noise."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 256), indexing="ij")
    base = torch.stack([200 * xx, 180 * yy, 120 * (1 - xx * yy)]) + 30 * torch.rand(3, 256, 256, generator=g)
    return base.clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def photo(files, image) -> Path:
    from PIL import Image

    path = files["root"] / "photo.png"
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    return path


# --- loading the good files ----------------------------------------------------------------------

@pytest.mark.parametrize("form", ["alone", "new"])
def test_state_equals_the_caffe_weights_with_conv1_in_rgb(files, weights, form, capsys):
    ckpt = load_weights(files[form])
    state = ckpt["model"]
    assert ckpt["model_name"] == "alexnet2012" and ckpt["model_args"] == {"lrn_k": 1.0, "lrn_per_tower": False}
    for name, _shape, _ in NET:
        prefix = ("features." if name.startswith("conv") else "classifier.") + name
        w, b = (torch.from_numpy(a) for a in weights[name])
        torch.testing.assert_close(state[f"{prefix}.weight"], w.flip(1) if name == "conv1" else w, rtol=0, atol=0)
        torch.testing.assert_close(state[f"{prefix}.bias"], b, rtol=0, atol=0)
    assert state["features.conv1.weight"][:, 0].equal(torch.from_numpy(weights["conv1"][0][:, 2]))  # R is Caffe's third
    assert ckpt["classes"][0] == "tench" and len(ckpt["classes"]) == 1000
    assert ckpt["input_size"] == [3, 227, 227] and ckpt["augment"] == "paper"
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "per-channel ImageNet mean" in err  # no mean file beside it


def test_logits_equal_caffes_forward_with_its_mean_image(files, weights, mean_bgr, image, capsys):
    ckpt = load_weights(files["v1"], "alexnet2012")
    assert "mean image of" in capsys.readouterr().err and ckpt["input_norm"] == "mean_image"
    torch.testing.assert_close(ckpt["mean_image"], mean_bgr.flip(0))  # kept in RGB order
    x_bgr = centre(image.double().flip(0) - mean_bgr.double())[None]  # 1,3,227,227 as Caffe's data layer makes it
    reference = caffe_forward(weights, x_bgr)[0]
    ours = our_logits(ckpt, image)
    error = (ours - reference).abs().max().item()
    scale = reference.abs().max().item()
    print(f"max |logit - Caffe's| = {error:.3g} of logits up to {scale:.3g}")
    assert error <= 1e-5 * scale
    # the test can fail: the paper's LRN (k=2, per tower), or the image as BGR, give other logits
    assert (our_logits(ckpt, image, lrn_k=2.0) - reference).abs().max() > 1000 * error
    assert (our_logits(ckpt, image, lrn_k=1.0) - reference).abs().max() > 10 * error  # per tower: the boundary maps
    assert (our_logits(ckpt, image.flip(0)) - reference).abs().max() > 1000 * error
    # predict, end to end, picks Caffe's class with Caffe's probability
    top = predict(image, ckpt, topk=1)[0]["topk"][0]
    assert top["index"] == int(reference.argmax())
    # |d softmax_i| <= 2 p_i max|d logit|, so the probabilities agree as closely as the logits do
    assert top["prob"] == pytest.approx(float(reference.softmax(0).max()), abs=2 * error)


@pytest.mark.parametrize("form", ["alone", "new"])
def test_logits_equal_caffes_forward_with_its_channel_mean(files, weights, image, form):
    ckpt = load_weights(files[form], None)
    assert ckpt["input_norm"] == "channel" and ckpt["mean_image"] is None
    mean = torch.tensor(BGR_MEAN, dtype=torch.float64)[:, None, None]
    reference = caffe_forward(weights, centre(image.double().flip(0) - mean)[None])[0]
    error = (our_logits(ckpt, image) - reference).abs().max().item()
    assert error <= 1e-5 * reference.abs().max().item()


def test_exports_rebuild_the_same_net(files, image, tmp_path, capsys):
    """The model args travel: safetensors reads back as the same net, ONNX (LRN traced as torch's
    formula) matches PyTorch in onnxruntime within export's own tolerance."""
    ckpt = load_weights(files["v1"])
    back = load_weights(save_safetensors(ckpt, tmp_path / "bvlc.safetensors"))
    assert back["model_args"] == ckpt["model_args"] and back["input_norm"] == "mean_image"
    torch.testing.assert_close(our_logits(back, image), our_logits(ckpt, image), rtol=0, atol=0)
    pytest.importorskip("onnxruntime")
    result = export(ckpt, "onnx", tmp_path / "bvlc.onnx")
    assert result["check"]["max_abs_diff"] is not None and result["check"]["max_abs_diff"] <= 1e-4, result["check"]


def test_the_cli_predicts_and_draws_figure_3(files, photo, tmp_path, capsys):
    assert main(["predict", str(photo), "--model", "alexnet2012", "--weights", str(files["v1"]), "--topk", "2"]) == 0
    out = capsys.readouterr()
    assert "imagenet_mean.binaryproto" in out.err and str(photo) in out.out
    picture = tmp_path / "filters.png"
    assert main(["viz", "filters", "--weights", str(files["alone"]), "--out", str(picture)]) == 0
    assert picture.stat().st_size > 10_000 and f"wrote {picture}" in capsys.readouterr().out


# --- bad files: one line each ------------------------------------------------------------------

def one_line(path: Path, words: str, model: str | None = None) -> str:
    with pytest.raises(UsageError) as info:
        load_weights(path, model)
    message = str(info.value)
    # the path holds the test's name
    assert "\n" not in message and words in message.replace(str(path), "FILE"), message
    return message


@pytest.fixture(scope="module")
def v1_bytes(files) -> bytes:
    return files["v1"].read_bytes()


@pytest.mark.parametrize("keep", [1, 2, 10, 30, 1_000, 100_000, "half", "all but 1"])
def test_a_truncated_file_is_one_line(files, v1_bytes, keep, tmp_path):
    n = {"half": len(v1_bytes) // 2, "all but 1": len(v1_bytes) - 1}.get(keep, keep)
    bad = write(tmp_path / "cut.caffemodel", v1_bytes[:n])
    one_line(bad, "truncated")


@pytest.mark.parametrize("name,wrong", [
    ("conv1", (96, 1, 11, 11)), ("conv2", (256, 96, 5, 5)), ("conv3", (384, 128, 3, 3)), ("conv4", (384, 384, 3, 3)),
    ("conv5", (256, 384, 3, 3)), ("fc6", (16, 9216)), ("fc7", (16, 4096)), ("fc8", (1000, 16))])
def test_a_wrong_weight_shape_names_the_layer(weights, name, wrong, tmp_path):
    w = np.zeros(wrong, np.float32)
    b = weights[name][1]
    bad = write(tmp_path / "bad.caffemodel", v1_model({name: (w, b)}, [name]))
    one_line(bad,
             f"layer {name}'s weight has shape {(1,) * (4 - len(wrong)) + wrong}, alexnet2012 (bvlc_alexnet) wants "
             f"{dict((n, s) for n, s, _ in NET)[name]}")


@pytest.mark.parametrize("name,wrong", [("conv1", (48,)), ("conv3", (385,)), ("conv5", (2, 128)), ("fc8", (999,))])
def test_a_wrong_bias_shape_names_the_layer(weights, name, wrong, tmp_path):
    w = weights[name][0]
    bad = write(tmp_path / "bad.caffemodel", v1_model({name: (w, np.zeros(wrong, np.float32))}, [name]))
    one_line(bad, f"layer {name}'s bias has shape")


@pytest.mark.parametrize("names,missing", [(["conv1"], "conv2"), (["conv1", "conv2", "conv3", "conv4", "conv5"], "fc6"),
                                           (["conv1", "conv2", "conv4", "conv5"], "conv3")])
def test_a_missing_layer_is_named(weights, names, missing, tmp_path):
    one_line(write(tmp_path / "part.caffemodel", v1_model(weights, names)), f"has no layer {missing}")


W1, B1 = np.zeros((96, 3, 11, 11), np.float32), np.zeros(96, np.float32)  # conv1's shapes
CONV1 = [blob(W1, W1.shape, legacy=True), blob(B1, B1.shape, legacy=True)]
PROTOTXT = 'name: "AlexNet"\nlayer {\n  name: "data"\n  type: "Input"\n  top: "data"\n}\n'


@pytest.mark.parametrize("what,data,words", [
    ("empty", b"", "the file is empty"),
    ("a prototxt", PROTOTXT.encode(), "it is a text file"),
    ("a one-word text", b"hello", "it is a text file"),
    ("a PNG", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "cannot read Caffe model"),
    ("random bytes", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
     "cannot read Caffe model"),
    ("wire type 6", ld(2, ld(4, "conv1") + key(9, 6) + b"\x00"), "unknown wire type 6"),
    ("wire type 3 (a group)", key(2, 3) + b"\x00", "unknown wire type 3"),
    ("wire type 7 at the top", key(1, 7), "unknown wire type 7"),
    ("a name as a varint", ld(2, vint(4, 5)), "field 4 at byte 2 has wire type 0"),
    ("an endless varint", ld(2, vint(5, 1)[:1] + b"\xff" * 12), "runs over 10 bytes"),
    ("no weights", ld(1, "AlexNet") + v1_layer("relu1", V1_RELU, []), "no layer holds weights"),
    ("too few values",
     v1_layer("conv1", V1_CONVOLUTION, [vint(1, 96) + vint(2, 3) + vint(3, 11) + vint(4, 11) + ld(5, b"\0" * 40)]),
     "holds 10 values, its shape (96, 3, 11, 11) says 34,848"),
    ("a ragged packed run", v1_layer("conv1", V1_CONVOLUTION, [ld(5, b"\0" * 6)]),
     "6 bytes are not whole 4-byte numbers"),
    ("a negative dimension", new_layer("conv1", "Convolution", [ld(7, ld(1, varint(-3)))]), "negative dimension"),
    ("V0 layers", ld(2, ld(1, ld(1, "conv1") + ld(2, "conv"))), "Caffe's V0 format"),
    ("both forms", v1_layer("a", V1_RELU, []) + new_layer("b", "ReLU", []), "both 'layer' and 'layers'"),
    ("a name that is not UTF-8", ld(2, ld(4, b"conv\xff")), "is not UTF-8"),
    # Blob::ShapeEquals: a bias of 96 is (1, 1, 1, 96); (1, 96, 1, 1) holds as many values but is refused
    ("a legacy shape padded wrongly",
     v1_layer("conv1", V1_CONVOLUTION, [CONV1[0], blob(B1, (1, 96, 1, 1), legacy=True)]),
     "layer conv1's bias has shape (1, 96, 1, 1)"),
    ("a renamed layer", v1_layer("conv1_caffenet", V1_CONVOLUTION, CONV1),
     "has no layer conv1 (its layers with weights: conv1_caffenet)"),
    ("no bias", v1_layer("conv1", V1_CONVOLUTION, CONV1[:1]), "layer conv1 holds 1 blobs, not its weights and bias"),
    ("a V1 type", v1_layer("conv1", V1_LRN, CONV1), "layer conv1 is a LRN layer, bvlc_alexnet's is Convolution"),
    ("a type", new_layer("conv1", "Deconvolution", [blob(W1, W1.shape, legacy=False)] * 2),
     "layer conv1 is a Deconvolution layer"),
])
def test_a_file_that_is_not_a_caffemodel_is_one_line(what, data, words, tmp_path):
    one_line(write(tmp_path / "bad.caffemodel", data), words)


def test_the_model_must_be_alexnet2012(files):
    one_line(files["alone"], "loads as alexnet2012 (Caffe's bvlc_alexnet), not as alexnet_owt", model="alexnet_owt")
    with pytest.raises(UsageError, match="a mean file"):
        load_weights(files["mean"])


@pytest.mark.parametrize("what,data,words", [
    ("too small", blob(np.zeros((3, 10, 10)), (1, 3, 10, 10), legacy=True), "is not a 3xRxR BGR image"),
    ("grey", blob(np.zeros((1, 256, 256)), (1, 1, 256, 256), legacy=True), "is not a 3xRxR BGR image"),
    ("truncated", blob(np.zeros((3, 256, 256)), (1, 3, 256, 256), legacy=True)[:-100], "truncated"),
    ("not finite", blob(np.full((3, 256, 256), np.inf), (3, 256, 256), legacy=False), "not finite"),
])
def test_a_bad_mean_file_beside_the_model_is_one_line(files, what, data, words, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink(files["v1"], folder / "bvlc_alexnet.caffemodel")
    write(folder / "imagenet_mean.binaryproto", data)
    message = one_line(folder / "bvlc_alexnet.caffemodel", words)
    assert "imagenet_mean.binaryproto" in message


@pytest.mark.parametrize("what,data,words", [
    ("truncated", "cut", "truncated"), ("a wrong shape", "shape", "layer conv2's weight has shape"),
    ("a text file", PROTOTXT.encode(), "text file"), ("empty", b"", "empty"),
    ("missing layer", "missing", "has no layer fc6"),
])
def test_the_cli_says_it_in_one_line_exit_2(weights, v1_bytes, what, data, words, tmp_path, photo, capsys):
    if data == "cut":
        data = v1_bytes[:5_000]
    elif data == "shape":
        data = v1_model({"conv2": (np.zeros((256, 96, 5, 5), np.float32), weights["conv2"][1])}, ["conv2"])
    elif data == "missing":
        data = v1_model(weights, ["conv1", "conv2", "conv3", "conv4", "conv5"])
    bad = write(tmp_path / "bad.caffemodel", data)
    for argv in (["predict", str(photo), "--model", "alexnet2012", "--weights", str(bad)],
                 ["viz", "filters", "--weights", str(bad), "--out", str(tmp_path / "f.png")],
                 ["export", str(bad), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert words in err.replace(str(bad), "FILE"), err
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "x.onnx").exists()


def test_model_args_are_checked():
    for args, words in (({"lrn_k": 0}, "lrn_k must be a finite number > 0"), ({"lrn_k": float("nan")}, "lrn_k"),
                        ({"lrn_k": True}, "lrn_k"), ({"lrn_per_tower": "no"}, "lrn_per_tower must be true or false")):
        with pytest.raises(UsageError, match=words):
            build_model("alexnet2012", **args)
    default, caffe = build_model("alexnet2012"), build_model("alexnet2012", lrn_k=1.0, lrn_per_tower=False)
    assert (default.features.lrn1.k, default.features.lrn1.towers) == (2.0, 2)
    assert (caffe.features.lrn1.k, caffe.features.lrn1.towers, caffe.features.lrn2.towers) == (1.0, 1, 1)


# --- field bombs: tiny repeated fields cost a Python object each, so their number is bounded ---

MiB = 2**20
BOMBS = {  # 20 MiB of one tiny field, over and over, where the reader would keep or loop over each
    "empty layers": lambda n: ld(100, b"") * (n // 3),
    "empty V1 layers": lambda n: ld(2, b"") * (n // 2),
    "unknown fields": lambda n: vint(9, 0) * (n // 2),
    "a layer of empty blobs": lambda n: ld(100, ld(1, "conv1") + ld(2, "Convolution") + ld(7, b"") * (n // 2 - 10)),
    "a blob of dims": lambda n: ld(100, ld(1, "conv1") + ld(7, ld(7, vint(1, 1) * (n // 2 - 20)))),
    "floats broken into runs of one": lambda n: ld(100, ld(1, "conv1") + ld(7, (key(5, 5) + bytes(4) + vint(9, 0))
                                                                                * (n // 7 - 10))),
}


def _peak_while(work) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_field_bomb_is_refused_in_one_line_before_it_takes_memory(bomb, tmp_path):
    """A 20 MiB .caffemodel of tiny repeated fields took +1.26 GB; the reader now stops at MAX_FIELDS
    fields, holding little more than the file."""
    from alexnet.inference.caffe import read_caffemodel
    from alexnet.inference.caffe_proto import MAX_FIELDS

    data = BOMBS[bomb](20 * MiB)
    path = write(tmp_path / "bomb.caffemodel", data)
    del data
    words = f"more than {MAX_FIELDS:,} fields"

    def read():
        with pytest.raises(UsageError, match=words) as info:
            read_caffemodel(path)
        assert "\n" not in str(info.value)

    assert _peak_while(read) < 2 * path.stat().st_size + 16 * MiB


@pytest.mark.parametrize("what, data, words", [
    ("layers", ld(100, b"") * 10_001, "10,001 layers, more than 10,000"),
    ("blobs", ld(100, ld(1, "conv1") + ld(7, b"") * 65), "layer conv1 holds 65 blobs, more than 64"),
    ("axes", ld(100, ld(1, "conv1") + ld(7, ld(7, vint(1, 1) * 33))), "more than 32 axes"),
])
def test_layers_blobs_and_axes_are_bounded_by_count(what, data, words, tmp_path):
    one_line(write(tmp_path / "many.caffemodel", data), words, "alexnet2012")


@pytest.mark.parametrize("bomb", ["unknown fields", "floats broken into runs of one", "a blob of dims"])
def test_the_mean_file_beside_a_model_is_bounded_the_same(files, bomb, tmp_path, capsys):
    """The reader of imagenet_mean.binaryproto (one BlobProto), found beside the .caffemodel."""
    inner = BOMBS[bomb](20 * MiB)
    blob_bytes = {"unknown fields": inner, "floats broken into runs of one": (key(5, 5) + bytes(4) + vint(9, 0))
                  * (20 * MiB // 7), "a blob of dims": ld(7, vint(1, 1) * (20 * MiB // 2))}[bomb]
    (tmp_path / "bvlc_alexnet.caffemodel").symlink_to(files["v1"])
    write(tmp_path / "imagenet_mean.binaryproto", blob_bytes)
    photo = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (300, 256), (120, 90, 60)).save(photo)
    model = tmp_path / "bvlc_alexnet.caffemodel"
    code = main(["predict", str(photo), "--model", "alexnet2012", "--weights", str(model)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "imagenet_mean.binaryproto" in err, err
    assert "fields" in err or "axes" in err, err


# --- alexnet convert: the same net as a folder in the Hub's layout, with its card --------------------

def test_convert_writes_the_same_net_with_its_card(files, tmp_path, capsys):
    import yaml

    from alexnet.cli import main

    out = tmp_path / "bvlc"
    assert main(["convert", str(files["v1"]), "--to-folder", str(out), "--repo", "someone/bvlc_alexnet"]) == 0
    assert "imagenet_mean.binaryproto" in capsys.readouterr().err  # the mean file beside it, as --weights uses it
    ours, theirs = load_weights(out), load_weights(files["v1"])
    assert ours["model"].keys() == theirs["model"].keys()
    assert all(torch.equal(ours["model"][k], v) for k, v in theirs["model"].items())
    assert torch.equal(ours["mean_image"], theirs["mean_image"]) and ours["input_norm"] == "mean_image"
    assert ours["classes"] == theirs["classes"] and ours["input_size"] == [3, 227, 227]
    header, body = (out / "README.md").read_text()[4:].split("\n---\n", 1)
    meta = yaml.safe_load(header)  # random weights: not BVLC's file, so no claim of its source or license
    assert meta["license"] == "other" and meta["license_name"] == "unknown" and "datasets" not in meta
    assert "alexnet2012" in meta["tags"] and "bvlc_alexnet.caffemodel" in body and "not BVLC's bvlc_alexnet" in body
    assert "unrestricted" not in body and "57.1%" not in body
    assert "--weights hf-hub:someone/bvlc_alexnet" in body
    from alexnet.inference.card import caffe_card

    bvlc = caffe_card(ours, "bvlc_alexnet.caffemodel", bvlc=True, repo="someone/bvlc_alexnet")  # the zoo's sha1
    meta = yaml.safe_load(bvlc[4:].split("\n---\n", 1)[0])
    assert meta["datasets"] == ["ILSVRC/imagenet-1k"] and meta["license_name"] == "bvlc-unrestricted"
    assert meta["license_link"].endswith("models/bvlc_alexnet/readme.md") and "unrestricted use" in bvlc
    alone = tmp_path / "alone"
    assert main(["convert", str(files["alone"]), "--to-folder", str(alone)]) == 0  # Caffe's channel mean
    assert load_weights(alone)["input_norm"] == "channel" and f"--weights {alone}" in (alone / "README.md").read_text()
    mean = tmp_path / "given"
    assert main(["convert", str(files["alone"]), "--mean", str(files["mean"]), "--to-folder", str(mean)]) == 0
    assert torch.equal(load_weights(mean)["mean_image"], theirs["mean_image"])


@pytest.mark.parametrize("case", ["no such model", "a mean that is not one", "a text file", "folder not empty",
                                  "odd repo"])
def test_convert_refuses_in_one_line(files, tmp_path, case, capsys):
    from alexnet.cli import main

    out, model = tmp_path / "out", str(files["alone"])
    extra: list[str] = []
    if case == "no such model":
        model = str(tmp_path / "missing.caffemodel")
    elif case == "a mean that is not one":
        extra = ["--mean", str(write(tmp_path / "m.binaryproto", b"\x08\x01"))]
    elif case == "a text file":
        model = str(write(tmp_path / "deploy.caffemodel", b'name: "AlexNet"\nlayer {\n'))
    elif case == "folder not empty":
        out.mkdir()
        (out / "keep.txt").write_text("keep")
    else:
        extra = ["--repo", "some one/x"]
    before = sorted(tmp_path.rglob("*"))
    assert main(["convert", model, "--to-folder", str(out), *extra]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before
