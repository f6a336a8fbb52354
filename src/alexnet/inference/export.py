"""Exporting a trained net for use without this package: ONNX, PT2 (torch.export), TorchScript
(legacy) or safetensors.

Every format takes the net's input as prepared for it: float32 N,C,S,S, normalised with the
checkpoint's mean and std (see `describe`), and gives the logits N,K. A net trained on the
paper's mean-subtracted pixels (input_norm mean_image) takes raw 0-255 pixels of the centre
patch instead: ONNX, PT2 and TorchScript files subtract the central crop of the training mean
image themselves, and the safetensors file carries the mean image as a tensor. Each export is
checked after it is written: the ONNX file is run in onnxruntime (when installed), the PT2 file
loaded by torch.export.load and the TorchScript file by torch.jit, on random inputs against the
PyTorch model; the safetensors file is read back and compared tensor by tensor. The class names
and preparation travel with the file: in the ONNX metadata_props, an extra file `alexnet.json` in
the PT2 and TorchScript archives, the safetensors header.

PT2 is torch.export's ExportedProgram as `torch.export.save` writes it (pytorch/pytorch,
torch/export/__init__.py: `export`, `save`, `load`; docs/source/export.md): the graph of ATen ops
with the weights, the batch dimension left free (`Dim("batch")`), loaded by
`torch.export.load(path).module()` with torch alone; it is what torch names as TorchScript's
successor, and what AOTInductor and ExecuTorch take in. TorchScript stays while torch ships it.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alexnet.atomic import atomic_path, check_output
from alexnet.data.transforms import five_crops, prep_stats
from alexnet.engine.checkpoint import model_from_checkpoint
from alexnet.errors import UsageError, reraise_signal
from alexnet.inference import FORMATS
from alexnet.inference.hub import is_hub_id, parse_hub_id
from alexnet.inference.weights import INPUT_PREFIX, as_checkpoint, save_safetensors

ONNX_TOLERANCE = 1e-4  # largest absolute logit difference accepted between onnxruntime and PyTorch
CHECK_BATCH = 3  # random inputs per check; not 1 or 2, so a batch size baked into the graph shows up


def describe(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What a user of the exported file needs to feed it and read its output."""
    info = {key: ckpt[key] for key in ("model_name", "model_args", "classes", "input_size", "mean", "std", "augment")}
    return info | {"input_norm": "mean_image" if prep_stats(ckpt)["mean_image"] is not None else "channel"}


class SubtractMean(nn.Module):
    """Raw 0-255 pixels N,C,S,S minus the centre SxS crop of the training mean image, then the net."""

    def __init__(self, net: nn.Module, mean_image: torch.Tensor, size: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer(  # 1,C,S,S
            "mean", five_crops(torch.as_tensor(mean_image, dtype=torch.float32), size)[4].contiguous()[None]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - self.mean)


def default_out(ckpt: dict[str, Any], fmt: str) -> Path:
    """The checkpoint's own name with the format's extension, beside it (runs/RUN/best.onnx); for
    weights from the Hub, the repo's name in the current folder (hf-hub:ORG/NAME: NAME.onnx)."""
    path = str(ckpt.get("path") or ckpt["model_name"])
    if is_hub_id(path):
        return Path(parse_hub_id(path)[0].split("/")[1] + FORMATS[fmt])
    source = Path(path) if Path(path).name else Path(path).resolve()  # '.': the folder's own name
    stem = source.name.split(".")[0] or ckpt["model_name"]
    return source.with_name(stem + FORMATS[fmt])


def export(source: Any, fmt: str, out: str | os.PathLike | None = None, *, model: str | None = None,
           force: bool = False, seed: int = 0) -> dict[str, Any]:
    """Write the net of `source` (checkpoint dict, checkpoint, run folder, weights file, or a model
    from `model_from_checkpoint`) as `fmt`.

    Returns {"path", "format", "check"}: check says how the file was verified and the largest
    absolute difference found (None where no checker is installed).
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    ckpt = as_checkpoint(source, model)
    # the one file read (a run folder: its checkpoint), not the folder it is in
    read = [p for p in (ckpt.get("path"), source) if isinstance(p, (str, os.PathLike)) and not os.path.isdir(p)]
    path = check_output(Path(out) if out is not None else default_out(ckpt, fmt), force=force, inputs=read)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    net = model_from_checkpoint(ckpt).eval()
    mean_image = prep_stats(ckpt)["mean_image"]
    if mean_image is not None and fmt != "safetensors":
        net = SubtractMean(net, mean_image, int(ckpt["input_size"][1])).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(CHECK_BATCH, *ckpt["input_size"], generator=generator)  # N,C,S,S
    with torch.no_grad():
        expected = net(x)  # N,K
    if fmt == "safetensors":
        save_safetensors(ckpt, path)
        check = _check_safetensors(path, ckpt)
    elif fmt == "torchscript":
        with atomic_path(path) as tmp:
            _torchscript(net, x, tmp, describe(ckpt))
        check = _check_torchscript(path, x, expected)
    elif fmt == "pt2":
        with atomic_path(path) as tmp:
            write_pt2(net, x, tmp, describe(ckpt))
        check = _check_pt2(path, x, expected)
    else:
        with atomic_path(path) as tmp:
            write_onnx(net, x, tmp, describe(ckpt))
        check = _check_onnx(path, x, expected)
    return {"path": str(path), "format": fmt, "check": check, **describe(ckpt)}


def _torchscript(net: nn.Module, x: torch.Tensor, path: str, info: dict[str, Any]) -> None:
    # torch.jit announces its deprecation in favour of torch.export, but TorchScript is still
    # what C++ (libtorch) and older runtimes load; the traced graph is checked right after.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, x, check_trace=False)
        # into memory first: on a full disk torch.jit.save to a file aborts the whole process
        # (C++ terminate, exit 134, torch 2.14) where Python's own write raises ENOSPC
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"alexnet.json": json.dumps(info)})
    with open(path, "wb") as f:
        f.write(buffer.getbuffer())


def write_pt2(net: nn.Module, x: torch.Tensor, path: str | os.PathLike, info: dict[str, Any] | None = None) -> None:
    """`net` as a torch.export program (batch size free) traced on `x` N,C,S,S, saved by
    torch.export.save; `info` as JSON in its extra file `alexnet.json`."""
    batch = torch.export.Dim("batch", min=1)
    try:  # every net of build_model exports; one of the user's own may not
        program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
    except Exception as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"pt2: {type(net).__name__} cannot be captured by torch.export ({why})") from None
    buffer = io.BytesIO()  # in memory first, as for TorchScript: one plain write reports a full disk
    torch.export.save(program, buffer, extra_files={"alexnet.json": json.dumps(info or {})})
    with open(path, "wb") as f:
        f.write(buffer.getbuffer())


def write_onnx(net: nn.Module, x: torch.Tensor, path: str | os.PathLike, info: dict[str, Any] | None = None) -> None:
    """`net` as an ONNX file (opset 17, batch size free) traced on `x` N,C,S,S; `info` in its metadata_props."""
    try:
        import onnx
    except ImportError as e:
        reraise_signal(e)  # a signal during the import, not a missing package
        raise UsageError(
            "ONNX export needs the onnx package: pip install onnx (and onnxruntime to check the file)"
        ) from None
    with warnings.catch_warnings():  # the TorchScript-based exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), path, input_names=["images"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    model = onnx.load(path)
    for key, value in (info or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, path)


def _check_onnx(path: Path, x: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    try:
        import onnxruntime
    except ImportError as e:
        reraise_signal(e)  # a signal during the import, not a missing package
        return {
            "checker": None, "note": "onnxruntime is not installed: the file was not checked (pip install onnxruntime)"
        }
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": x.numpy()})[0]
    diff = float((torch.from_numpy(got) - expected).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise UsageError(f"{path}: onnxruntime's logits differ from PyTorch's by {diff:.2e} (> {ONNX_TOLERANCE:g})")
    return {"checker": f"onnxruntime {onnxruntime.__version__}", "max_abs_diff": diff, "tolerance": ONNX_TOLERANCE,
            "inputs": list(x.shape)}


def _check_torchscript(path: Path, x: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices, on load and on every call
        loaded = torch.jit.load(str(path), map_location="cpu")
        return _check_reloaded(path, loaded, x, expected, "the TorchScript module's", f"torch.jit {torch.__version__}")


def _check_pt2(path: Path, x: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    loaded = torch.export.load(str(path)).module()
    return _check_reloaded(path, loaded, x, expected, "the loaded program's", f"torch.export.load {torch.__version__}")


def _check_reloaded(path: Path, loaded: Any, x: torch.Tensor, expected: torch.Tensor, whose: str,
                    checker: str) -> dict[str, Any]:
    """A file read back as a callable net, its logits on `x` against the model's (`expected`)."""
    with torch.no_grad():
        diff = float((loaded(x) - expected).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise UsageError(f"{path}: {whose} logits differ from the model's by {diff:.2e}")
    return {"checker": checker, "max_abs_diff": diff, "tolerance": ONNX_TOLERANCE, "inputs": list(x.shape)}


def _check_safetensors(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    from safetensors.torch import load_file

    back = {k: v for k, v in load_file(str(path)).items() if not k.startswith(INPUT_PREFIX)}  # the net's tensors only
    diff = max((float((back[k] - v).abs().max()) for k, v in ckpt["model"].items() if v.numel()), default=0.0)
    if set(back) != set(ckpt["model"]) or diff != 0.0:
        raise UsageError(f"{path}: the tensors read back differ from the checkpoint's")
    return {"checker": "safetensors read-back", "max_abs_diff": diff, "tensors": len(back)}
