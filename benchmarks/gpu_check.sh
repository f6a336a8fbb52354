#!/usr/bin/env bash
# Issue 6's GPU checks and figures in one prepared run on the device machine (see BENCHMARKS.md).
#
#   here, once:   bash benchmarks/gpu_check.sh --prepare     # fills .carry/ (git-ignored, < 60 MiB)
#   on the GPU:   device run: command "bash benchmarks/gpu_check.sh", carry [".carry"], timeout_s 600
#
# The device machine has torch and torchvision (2.11 / 0.26 there), PyYAML, tqdm, Pillow and
# matplotlib, no registry and no ../shared: the photos and Fashion-MNIST travel in .carry/.
# Every figure lands in $OUT as JSON (the commands' own --json output) and the log in $OUT/log.txt.
# Each step has its own time limit, so one that hangs costs its limit, not the run.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    for need in ../shared/datasets/imagenet-sample /usr/share/datasets/fashion-mnist; do
        [ -d "$need" ] || { echo "gpu_check.sh --prepare: $need is missing (fashion-mnist: apt-get install -y dataset-fashion-mnist)" >&2; exit 2; }
    done
    rm -rf .carry && mkdir -p .carry/photos .carry/fashion-mnist  # .carry holds only what this script copied
    # 200 ImageNet photographs, one per class folder (about 22 MB), replicated on the device
    ls -d ../shared/datasets/imagenet-sample/n* | head -200 | while read -r d; do
        mkdir -p ".carry/photos/$(basename "$d")" && cp "$d"/* ".carry/photos/$(basename "$d")/"
    done
    cp /usr/share/datasets/fashion-mnist/*.gz .carry/fashion-mnist/
    du -sh .carry
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
A="python3 -m alexnet"
exec > >(tee "$OUT/log.txt") 2>&1

step() {  # step SECONDS NAME COMMAND...: run with a limit, stdout to $OUT/NAME.json
    local limit=$1 name=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.json"
    echo "== $name: exit $? after $((SECONDS - t0)) s"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
date -u

timeout 150 python3 -m pytest -q -p no:cacheprovider tests/engine/test_gpu.py tests/data/test_jpeg.py

step 120 train_owt    $A bench --mode train --baseline --json
step 90  train_2012   $A bench --model alexnet2012 --mode train --json
step 90  infer_owt    $A bench --mode infer --baseline --json

# imagenet-sample's photographs replicated (hard links) to 20,000 files in 200 class folders
python3 - <<'EOF'
import os, pathlib
src, dst = pathlib.Path(".carry/photos"), pathlib.Path("/tmp/jpeg20k")
for d in sorted(src.iterdir()):
    (dst / d.name).mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        for k in range(100):
            target = dst / d.name / f"{k:03d}_{f.name}"
            if not target.exists():
                os.link(f, target)
print(sum(1 for _ in dst.rglob("*.JPEG")), "files in", dst)
EOF
W=$(( $(nproc) - 1 ))
step 120 data_jpeg    $A bench --mode data --data folder:/tmp/jpeg20k --baseline --workers "$W" --json
step 150 train_jpeg   $A train --model alexnet_owt --data folder:/tmp/jpeg20k --augment paper --amp --epochs 2 \
                          --batch-size 256 --workers "$W" --no-tensorboard --out /tmp/runs/jpeg --json

# Fashion-MNIST, wall clock start to finish (the command's own "seconds" is in its JSON)
step 120 fashion_d2l  $A train --config d2l --data fashion-mnist:.carry/fashion-mnist --amp \
                          --no-tensorboard --out /tmp/runs/d2l --json
step 90  fashion_fast $A train --config fast --data fashion-mnist:.carry/fashion-mnist --amp \
                          --no-tensorboard --out /tmp/runs/fast --json
python3 benchmarks/lrn.py --device cuda
date -u
