"""Top-k accuracy and confusion matrices against loops written out by hand."""

import torch

from alexnet.engine.evaluate import confusion_matrix, topk_correct


def test_topk_against_a_loop():
    torch.manual_seed(0)
    logits, target = torch.randn(200, 12), torch.randint(0, 12, (200,))
    ranked = logits.argsort(dim=1, descending=True).tolist()
    for k, got in zip((1, 3, 5), topk_correct(logits, target, (1, 3, 5))):
        assert got == sum(int(t) in r[:k] for r, t in zip(ranked, target.tolist()))
    assert topk_correct(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), (5,)) == [4]  # k > classes: all hit


def test_confusion_against_a_loop():
    pred, target = torch.randint(0, 4, (100,)), torch.randint(0, 4, (100,))
    ref = torch.zeros(4, 4, dtype=torch.long)
    for p, t in zip(pred.tolist(), target.tolist()):
        ref[t, p] += 1
    assert torch.equal(confusion_matrix(pred, target, 4), ref)
