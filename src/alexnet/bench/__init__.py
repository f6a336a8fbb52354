"""Throughput benchmark (issue 6), `alexnet bench`: images/s, peak memory and model FLOP
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

from alexnet.bench.config import (BASELINE_AUTOCAST, BASELINE_DATA, BASELINE_FP32, MEAN, MODES, PRECISIONS, STD, TIMING,
                                  BenchConfig, bf16_native, check_size, model_input_size, resolve)
from alexnet.bench.data import endless, imagefolder_root, measure_data, ours_data, torchvision_data
from alexnet.bench.flops import PEAK_FLOPS, device_name, forward_flops, peak_flops
from alexnet.bench.report import format_report, size_text
from alexnet.bench.run import run_bench
from alexnet.bench.synthetic import (autocast, check_baseline_size, compile_or_eager, inference_dtype, ours, sgd,
                                     synthetic_batch, torchvision_alexnet)
from alexnet.bench.timing import (MEMORY_KINDS, Runner, measure, memory_in_use, peak_memory, reset_peak_memory, summarise,
                                  synchronize, timed)

__all__ = [
    "BASELINE_AUTOCAST", "BASELINE_DATA", "BASELINE_FP32", "MEAN", "MEMORY_KINDS", "MODES", "PEAK_FLOPS", "PRECISIONS",
    "STD", "TIMING", "BenchConfig", "Runner", "autocast", "bf16_native", "check_baseline_size", "check_size",
    "compile_or_eager", "device_name", "endless", "format_report", "forward_flops", "imagefolder_root",
    "inference_dtype", "measure", "measure_data", "memory_in_use", "model_input_size", "ours", "ours_data",
    "peak_flops", "peak_memory", "reset_peak_memory", "resolve", "run_bench", "sgd", "size_text", "summarise",
    "synchronize", "synthetic_batch", "timed", "torchvision_alexnet", "torchvision_data",
]
