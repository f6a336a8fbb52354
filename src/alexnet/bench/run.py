"""The whole benchmark: `run_bench` resolves the config, runs each mode (ours and, with
--baseline, torchvision's), adds the MFU against the device's datasheet peak (where known) and
against its ceiling measured in the same run (bench/ceiling.py), and returns the JSON-ready report
`alexnet bench` prints (as a table: bench/report.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from alexnet.bench.ceiling import DTYPES as CEILING_DTYPES
from alexnet.bench.ceiling import matmul_ceiling
from alexnet.bench.config import BenchConfig, resolve
from alexnet.bench.data import measure_data
from alexnet.bench.flops import device_name, peak_flops
from alexnet.bench.runtimes import exported_runner, int8_runner, require, workdir
from alexnet.bench.synthetic import check_baseline_size, ours, torchvision_alexnet
from alexnet.bench.timing import MEMORY_KINDS, measure
from alexnet.errors import UsageError


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run the benchmark `cfg` describes; the JSON-ready report (see `alexnet bench --help`)."""
    import torchvision

    from alexnet.engine.console import explain_out_of_memory

    asked_for_graphs = cfg.cuda_graphs == "on"
    cfg, device = resolve(cfg)
    modes = ["train", "infer"] if cfg.mode == "all" else [] if cfg.mode == "data" else [cfg.mode]
    if cfg.data and cfg.mode in ("data", "all"):
        modes.append("data")
    if cfg.baseline and ("train" in modes or "infer" in modes):
        check_baseline_size(cfg.image_size)
    for name in cfg.runtimes:  # a missing runtime is an error before minutes of measuring
        require(name)
        if device.type != "cpu":
            raise UsageError(f"--baseline {name} runs on the CPU only; add --device cpu")
    source = None
    if "data" in modes:  # opened first: a bad spec is an error before minutes of measuring
        from alexnet.data import open_dataset

        source = open_dataset(cfg.data, seed=cfg.seed)
    notes: list[str] = []
    if asked_for_graphs and cfg.cuda_graphs == "off" and {"train", "infer"} & set(modes):
        notes.append("CUDA graphs need --compile and a CUDA device; measured without them")
    results: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    ceilings: dict[str, Any] = {}  # precision -> matmul_ceiling's measurement, once per precision
    timing = dict(warmup=cfg.warmup, windows=cfg.windows, steps=cfg.steps, log=log)
    benchmark_was = torch.backends.cudnn.benchmark
    # both torchvision's reference script and our training pick cuDNN's fastest kernels per shape
    torch.backends.cudnn.benchmark = True
    exported = workdir()  # the ONNX file the runtimes read, removed at the end
    try:
        with explain_out_of_memory(cfg.batch_size, device, doing="benchmarking"):
            for mode in modes:
                log(f"{mode}: {cfg.model}, batch {cfg.batch_size}, {cfg.image_size}x{cfg.image_size}, {device}")
                if mode == "data":
                    measured = measure_data(cfg, device, source, notes, timing)
                else:
                    factories = [lambda mode=mode: ours(cfg, device, mode, notes)]
                    if cfg.baseline:
                        factories += [lambda mode=mode, a=a: torchvision_alexnet(cfg, device, mode, a)
                                      for a in (False, True)]
                    if mode == "infer":
                        factories += [lambda n=n: (int8_runner(cfg) if n == "int8"
                                                   else exported_runner(cfg, device, n, exported.name))
                                      for n in cfg.runtimes]
                    measured = measure(factories, device, **timing)
                for entry in measured.values():
                    floating = entry["precision"] in CEILING_DTYPES  # int8 has no datasheet peak or matmul ceiling here
                    peak = peak_flops(device, entry["precision"], cfg.peak_tflops) if floating else None
                    entry["peak_tflops"] = peak / 1e12 if peak else None
                    entry["mfu"] = entry["tflops_per_s"] * 1e12 / peak if peak and entry["tflops_per_s"] else None
                    ceiling = None
                    if entry["tflops_per_s"] and cfg.ceiling and floating:
                        if entry["precision"] not in ceilings:
                            log(f"ceiling: a {cfg.ceiling_side or 'large'} square matmul in {entry['precision']}")
                            ceilings[entry["precision"]] = matmul_ceiling(device, entry["precision"],
                                                                          side=cfg.ceiling_side)
                        ceiling = ceilings[entry["precision"]]["tflops_per_s"]
                    entry["ceiling_tflops"] = ceiling
                    entry["mfu_ceiling"] = entry["tflops_per_s"] / ceiling if ceiling else None
                results[mode] = measured.pop("ours")
                if measured:
                    baselines[mode] = measured
                    ratios[mode] = {name: results[mode]["images_per_s"] / b["images_per_s"]
                                    for name, b in measured.items()}
    finally:
        torch.backends.cudnn.benchmark = benchmark_was
        exported.cleanup()
    compiled = [r.get("compile") for r in results.values() if "compile" in r]
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": cfg.model,
        "mode": cfg.mode,
        "batch_size": cfg.batch_size,
        "image_size": cfg.image_size,
        "precision": cfg.precision,
        "channels_last": cfg.channels_last == "on",
        "compile": all(compiled) if compiled else cfg.compile == "on",
        "compile_requested": cfg.compile == "on",
        "cuda_graphs": any(r.get("cuda_graphs", False) for r in results.values()),
        "device_decode": cfg.device_decode == "on" if "data" in modes else None,
        "timing": {"warmup": cfg.warmup, "windows": cfg.windows, "steps": cfg.steps,
                   "clock": "cuda_events" if device.type == "cuda" else "perf_counter"},
        "memory_kinds": MEMORY_KINDS,
        "results": results,
        "baselines": baselines,
        "ratios": ratios,
        "ceilings": ceilings,
        "runtimes": list(cfg.runtimes),
        "notes": notes,
    }
