"""The benchmark's report as text: `format_report` turns run_bench's JSON-ready report into a
small aligned table, one row per mode and run, with what its peak memory figures measure and
the ceilings its MFU is taken against.
"""

from __future__ import annotations

from typing import Any

from alexnet.limits import size_text


def format_report(report: dict[str, Any]) -> str:
    """The report as a small aligned table, one row per mode and run."""
    r = report
    switches = [r["precision"], "channels-last" if r["channels_last"] else "contiguous",
                "compiled" if r["compile"] else "eager"]
    switches += ["CUDA graphs"] if r.get("cuda_graphs") else []
    switches += ["JPEGs decoded on the device"] if r.get("device_decode") else []
    t = r["timing"]
    lines = [f"{r['model']}, batch {r['batch_size']}, {r['image_size']}x{r['image_size']}, {', '.join(switches)}; "
             f"{r['device']} ({r['device_name']}); torch {r['torch']}, torchvision {r['torchvision']}",
             f"median of {t['windows']} windows of {t['steps']} steps after {t['warmup']} warm-up steps"]
    header = ("mode", "run", "precision", "images/s", "min-max", "step ms", "peak mem", "TFLOP/s", "MFU", "of ceiling",
              "ours/this")
    rows = [header]
    for mode, ours in r["results"].items():
        runs = {"ours": ours, **r["baselines"].get(mode, {})}
        for name, e in runs.items():
            ratio = r["ratios"].get(mode, {}).get(name)
            rows.append((mode, name, e["precision"], f"{e['images_per_s']:,.1f}",
                         f"{e['images_per_s_min']:,.1f}-{e['images_per_s_max']:,.1f}", f"{e['step_ms']:,.1f}",
                         "-" if e["peak_memory_bytes"] is None else size_text(e["peak_memory_bytes"]),
                         "-" if e["tflops_per_s"] is None else f"{e['tflops_per_s']:.3f}",
                         "-" if e["mfu"] is None else f"{e['mfu']:.1%}",
                         "-" if e.get("mfu_ceiling") is None else f"{e['mfu_ceiling']:.1%}",
                         "-" if ratio is None else f"{ratio:.2f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = (False, False, False) + (True,) * (len(header) - 3)
    for row in rows:
        lines.append("  ".join(c.rjust(w) if a else c.ljust(w) for c, w, a in zip(row, widths, right)).rstrip())
    kinds = sorted({e["memory_kind"] for m in r["results"]
                    for e in [r["results"][m], *r["baselines"].get(m, {}).values()]})
    lines += [f"peak mem: {r['memory_kinds'][k]}" for k in kinds]
    lines += ["MFU: against the device's datasheet peak (known GPUs, or --peak-tflops); "
              "of ceiling: against the ceiling below"] if r.get("ceilings") else []
    lines += [f"ceiling ({p}): a {c['side']}x{c['side']} matmul, {c['tflops_per_s']:.3f} TFLOP/s (best of "
              f"{len(c['windows'])} windows, measured in this run)" for p, c in r.get("ceilings", {}).items()]
    return "\n".join(lines)
