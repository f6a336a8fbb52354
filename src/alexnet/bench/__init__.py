"""Throughput benchmark, `alexnet bench`: images/s, peak memory and model FLOP
utilisation of our fast path, against torchvision's `alexnet` run the standard way, in the same
process.

Ours is what `alexnet train` / `eval` run: a model from `build_model`, uint8 N,C,R,R batches
already on the device, our batched augmentation (`TrainAugment`, or the centre view of
`EvalViews`) and normalisation on the device, optional channels-last, torch.compile and CUDA
graphs, autocast for the precision, SGD with momentum 0.9 as one fused update,
`zero_grad(set_to_none=True)`, and inference under `torch.inference_mode()` with the weights in
the precision's dtype (as `alexnet eval --amp` holds them). The baselines are
`torchvision.models.alexnet()` fed float32 batches already normalised on the device, as
torchvision's reference training script feeds them, in a plain eager loop: fp32, and under
autocast (bf16 where supported).

The modules, each importing only those above it:
- `config`: `BenchConfig`, MODES, PRECISIONS, the baselines' names, the timing defaults, `resolve`;
- `flops`: FLOPs per image, the device's peak FLOP/s, its name;
- `timing`: `Runner`, `measure` (warm-up, timed windows taking turns), peak memory;
- `synthetic`: the train and infer runs on synthetic batches, ours and torchvision's;
- `data`: the input pipeline alone on a real dataset, our loader and torchvision's;
- `run`: `run_bench`, the whole benchmark and its JSON-ready report;
- `report`: `format_report`, that report as a text table (imports none of the others).
"""

from alexnet.lazy import lazy_exports

# name -> its module, imported on first use so that `alexnet bench --help` loads no torch
_EXPORTS = {
    "BASELINE_AUTOCAST": "alexnet.bench.config",
    "BASELINE_DATA": "alexnet.bench.config",
    "BASELINE_FP32": "alexnet.bench.config",
    "BenchConfig": "alexnet.bench.config",
    "MEAN": "alexnet.bench.config",
    "MEMORY_KINDS": "alexnet.bench.timing",
    "MODES": "alexnet.bench.config",
    "PEAK_FLOPS": "alexnet.bench.flops",
    "PRECISIONS": "alexnet.bench.config",
    "Runner": "alexnet.bench.timing",
    "STD": "alexnet.bench.config",
    "TIMING": "alexnet.bench.config",
    "bf16_native": "alexnet.engine.fast",
    "check_baseline_size": "alexnet.bench.synthetic",
    "check_size": "alexnet.bench.config",
    "compile_or_eager": "alexnet.bench.synthetic",
    "device_name": "alexnet.bench.flops",
    "endless": "alexnet.bench.data",
    "format_report": "alexnet.bench.report",
    "forward_flops": "alexnet.bench.flops",
    "imagefolder_root": "alexnet.bench.data",
    "inference_dtype": "alexnet.bench.synthetic",
    "measure": "alexnet.bench.timing",
    "measure_data": "alexnet.bench.data",
    "memory_in_use": "alexnet.bench.timing",
    "model_input_size": "alexnet.bench.config",
    "ours": "alexnet.bench.synthetic",
    "ours_data": "alexnet.bench.data",
    "peak_flops": "alexnet.bench.flops",
    "peak_memory": "alexnet.bench.timing",
    "reset_peak_memory": "alexnet.bench.timing",
    "resolve": "alexnet.bench.config",
    "run_bench": "alexnet.bench.run",
    "sgd": "alexnet.bench.synthetic",
    "summarise": "alexnet.bench.timing",
    "synchronize": "alexnet.bench.timing",
    "synthetic_batch": "alexnet.bench.synthetic",
    "timed": "alexnet.bench.timing",
    "torchvision_alexnet": "alexnet.bench.synthetic",
    "torchvision_data": "alexnet.bench.data",
}

__all__ = sorted(_EXPORTS)


__dir__, __getattr__ = lazy_exports("alexnet.bench", _EXPORTS, globals())
