"""The training engine: train (the loop and its plan), evaluate, checkpoints, the run folder."""

from alexnet.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from alexnet.engine.evaluate import evaluate
from alexnet.engine.train import fit, train_one_epoch

__all__ = ["evaluate", "fit", "load_checkpoint", "model_from_checkpoint", "save_checkpoint", "train_one_epoch"]
