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
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from alexnet.bench.config import BenchConfig
from alexnet.bench.timing import Runner
from alexnet.errors import UsageError


def require(name: str) -> Any:
    """The runtime's module; a usage error naming the package where it is not installed."""
    try:
        if name == "onnxruntime":
            import onnxruntime

            return onnxruntime
        import openvino

        return openvino
    except ImportError:
        raise UsageError(f"--baseline {name} needs the {name} package: pip install {name} "
                         "(or pip install 'alexnet[baselines]')") from None


def exported_runner(cfg: BenchConfig, device: torch.device, name: str, workdir: str) -> Runner:
    """`name` (onnxruntime or openvino) running cfg's model, exported to ONNX in `workdir`, on one batch (CPU)."""
    from alexnet.bench.flops import forward_flops
    from alexnet.bench.synthetic import synthetic_input
    from alexnet.inference.export import write_onnx
    from alexnet.models import build_model

    module = require(name)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).eval()
    channels, size = model.input_size[0], cfg.image_size
    x = synthetic_input(cfg.batch_size, channels, size, cfg.seed)  # N,C,S,S float32, normalised
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
    flops = forward_flops(lambda: build_model(cfg.model), (channels, size, size))
    return Runner(name, step, precision, flops, info={"version": str(version), "threads": threads,
                                                          "max_abs_diff": float((got - expected).abs().max())})


def workdir() -> tempfile.TemporaryDirectory:
    """A temporary folder for the exported model, removed when the bench ends."""
    return tempfile.TemporaryDirectory(prefix="alexnet-bench-")
