"""AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012), faithfully and fast, on PyTorch + torchvision.

    import alexnet
    model = alexnet.build_model("alexnet2012")            # the paper's two-tower net, 227x227
    result = alexnet.fit(alexnet.TrainConfig(epochs=2))    # `alexnet train --epochs 2`: the fast preset on shapes
    cfg = alexnet.TrainConfig.preset("paper", epochs=2)      # any preset (fast, paper, d2l, numpy), fields changed
    ckpt = alexnet.load_checkpoint(result["run_dir"])      # rebuild with alexnet.model_from_checkpoint
    alexnet.predict(["cat.jpg", "photos/"], result["run_dir"])  # [{"path", "topk": [{"class", "index", "prob"}]}]
    alexnet.explain("cat.jpg", result["run_dir"], method="gradcam")  # where it looked: float32 S,S over its view
    ckpt = alexnet.load_weights("imagenet1k", "alexnet_owt")    # torchvision's pretrained weights, as a checkpoint
    alexnet.export(ckpt, "onnx", "alexnet.onnx")                 # checked in onnxruntime

Names are imported on first use, so `import alexnet` stays cheap: it imports no torch (measured:
BENCHMARKS.md, 'CPU: this project's machine'). `dir(alexnet)`, `help(alexnet)` and tab
completion still list them all, with their signatures (alexnet/lazy.py).
"""

from alexnet.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "build_model": "alexnet.models",
    "list_models": "alexnet.models",
    "open_dataset": "alexnet.data",
    "TrainConfig": "alexnet.config",
    "make_config": "alexnet.config",
    "fit": "alexnet.cli.train",
    "train_one_epoch": "alexnet.engine.train",
    "evaluate": "alexnet.engine.evaluate",
    "load_checkpoint": "alexnet.engine.checkpoint",
    "model_from_checkpoint": "alexnet.engine.checkpoint",
    "load_weights": "alexnet.inference.weights",
    "predict": "alexnet.inference.predict",
    "explain": "alexnet.inference.explain",
    "export": "alexnet.inference.export",
    "UsageError": "alexnet.errors",
}

__all__ = sorted(_EXPORTS)


__dir__, __getattr__ = lazy_exports("alexnet", _EXPORTS, globals())
