"""int8 inference on the CPU: post-training static quantization of a trained net.

`quantize_int8` follows torchao's PT2E recipe for x86 CPUs (pytorch/ao,
docs/source/tutorials_source/pt2e_quant_x86_inductor.rst, "PyTorch 2 Export Quantization with X86
Backend through Inductor"): the net is captured by `torch.export.export(...).module()`, annotated
by `X86InductorQuantizer` with `get_default_x86_inductor_quantization_config()` (weights int8 per
output channel, symmetric; activations uint8 per tensor from a histogram of the calibration
batches), `prepare_pt2e`, a calibration pass, `convert_pt2e`, and lowered by `torch.compile`
(Inductor) with freezing on, as the tutorial does: Inductor folds the weights and fuses each
quantize / conv or linear / ReLU / dequantize pattern into oneDNN's int8 kernels, which use VNNI
(AVX512-VNNI) and AMX-INT8 where the CPU has them. LRN and locally connected layers stay in float32
(left unannotated: the graph dequantizes before each one and quantizes after it). Every net
`build_model` makes quantizes but convnet_local, whose locally connected layers Inductor's int8
lowering cannot compile (torch 2.14.1: a kernel it generates there fails its bounds check and
aborts the process), which is refused
with a one-line error; so is a net `torch.export` cannot capture.

The batch size is left free (exported with a symbolic batch, compiled with dynamic=True), so one
compile serves every batch of an evaluation (a batch of one is run as two, not compiled again).
The compile happens here, on the first calibration batch, not at the first call. Measured on the
2-core CPU: alexnet_mini at 32 px about 7 s, alexnet_owt at 96 px 11 s, alexnet2012 at
227 px 26-36 s when the machine was otherwise idle, up to 5x that under load; Inductor's on-disk
cache did not shorten it measurably (alexnet_owt 96 px, in a row: 60 s, then 46 s with the cache
warm, 57 s with caches disabled), so nothing of ours is cached.

int8 is an option (`alexnet eval --int8`, the bench's int8 run), never a default: it wins at 224 px
but not on small maps or where each LRN costs a dequantize and a quantize. Accuracy against fp32 is
measured per run with `alexnet eval RUN --int8` (measured: BENCHMARKS.md, "int8 inference").

This replaced torch.ao.quantization's FX flow (prepare_fx / convert_fx), which torch deprecates in
favour of torchao's pt2e. A torch or torchao without the pt2e flow, or an Inductor that cannot
compile (no C++ compiler), is a one-line error.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from alexnet.errors import UsageError, reraise_signal
from alexnet.models.local import LocallyConnected2d
from alexnet.models.lrn import LocalResponseNorm

FLOAT_LEAVES = (LocalResponseNorm, LocallyConnected2d)  # kept in float32 between a dequantize and a quantize
KEPT = ("classes", "prep", "input_size", "num_classes")  # what evaluate and predict read off the float net


class Int8Net(nn.Module):
    """The int8 copy: `graph`, the converted torch.fx.GraphModule (quantize / dequantize ops around
    each int8 conv and linear: what to inspect), run through `lowered`, its Inductor compilation."""

    def __init__(self, graph: torch.fx.GraphModule, lowered: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.graph = graph
        self.lowered = lowered
        self.int8 = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().contiguous()  # N,C,H,W
        if x.shape[0] == 1:  # a batch of one would be a new compile (a size-1 dimension is specialised)
            return self.lowered(x.expand(2, *x.shape[1:]))[:1]
        return self.lowered(x)  # N,K float32

    def train(self, mode: bool = True) -> Int8Net:
        # a pt2e graph refuses .train()/.eval() (torchao's _disallow_eval_train); it is inference-only
        # and has no dropout or batch statistics left to switch, so only the flag is kept
        self.training = mode
        return self


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """torch's logger `name` at ERROR for a while: notices that are no concern of our user."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _pt2e() -> tuple[Any, Any, Any, Any]:
    """torchao's prepare_pt2e, convert_pt2e, X86InductorQuantizer and its default config."""
    try:  # torchao's import logs a notice about torch's Enum handling (torch.utils._pytree)
        with _quiet("torch.utils._pytree"):
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
                X86InductorQuantizer,
                get_default_x86_inductor_quantization_config,
            )
    except Exception as e:  # missing (ImportError), or built for another torch (any error at import)
        reraise_signal(e)  # a signal during the import, not a missing package
        raise UsageError(f"int8 needs torchao's pt2e quantization, working with torch {torch.__version__} "
                         f"(pip install torchao): {_first_line(e)}") from None
    return prepare_pt2e, convert_pt2e, X86InductorQuantizer, get_default_x86_inductor_quantization_config


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@torch.no_grad()
def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor], *, lower: bool = True) -> nn.Module:
    """An int8 copy of `model` (a ConvNet in eval mode; it is not changed) for CPU inference.

    `calibration` yields float32 N,C,H,W batches prepared as the net's inputs (the training
    images' centre views, say): their activations set each layer's uint8 scale. The copy (an
    `Int8Net`) takes float32 N,C,H,W inputs of any batch size and gives float32 logits, and keeps
    the model's `classes`, `prep`, `input_size` and `num_classes`, so `evaluate` scores it as it
    scores the float net. `lower=False` skips Inductor: the copy then runs the converted graph's
    reference arithmetic (int8 rounding computed in float32), the same numbers without the int8
    kernels or the compile's seconds (what the tests inspect).
    """
    if not hasattr(model, "features") or not hasattr(model, "classifier"):
        raise UsageError(f"int8 quantizes a features/classifier net; got {type(model).__name__}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise UsageError("int8 runs on the CPU: move the model there (or add --device cpu)")
    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise UsageError("int8 calibration needs at least one batch of images")
    if lower and any(isinstance(m, LocallyConnected2d) for m in model.modules()):
        # measured on torch 2.14.1: a kernel Inductor generates for the float unfold/bmm after the int8
        # layers fails its bounds check ("index out of bounds: tmp4 < 9L", 9 = 3x3) and aborts the process
        raise UsageError("int8: nets with locally connected layers (convnet_local) cannot be compiled by "
                         "Inductor's int8 lowering; score them in float32")
    prepare_pt2e, convert_pt2e, quantizer_class, default_config = _pt2e()
    first = first.float().contiguous()  # N,C,H,W
    # two images at least: export specialises a batch dimension it sees as 1
    example = first if first.shape[0] > 1 else first.expand(2, *first.shape[1:]).contiguous()
    quantizer = quantizer_class().set_global(default_config())
    net = copy.deepcopy(model).float().eval()  # prepare_pt2e folds and rewrites in place; the model stays
    for name, module in net.named_modules():
        if isinstance(module, FLOAT_LEAVES):
            quantizer.set_module_name_qconfig(name, None)
    with warnings.catch_warnings():
        # the quantizer notes each maxpool it leaves in float (after an LRN), Inductor a tensor copy
        warnings.simplefilter("ignore", UserWarning)
        try:  # every net of build_model exports; one of the user's own may not
            batch = torch.export.Dim("batch", min=1)
            graph = torch.export.export(net, (example,), dynamic_shapes=({0: batch},)).module()
        except Exception as e:
            raise UsageError(f"int8: {type(model).__name__} cannot be captured by torch.export "
                             f"({_first_line(e)})") from None
        prepared = prepare_pt2e(graph, quantizer)
        prepared(first)
        for x in batches:
            prepared(x.float().contiguous())  # N,C,H,W: the observers record each layer's range
        converted = convert_pt2e(prepared)
        if not lower:
            return _keep(model, Int8Net(converted, converted))
        lowered = torch.compile(converted, dynamic=True)
        try:  # compile now, not at the caller's first batch
            # a CUDA build of torch on a machine without CUDA logs where it looked for it (cpp_extension)
            with torch._inductor.config.patch(freezing=True), _quiet("torch.utils.cpp_extension"):
                got = lowered(first)
        except Exception as e:
            raise UsageError(f"int8: Inductor could not compile the quantized net ({_first_line(e)})") from None
    if not torch.isfinite(got).all():
        raise UsageError("int8: the compiled net's logits on the first calibration batch are not finite")
    return _keep(model, Int8Net(converted, lowered))


def _keep(model: nn.Module, quantized: Int8Net) -> Int8Net:
    for name in KEPT:
        if hasattr(model, name):
            setattr(quantized, name, getattr(model, name))
    return quantized
