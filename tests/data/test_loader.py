"""The loaders (data/loader.py): in-memory batches, a copy kept on the device, process shards."""

import torch

from alexnet.data.datasets import TensorImages
from alexnet.data.loader import Shard, TensorBatches, make_loader, set_epoch


def data(n: int = 50) -> TensorImages:
    g = torch.Generator().manual_seed(0)
    return TensorImages(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), [i % 5 for i in range(n)])


def batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b.images.cpu(), b.labels.cpu()) for b in loader]


def test_a_device_copy_gives_the_same_batches():
    plain = TensorBatches(data(), lambda x: x, batch_size=16, shuffle=True, seed=1)
    kept = TensorBatches(data(), lambda x: x, batch_size=16, shuffle=True, seed=1, device=torch.device("cpu"))
    for loader in (plain, kept):
        set_epoch(loader, 3)
    for (xa, ya), (xb, yb) in zip(batches(plain), batches(kept), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # labels follow images: item i's label is i % 5, whatever the order
    images, labels = data().images, torch.tensor([i % 5 for i in range(50)])
    for x, y in batches(kept):
        idx = [next(j for j in range(50) if torch.equal(images[j], xi)) for xi in x]
        assert torch.equal(labels[idx], y)


def test_make_loader_keeps_data_off_a_cpu_device_and_shards_the_global_batch():
    loader = make_loader(data(), lambda x: x, batch_size=16, shuffle=True, workers=0, seed=1,
                         device=torch.device("cpu"))
    assert loader.data.images is not None and loader.batch_size == 16
    halves = [make_loader(data(), lambda x: x, batch_size=16, shuffle=True, workers=0, seed=1, shard=Shard(r, 2, 16))
              for r in (0, 1)]
    assert [h.batch_size for h in halves] == [8, 8] and [len(h) for h in halves] == [3, 3]  # 50 // 16 full steps
    whole = batches(loader)
    for k, (a, b) in enumerate(zip(batches(halves[0]), batches(halves[1]), strict=True)):
        assert torch.equal(torch.cat([a[1], b[1]]), whole[k][1])
