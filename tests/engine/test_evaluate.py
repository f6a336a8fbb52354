"""Evaluation against independent computations: view averaging, and a model whose answers are known."""

import math

import torch
from torch import nn

from alexnet.data.loader import Batch
from alexnet.engine.evaluate import evaluate


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(3 * 4 * 4, 6)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_views_average_softmax_like_the_paper():
    torch.manual_seed(0)
    model = Linear().eval()
    x, y = torch.randn(8, 10, 3, 4, 4), torch.randint(0, 6, (8,))  # N,V,C,H,W: ten views each
    result = evaluate(model, [Batch(x, y, [])], device=torch.device("cpu"), num_classes=6)
    with torch.no_grad():
        probs = torch.stack([model(x[:, v]).softmax(1) for v in range(10)]).mean(0)  # N,K
    assert result["views"] == 10 and result["n"] == 8
    assert math.isclose(result["loss"], float(-probs[torch.arange(8), y].log().mean()), rel_tol=1e-5)
    assert result["top1"] == float((probs.argmax(1) == y).float().mean())
    assert result["confusion"].sum() == 8


def test_known_answers():
    """A model that always ranks classes 0 > 1 > 2 > 3 > 4 > 5 with fixed logits."""

    class Fixed(nn.Module):
        def forward(self, x):
            return torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5, 0.0]).expand(x.shape[0], 6)

    y = torch.tensor([0, 0, 1, 5, 4, 3, 2, 5, 0, 1])
    batches = [Batch(torch.zeros(5, 3, 4, 4), y[:5], []), Batch(torch.zeros(5, 3, 4, 4), y[5:], [])]
    r = evaluate(Fixed(), batches, device=torch.device("cpu"), num_classes=6)
    p = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5, 0.0]).softmax(0)
    assert r["top1"] == 0.3 and r["top5"] == 0.8  # three 0s; all but the two 5s in the top five
    assert math.isclose(r["loss"], float(-p[y].log().mean()), rel_tol=1e-6)
    assert r["per_class"][0] == 1.0 and r["per_class"][1] == 0.0
    assert r["confusion"][:, 0].tolist() == [3, 2, 1, 1, 1, 2]


def test_amp_evaluation_agrees_with_float32(tmp_path):
    """eval --amp holds the weights in bfloat16 (engine/evaluate.py): the same answers as float32,
    to within bfloat16's rounding, on a trained checkpoint."""
    from alexnet.config import make_config
    from alexnet.engine.checkpoint import load_checkpoint
    from alexnet.engine.evaluate import evaluate_checkpoint
    from alexnet.engine.train import fit

    fit(make_config(model="alexnet_simple", data="shapes:train=256,test=128,size=32", epochs=2, batch_size=64,
                    workers=0, tensorboard=False, out=str(tmp_path / "run")))
    ckpt = load_checkpoint(tmp_path / "run")
    fp32 = evaluate_checkpoint(ckpt, workers=0)
    bf16 = evaluate_checkpoint(ckpt, workers=0, amp=True)
    assert fp32["n"] == bf16["n"] == 128
    assert abs(bf16["top1"] - fp32["top1"]) <= 3 / 128
    assert math.isclose(bf16["loss"], fp32["loss"], rel_tol=0.03)


def test_evaluate_checkpoint_scores_a_class_balanced_subset_when_asked(tmp_path):
    """images=N: the first N of data/datasets.take's class-balanced order, nothing else; N < 0 is refused."""
    import pytest

    from alexnet.config import make_config
    from alexnet.engine.checkpoint import load_checkpoint
    from alexnet.engine.evaluate import evaluate_checkpoint
    from alexnet.engine.train import fit
    from alexnet.errors import UsageError

    fit(make_config(data="shapes:train=200,test=100,size=32", epochs=1, workers=0, tensorboard=False,
                    out=str(tmp_path / "r")))
    ckpt = load_checkpoint(tmp_path / "r")
    part = evaluate_checkpoint(ckpt, workers=0, images=40)
    assert part["n"] == 40 and part["per_class_n"] == [4] * 10
    assert evaluate_checkpoint(ckpt, workers=0)["n"] == 100
    with pytest.raises(UsageError, match="images must be a count >= 0"):
        evaluate_checkpoint(ckpt, workers=0, images=-1)
