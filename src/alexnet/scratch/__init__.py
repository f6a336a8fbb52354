"""AlexNet from scratch in NumPy: every layer's forward and backward pass written out, the nets
composed from them, SGD and a training step; no torch anywhere in this package.

It follows Krizhevsky, Sutskever & Hinton (2012) and computes what the torch nets of
alexnet.models compute, with the same state_dict keys, so weights move both ways:

    from alexnet import scratch
    net = scratch.build("alexnet_simple", seed=0)                  # float32, Kaiming init
    opt = scratch.SGD(net.params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss = scratch.train_step(net, x, y, opt, np.random.default_rng(0))  # x: N,3,32,32 float32
    logits = scratch.evaluate_batch(net, x)
    net.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})

layers.py holds the layers, nets.py the nets, optim.py SGD, train.py the step; the maths is in
docs/from-scratch.md.
"""

from alexnet.scratch import layers
from alexnet.scratch.nets import Layer, Net, build, list_models
from alexnet.scratch.optim import SGD
from alexnet.scratch.train import evaluate_batch, loss_and_grads, train_step

__all__ = ["SGD", "Layer", "Net", "build", "evaluate_batch", "layers", "list_models", "loss_and_grads", "train_step"]
