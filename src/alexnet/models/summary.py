"""A layer-by-layer summary of a net: output shapes, parameters and multiply-accumulates (MACs).

The numbers behind Krizhevsky et al. (2012) section 3.5 / figure 2 (the map sizes of every
layer) and behind the observation that nearly all of the 60 million parameters sit in the
fully-connected layers (the conv/fc shares). MACs are counted the way
torch.utils.flop_counter counts FLOPs (one MAC = 2 FLOPs): convolutions and linear layers only,
bias adds ignored, so 2 * total_macs equals FlopCounterMode's total for the same forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from alexnet.errors import UsageError
from alexnet.limits import MAX_IMAGE_SIZE
from alexnet.models.local import LocallyConnected2d


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call on a batch of one; 0 for layers without weights."""
    if isinstance(module, nn.Conv2d):
        # every output element is a dot product over in_channels/groups x kH x kW inputs
        return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, LocallyConnected2d):  # a conv's arithmetic with a kernel per position
        return output.numel() * module.in_channels * module.kernel_size**2
    return 0


def _window(module: nn.Module) -> tuple[list[int] | None, list[int] | None]:
    """A conv's or a pool's kernel and stride as [h, w] each (what figure 2 labels each layer
    with); None for layers without a window."""
    kernel = getattr(module, "kernel_size", None)
    if kernel is None:
        return None, None
    stride = getattr(module, "stride", 1)  # LocallyConnected2d slides by 1
    return _pair(kernel), _pair(kernel if stride is None else stride)


def _pair(v: int | tuple[int, ...] | list[int]) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (tuple, list)) else [int(v), int(v)]


def _check_size(input_size: object) -> tuple[int, int, int]:
    size = tuple(input_size) if isinstance(input_size, (tuple, list)) else ()
    if len(size) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise UsageError(f"input size must be three positive integers C,H,W (got {input_size!r})")
    if max(size[1:]) > MAX_IMAGE_SIZE:  # the input alone is C*H*W floats: 3x100000x100000 asked for 120 GB
        raise UsageError(
            f"input size {'x'.join(map(str, size))} is too large: height and width must be at most {MAX_IMAGE_SIZE}"
        )
    return size


def summarize(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> dict:
    """Run one image through `model` in eval mode and describe every leaf module it calls.

    input_size is (C, H, W); None means model.input_size. An input the model cannot take raises
    UsageError naming the model and the size.
    """
    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise UsageError(f"{type(model).__name__} has no input_size; pass one as C,H,W")
    size = _check_size(input_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    x = torch.zeros(1, *size, device=device, dtype=dtype)  # N=1,C,H,W

    rows: list[dict] = []

    def record(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            kernel, stride = _window(module)
            rows.append({
                "name": name,
                "type": type(module).__name__,
                "kernel": kernel,
                "stride": stride,
                "output_shape": list(out.shape[1:]),
                "params": sum(p.numel() for p in module.parameters(recurse=False)),
                "macs": _macs(module, out),
            })
        return hook

    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(record(n)) for n, m in leaves]
    modes = [(m, m.training) for m in model.modules()]  # restored one by one: some may be frozen
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError) as err:
        arch = getattr(model, "arch", type(model).__name__)
        expected = "x".join(str(s) for s in getattr(model, "input_size", ()))
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = f" (it expects {expected})" if expected else ""
        raise UsageError(
            f"model '{arch}' cannot take a {'x'.join(map(str, size))} input{hint}: {reason}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(recurse=False))
    fc = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters(recurse=False))
    return {
        "rows": rows,
        "input_size": list(size),
        "total_params": total,
        "trainable_params": trainable,
        "total_macs": sum(r["macs"] for r in rows),
        "conv_params": conv,
        "fc_params": fc,
        "conv_share": conv / total if total else 0.0,
        "fc_share": fc / total if total else 0.0,
    }


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}MAC"
    return f"{n} MAC"


def stride_text(stride: list[int]) -> str:
    """[4, 4] -> '4', [2, 1] -> '2x1'."""
    return str(stride[0]) if len(set(stride)) == 1 else "x".join(map(str, stride))


def format_summary(summary: dict) -> str:
    """The summary as an aligned text table followed by the totals."""
    header = ("Layer", "Type", "Kernel", "Stride", "Output shape", "Params", "MACs")
    table = [header] + [
        (
            r["name"] or "(model)",
            r["type"],
            "-" if r.get("kernel") is None else "x".join(map(str, r["kernel"])),
            "-" if r.get("stride") is None else stride_text(r["stride"]),
            "x".join(str(s) for s in r["output_shape"]),
            f"{r['params']:,}",
            f"{r['macs']:,}",
        )
        for r in summary["rows"]
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = (False, False, True, True, True, True, True)  # numbers right-aligned so the digits line up

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        return "  ".join(cells).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [line(header), rule] + [line(row) for row in table[1:]] + [rule]
    s = summary
    out += [
        f"Input size:        {'x'.join(str(d) for d in s['input_size'])}",
        f"Total params:      {s['total_params']:,}",
        f"Trainable params:  {s['trainable_params']:,}",
        f"Total MACs:        {s['total_macs']:,} ({_human(s['total_macs'])} per image)",
        f"Conv params:       {s['conv_params']:,} ({100 * s['conv_share']:.1f}%)",
        f"FC params:         {s['fc_params']:,} ({100 * s['fc_share']:.1f}%)",
    ]
    return "\n".join(out)
