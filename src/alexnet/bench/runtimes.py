"""Inference baselines outside PyTorch: the model we measure, exported to ONNX once
(inference/export.py's `write_onnx`) and run by ONNX Runtime or OpenVINO in the same process,
their windows taking turns with ours (bench/timing.py).

They are an extra (`pip install 'alexnet[baselines]'`), not a dependency: a runtime that is not
installed is a one-line usage error naming the package. Both get the batch as float32 N,C,S,S
already normalised (the exported graph's input), the same weights as ours (built from the same
seed), and as many threads as torch has. OpenVINO is given ours's precision as its
INFERENCE_PRECISION_HINT (bf16 where ours runs bf16, which on CPUs with AMX is also its own
default); ONNX Runtime's CPU provider computes convolutions in fp32 only. Each is checked once
on the timed batch against torch's logits (`max_abs_diff` in its result), so what is timed is
the same net.

`int8` is ours again, quantized to int8 by inference/int8.py (torchao's pt2e flow, static,
calibrated on four synthetic batches, which sets scales for timing, not for accuracy: `alexnet
eval RUN --int8` measures that on real images) and compiled by Inductor into oneDNN's int8
kernels before the timing starts; no matmul ceiling is timed for it, so its MFU columns stay empty.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from alexnet.bench.config import BenchConfig
from alexnet.bench.timing import Runner
from alexnet.errors import UsageError, reraise_signal


def require(name: str) -> Any:
    """The runtime's module; a usage error naming the package where it is not installed."""
    if name == "int8":
        return None  # PyTorch's own (inference/int8.py says where it is missing)
    try:
        if name == "onnxruntime":
            import onnxruntime

            return onnxruntime
        import openvino

        return openvino
    except ImportError as e:
        reraise_signal(e)  # a signal during the import, not a missing package
        raise UsageError(f"--baseline {name} needs the {name} package: pip install {name} "
                         "(or pip install 'alexnet[baselines]')") from None


def reference_net(cfg: BenchConfig) -> tuple[torch.nn.Module, torch.Tensor, float]:
    """cfg's float32 model as ours builds it (same seed), the timed batch and the forward FLOPs per image."""
    from alexnet.bench.flops import forward_flops
    from alexnet.bench.synthetic import synthetic_input
    from alexnet.models import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).eval()
    channels, size = model.input_size[0], cfg.image_size
    x = synthetic_input(cfg.batch_size, channels, size, cfg.seed)  # N,C,S,S float32, normalised
    return model, x, forward_flops(lambda: build_model(cfg.model), (channels, size, size))


def exported_runner(cfg: BenchConfig, device: torch.device, name: str, workdir: str) -> Runner:
    """`name` (onnxruntime or openvino) running cfg's model, exported to ONNX in `workdir`, on one batch (CPU)."""
    from alexnet.inference.export import write_onnx

    module = require(name)
    model, x, flops = reference_net(cfg)
    path = os.path.join(workdir, f"{cfg.model}.onnx")
    if not os.path.exists(path):
        write_onnx(model, x[:3], path)
    threads = torch.get_num_threads()
    feed = x.numpy()
    if name == "onnxruntime":
        options = module.SessionOptions()
        options.intra_op_num_threads = threads
        session = module.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        precision = "fp32"

        def step() -> int:
            session.run(["logits"], {"images": feed})
            return feed.shape[0]
    else:
        precision = "bf16" if cfg.precision == "bf16" else "fp32"
        core = module.Core()
        compiled = core.compile_model(core.read_model(path), "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def step() -> int:
            request.infer({0: feed})
            return feed.shape[0]

    with torch.no_grad():
        expected = model(x)  # N,K: what the runtime must give on the same batch
    got = torch.as_tensor(session.run(["logits"], {"images": feed})[0] if name == "onnxruntime"
                          else request.infer({0: feed})[compiled.output(0)])
    version = getattr(module, "__version__", None) or module.get_version()
    return Runner(name, step, precision, flops, info={"version": str(version), "threads": threads,
                                                          "max_abs_diff": float((got - expected).abs().max())})


def int8_runner(cfg: BenchConfig) -> Runner:
    """Ours quantized to int8 (inference/int8.py) on one synthetic batch, on the CPU."""
    from alexnet.bench.synthetic import synthetic_input
    from alexnet.inference.int8 import quantize_int8

    model, x, flops = reference_net(cfg)
    calibration = [synthetic_input(min(cfg.batch_size, 16), x.shape[1], x.shape[-1], cfg.seed + i) for i in range(1, 5)]
    net = quantize_int8(model, calibration)
    with torch.no_grad():
        expected, got = model(x), net(x)  # N,K

    def step() -> int:
        with torch.no_grad():
            net(x)
        return x.shape[0]

    agree = float((got.argmax(1) == expected.argmax(1)).float().mean())
    return Runner("int8", step, "int8", flops, info={"engine": "inductor (torchao pt2e)", "top1_agreement": agree,
                                                   "max_abs_diff": float((got - expected).abs().max())})


def workdir() -> tempfile.TemporaryDirectory:
    """A temporary folder for the exported model, removed when the bench ends."""
    return tempfile.TemporaryDirectory(prefix="alexnet-bench-")
