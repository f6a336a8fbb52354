"""Attribution maps against references written here with plain autograd and a by-hand occlusion
loop (not captum), on alexnet_mini, alexnet_owt and the paper's two-tower alexnet2012; layer
names, classes and methods that do not exist are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import alexnet
from alexnet.errors import UsageError
from alexnet.inference.explain import attribute, explanation, grad_cam_layer, occlusion_window
from alexnet.inference.inspect import net_inputs, net_view
from alexnet.inference.weights import describe_model
from alexnet.models import build_model

HOOKED = {"alexnet_mini": "relu5", "alexnet_owt": "11", "alexnet2012": "relu5"}  # conv5's rectified maps


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A photograph-sized picture with structure: smooth colour ramps and a bright disc."""
    yy, xx = np.mgrid[0:300, 0:400]
    rgb = np.stack([xx * 255 // 400, yy * 255 // 300, ((xx - 250) ** 2 + (yy - 120) ** 2 < 60**2) * 255], axis=2)
    return Image.fromarray(rgb.astype(np.uint8))


def _untrained(name: str) -> dict:
    torch.manual_seed(0)
    return describe_model(build_model(name), source=f"{name} (untrained)")


@pytest.fixture(scope="module")
def nets(trained_shapes: dict) -> dict[str, dict]:
    return {"alexnet_mini": trained_shapes, "alexnet_owt": _untrained("alexnet_owt"),
            "alexnet2012": _untrained("alexnet2012")}


def _batch(ckpt: dict, image: Image.Image) -> tuple[torch.nn.Module, torch.Tensor]:
    net = alexnet.model_from_checkpoint(ckpt).eval()
    return net, net_inputs(ckpt, [net_view(ckpt, image)])  # 1,C,S,S


def _grad_cam_by_hand(net: torch.nn.Module, x: torch.Tensor, k: int, module: str, channels: slice) -> torch.Tensor:
    """Selvaraju et al.'s eq. 1-2 with autograd: alpha_c = mean gradient of the logit over each map."""
    got = {}
    handle = dict(net.features.named_children())[module].register_forward_hook(
        lambda _m, _i, out: got.setdefault("a", out))
    try:
        logit = net(x)[0, k]
    finally:
        handle.remove()
    a = got["a"]  # 1,C,h,w
    (grad,) = torch.autograd.grad(logit, a)
    alpha = grad.mean(dim=(2, 3), keepdim=True)  # 1,C,1,1
    cam = (alpha * a)[:, channels].sum(dim=1, keepdim=True).relu()  # 1,1,h,w
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0].detach()


@pytest.mark.parametrize("name", list(HOOKED))
def test_grad_cam_of_conv5_is_the_papers_formula(nets, photo, name):
    net, x = _batch(nets[name], photo)
    k = int(net(x).argmax())
    got = attribute(net, x, [k], method="gradcam")[0]
    want = _grad_cam_by_hand(net, x, k, HOOKED[name], slice(None))
    assert got.shape == x.shape[-2:]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))


@pytest.mark.parametrize("tower", [1, 2])
def test_each_tower_of_alexnet2012_is_its_own_half_of_the_maps(nets, photo, tower):
    net, x = _batch(nets["alexnet2012"], photo)
    half = slice(0, 128) if tower == 1 else slice(128, 256)
    got = attribute(net, x, [3], method="gradcam", layer=f"conv5.tower{tower}", towers=2)[0]
    torch.testing.assert_close(got, _grad_cam_by_hand(net, x, 3, "relu5", half), rtol=1e-4, atol=1e-8)
    # conv2's towers: 128 maps each, hooked at relu2
    got = attribute(net, x, [3], method="gradcam", layer=f"conv2.tower{tower}", towers=2)[0]
    torch.testing.assert_close(got, _grad_cam_by_hand(net, x, 3, "relu2", half), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("name", list(HOOKED))
def test_saliency_is_the_largest_absolute_input_gradient(nets, photo, name):
    net, x = _batch(nets[name], photo)
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[0, 7], x)
    got = attribute(net, x.detach(), [7], method="saliency")[0]
    torch.testing.assert_close(got, grad.abs().amax(dim=1)[0], rtol=1e-5, atol=0)


def test_occlusion_is_the_mean_probability_drop_under_a_grey_square(trained_shapes, photo):
    net, x = _batch(trained_shapes, photo)
    s = x.shape[-1]
    window, stride = occlusion_window(s)
    k = 2
    with torch.no_grad():
        p0 = net(x).softmax(dim=1)[0, k]
        total, count = torch.zeros(s, s), torch.zeros(s, s)
        for top in range(0, s - window + 1, stride):
            for left in range(0, s - window + 1, stride):
                grey = x.clone()
                grey[..., top:top + window, left:left + window] = 0.0  # the training mean, normalised
                total[top:top + window, left:left + window] += p0 - net(grey).softmax(dim=1)[0, k]
                count[top:top + window, left:left + window] += 1
    assert bool((count > 0).all()), "the squares leave pixels uncovered"
    torch.testing.assert_close(attribute(net, x, [k], method="occlusion")[0], total / count, rtol=1e-4, atol=1e-6)


def test_the_occlusion_window_tiles_every_view_size():
    for size in range(4, 600):
        window, stride = occlusion_window(size)
        assert 2 <= window <= size and stride >= 1 and (size - window) % stride == 0, size
        assert abs(window - size / 7) <= stride + 1, size
    assert occlusion_window(227) == (35, 16) and occlusion_window(224) == (32, 16) and occlusion_window(32) == (6, 2)


@pytest.mark.parametrize("name", list(HOOKED))
@pytest.mark.parametrize("method", ["gradcam", "occlusion", "saliency"])
def test_explain_gives_a_finite_map_over_the_view_for_every_method(nets, photo, name, method):
    ckpt = nets[name]
    heat = alexnet.explain(photo, ckpt, method=method)
    size = ckpt["input_size"][1]
    assert isinstance(heat, np.ndarray) and heat.shape == (size, size) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and float(np.abs(heat).max()) > 0


def test_explanation_names_the_top1_class_and_its_probability(trained_shapes, photo):
    e = explanation(photo, trained_shapes)
    probs = alexnet.predict(photo, trained_shapes, topk=1)[0]["topk"][0]
    assert (e.label, e.target, e.layer) == (probs["class"], probs["index"], "conv5")
    assert e.prob == pytest.approx(probs["prob"], rel=1e-5)
    assert e.label in e.caption and "Grad-CAM" in e.caption
    other = explanation(photo, trained_shapes, target=trained_shapes["classes"][0], method="saliency")
    assert other.target == 0 and other.layer is None


def test_a_run_folder_a_path_and_a_model_object_give_the_same_map(tmp_path, trained_shapes, photo):
    path = tmp_path / "net.pt"
    torch.save({k: v for k, v in trained_shapes.items() if k != "path"}, path)
    from_file = alexnet.explain(photo, alexnet.load_checkpoint(path), method="saliency")
    from_model = alexnet.explain(photo, alexnet.model_from_checkpoint(trained_shapes), method="saliency")
    np.testing.assert_array_equal(from_file, from_model)


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"method": "lime"}, "unknown attribution method 'lime'"),
    ({"layer": "conv9"}, "this net has conv1..conv5"),
    ({"layer": "conv5.tower1"}, "this net has one tower"),
    ({"layer": "fc7"}, "net.features has"),
    ({"method": "occlusion", "layer": "conv5"}, "a layer is chosen for gradcam only"),
    ({"target": 10}, "class 10: give an index 0..9"),
    ({"target": "giraffe"}, "class 'giraffe'"),
    ({"target": -1}, "class -1"),
    ({"target": "³"}, "class '³'"),  # a digit to str.isdigit, not to int()
    ({"target": "--3"}, "class '--3'"),
    ({"layer": "conv05"}, "net.features has"),
    ({"layer": "pool5.tower1"}, "a tower is named on a conv layer"),
    ({"layer": ""}, "net.features has"),
    ({"device": "bogus"}, "unknown device 'bogus'"),
])
def test_what_does_not_exist_is_a_one_line_error(trained_shapes, photo, kwargs, says):
    with pytest.raises(UsageError, match=says.replace(".", r"\.")) as info:
        alexnet.explain(photo, trained_shapes, **kwargs)
    assert "\n" not in str(info.value)


def test_layers_by_the_papers_names_and_by_feature_names(nets):
    net = alexnet.model_from_checkpoint(nets["alexnet2012"])
    named = dict(net.features.named_children())
    assert grad_cam_layer(net, None, 2)[1] is named["relu5"]
    assert grad_cam_layer(net, "conv1", 2)[1] is named["relu1"]
    assert grad_cam_layer(net, "conv3.tower2", 2)[2] == slice(192, 384)
    assert grad_cam_layer(net, "pool5", 2)[1] is named["pool5"]
    owt = alexnet.model_from_checkpoint(nets["alexnet_owt"])
    assert grad_cam_layer(owt, "conv2", 1)[1] is owt.features[4]  # torchvision's numbered layers: ReLU after conv2
    assert grad_cam_layer(owt, "12", 1)[1] is owt.features[12]


def test_a_path_like_image_works(tmp_path, trained_shapes, photo):
    path = Path(tmp_path) / "photo.png"
    photo.save(path)
    np.testing.assert_array_equal(alexnet.explain(path, trained_shapes), alexnet.explain(str(path), trained_shapes))


@pytest.mark.parametrize(("image", "says"), [
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "tensor images must be uint8 C,H,W"),
    (torch.zeros(32, 32, dtype=torch.uint8), "tensor images must be uint8 C,H,W"),
    (np.zeros((32, 32, 3), dtype=np.uint8), "not an image: a ndarray"),
    (None, "not an image: a NoneType"),
])
def test_an_image_of_the_wrong_kind_is_one_line(trained_shapes, image, says):
    with pytest.raises(UsageError, match=says) as info:
        alexnet.explain(image, trained_shapes)
    assert "\n" not in str(info.value)


def test_every_pil_mode_and_a_layer_by_index_work(nets, photo):
    for mode in ("LA", "RGBA", "L", "P", "CMYK", "I;16"):
        assert alexnet.explain(photo.convert(mode), nets["alexnet_mini"], method="saliency").shape == (32, 32), mode
    e = explanation(photo, nets["alexnet2012"], layer=7)  # net.features[7] is pool2
    assert e.layer == "pool2" and "Grad-CAM of pool2" in e.caption
    with pytest.raises(UsageError, match="two towers"):
        explanation(photo, nets["alexnet2012"], layer="conv5.tower3")


def test_a_map_that_is_zero_everywhere_says_so():
    from alexnet.inference.explain import Explanation

    view = torch.zeros(3, 8, 8, dtype=torch.uint8)
    flat = Explanation(np.zeros((8, 8), np.float32), view, "gradcam", "conv5", 1, "cat", 0.25)
    assert flat.caption == "Grad-CAM of conv5 for cat (25.0%): the map is zero everywhere"
    assert Explanation(-np.ones((8, 8), np.float32), view, "occlusion", None, 1, "cat", 0.25).caption.endswith(
        ": no square lowers it")
    assert "zero" not in Explanation(np.eye(8, dtype=np.float32), view, "saliency", None, 1, "cat", 0.25).caption


def test_a_map_that_is_not_finite_is_refused_not_drawn(trained_shapes, photo, monkeypatch):
    """Finite outputs whose gradients overflow float32 would give a map of NaN: refused in one line."""
    import alexnet.inference.explain as module

    monkeypatch.setattr(module, "attribute", lambda *a, **k: torch.full((1, 32, 32), float("nan")))
    with pytest.raises(UsageError, match="its saliency map is not finite"):
        explanation(photo, trained_shapes, method="saliency")
