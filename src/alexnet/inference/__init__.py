"""What uses a trained net: any weights as a checkpoint dict (`weights`), classifying images
(`predict`) and writing the net for other runtimes (`export`). It reads run folders and weight
files; training (alexnet.engine) never imports it."""

# the export formats and their files' suffixes; here, not in export.py, so `alexnet export --help` loads no torch
FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts.pt", "safetensors": ".safetensors"}
