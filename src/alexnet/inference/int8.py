"""int8 inference on the CPU: post-training static quantization of a trained net.

`quantize_int8` follows PyTorch's FX graph-mode recipe (torch.ao.quantization.quantize_fx:
`prepare_fx`, a calibration pass, `convert_fx`; pytorch/pytorch, torch/ao/quantization/
quantize_fx.py) with the "x86" backend's default mapping: weights int8 per output channel
(symmetric), activations uint8 per tensor from a histogram of the calibration batches, conv or
linear fused with the ReLU after it. The kernels are fbgemm's and oneDNN's, which use VNNI
(AVX512-VNNI) and AMX-INT8 where the CPU has them. LRN stays in float32: PyTorch has no quantized
LRN kernel, so the graph dequantizes before each LRN and quantizes after it (`LocalResponseNorm`
is traced as a leaf); so do locally connected layers. Every net `build_model` makes quantizes; a
net whose forward FX cannot trace is a one-line error.

int8 is an option (`alexnet eval --int8`, the bench's int8 run), never a default: it wins at 224 px
but loses on small maps, where each LRN costs a dequantize and a quantize. Accuracy against fp32 is
measured per run with `alexnet eval RUN --int8` (measured: BENCHMARKS.md, "int8 inference").

torch.ao.quantization is deprecated upstream in favour of torchao's pt2e flow (prepare_pt2e /
convert_pt2e, which needs torch.export and Inductor); it still ships in torch 2.14 (tested here) and
2.11 (the GPU machine's). Its deprecation warnings are silenced here; a torch without it gets a
one-line error.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from alexnet.errors import UsageError, reraise_signal
from alexnet.models.local import LocallyConnected2d
from alexnet.models.lrn import LocalResponseNorm

ENGINE = "x86"  # fbgemm + oneDNN, chosen per op by PyTorch: the CPU backend it recommends for x86
FLOAT_LEAVES = (LocalResponseNorm, LocallyConnected2d)  # kept in float32 between a dequantize and a quantize


def _flat(net: nn.Module) -> nn.Sequential:
    """features -> (avgpool) -> flatten -> classifier as one Sequential: FX traces modules called
    from forward, and ConvNet's forward slices its classifier into a new Sequential."""
    parts = [net.features] + ([net.avgpool] if getattr(net, "avgpool", None) is not None else [])
    return nn.Sequential(*parts, nn.Flatten(1), net.classifier)


@torch.no_grad()
def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """An int8 copy of `model` (a ConvNet in eval mode; it is not changed) for CPU inference.

    `calibration` yields float32 N,C,H,W batches prepared as the net's inputs (the training
    images' centre views, say): their activations set each layer's uint8 scale. The copy takes
    float32 N,C,H,W inputs and gives float32 logits, and keeps the model's `classes`, `prep`,
    `input_size` and `num_classes`, so `evaluate` scores it as it scores the float net.
    """
    try:
        from torch.ao.quantization import get_default_qconfig_mapping, quantize_fx
        from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    except ImportError as e:
        reraise_signal(e)  # a signal during the import, not a missing package
        raise UsageError(f"int8 needs torch.ao.quantization, which torch {torch.__version__} no longer has") from None
    if ENGINE not in torch.backends.quantized.supported_engines:
        raise UsageError(f"int8 needs PyTorch's {ENGINE} quantized backend, which this torch build lacks")
    if not hasattr(model, "features") or not hasattr(model, "classifier"):
        raise UsageError(f"int8 quantizes a features/classifier net; got {type(model).__name__}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise UsageError("int8 runs on the CPU: move the model there (or add --device cpu)")
    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise UsageError("int8 calibration needs at least one batch of images")
    torch.backends.quantized.engine = ENGINE
    custom = PrepareCustomConfig().set_non_traceable_module_classes(list(FLOAT_LEAVES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notices of torch.ao (module docstring)
        net = _flat(copy.deepcopy(model).float().eval())
        try:  # every net of build_model traces; one of the user's own may not
            prepared = quantize_fx.prepare_fx(
                net, get_default_qconfig_mapping(ENGINE), (first,), prepare_custom_config=custom
            )
        except (torch.fx.proxy.TraceError, NotImplementedError, TypeError) as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"int8: {type(model).__name__} cannot be traced for quantization ({why})") from None
        prepared(first.float().contiguous())
        for x in batches:
            prepared(x.float().contiguous())  # N,C,H,W: the observers record each layer's range
        quantized = quantize_fx.convert_fx(prepared)
    for name in ("classes", "prep", "input_size", "num_classes"):
        if hasattr(model, name):
            setattr(quantized, name, getattr(model, name))
    quantized.int8 = True
    return quantized
