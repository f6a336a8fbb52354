#!/usr/bin/env bash
# Makes every picture in docs/pictures/ with the project's own commands (the README shows them).
# Usage: docs/make_pictures.sh [WORK_DIR]   (from the repository root, after Quickstart command 1)
# Needs ../shared/datasets (the CIFAR-10 JPEG archive and the ImageNet sample). About 15 minutes
# on a 2-core CPU, most of it the CIFAR-10 training; runs already in WORK_DIR are reused.
set -euo pipefail
W=${1:-/tmp/alexnet-pictures}
D=docs/pictures
DATA=../shared/datasets
A=.venv/bin/alexnet
mkdir -p "$W" "$D"

# the runs the pictures are made from
[ -f "$W/cifar/best.pt" ] || $A train --data cifar10:$DATA/cifar10-jpeg.tar.gz --epochs 6 --out "$W/cifar"
[ -f "$W/shapes-torch/best.pt" ] || $A train --config numpy --backend torch --out "$W/shapes-torch"
[ -f "$W/shapes-numpy/best.pt" ] || $A train --config numpy --backend numpy --out "$W/shapes-numpy"

# two CIFAR-10 test images per class, in folders named after their class
for c in airplane automobile bird cat deer dog frog horse ship truck; do
  tar -xzf $DATA/cifar10-jpeg.tar.gz -C "$W" "test/$c/0000.jpg" "test/$c/0001.jpg"
done
PHOTO=$DATA/imagenet-sample/n02123045/n02123045_tabby.JPEG

$A viz filters --model alexnet2012 --out $D/filters-alexnet2012.png
$A viz filters --before-after "$W/cifar" --out $D/filters-before-after.png
$A viz features "$W/test/cat/0000.jpg" --checkpoint "$W/cifar" --layer relu1 --out $D/features.png
$A viz predictions "$W/test" --checkpoint "$W/cifar" --out $D/predictions.png
$A viz predictions "$W/test" --checkpoint "$W/cifar" --style top5 --out $D/top5.png
$A viz heatmap "$W/test/ship/0000.jpg" --checkpoint "$W/cifar" --out $D/heatmap.png
$A viz neighbors --checkpoint "$W/cifar" --queries 5 --bank-size 5000 --out $D/neighbors.png
$A viz curves "$W/shapes-torch" "$W/shapes-numpy" --out $D/curves.png
$A viz augment $PHOTO --model alexnet2012 --out $D/augment.png
$A viz confusion --checkpoint "$W/cifar" --out $D/confusion.png

# where the net looked, and the demo page (the page needs the test extra and Debian's chromium)
$A viz explain "$W/test/cat/0000.jpg" --checkpoint "$W/cifar" --method gradcam --out $D/explain-gradcam.png
$A viz explain "$W/test/cat/0000.jpg" --checkpoint "$W/cifar" --method occlusion --out $D/explain-occlusion.png
.venv/bin/python docs/demo_screenshot.py "$W/cifar" "$(realpath $DATA/imagenet-sample/n02099601/n02099601_golden_retriever.JPEG)" \
  $D/demo.png --examples "$W/test/dog"
