"""The data runs: the input pipeline alone (decode, prepare, augment, normalise) on a real
dataset: our `make_loader` + `Prepare` + `TrainAugment` against torchvision's ImageFolder +
transforms + DataLoader with the same workers and batch size.

The two loaders run one after the other, not in turns: a DataLoader's workers prefetch in the
background and would slow the other's windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from alexnet.bench.config import BASELINE_DATA, MEAN, STD, BenchConfig, model_input_size
from alexnet.bench.timing import Runner, measure
from alexnet.errors import RunFailed, UsageError


def endless(loader: Any, set_epoch: Callable[[Any, int], None] | None = None) -> Iterator[Any]:
    """Batches of `loader`, epoch after epoch (data smaller than the run is read again)."""
    epoch = 0
    while True:
        if set_epoch is not None:
            set_epoch(loader, epoch)
        yield from loader
        epoch += 1


def ours_data(cfg: BenchConfig, device: torch.device, source: Any, workers: int) -> Runner:
    """Our loader: workers decode and `Prepare` (shorter side to R, centre R-square) each file;
    the batch is then cropped, flipped, lit and normalised on the device (`TrainAugment`)."""
    from alexnet.data.loader import make_loader, set_epoch
    from alexnet.data.transforms import Prepare, TrainAugment

    channels, size = model_input_size(cfg.model)[0], cfg.image_size
    train = source.split("train")
    if len(train) == 0:
        raise UsageError(f"{cfg.data}: the training split has no images")
    loader = make_loader(train, Prepare("paper", size, channels), batch_size=cfg.batch_size, shuffle=True,
                         workers=workers, seed=cfg.seed, pin_memory=device.type == "cuda",
                         decode_on=device if cfg.device_decode == "on" else None)
    augment = TrainAugment("paper", size=size, channels=channels, mean=source.mean, std=source.std).to(device)
    batches = endless(loader, set_epoch)

    def step() -> int:
        batch = next(batches)
        if batch.images.numel() == 0:  # every file of the batch was unreadable
            return 0
        x = augment(batch.images.to(device, non_blocking=True))  # uint8 N,C,R,R -> float N,C,S,S
        return x.shape[0]

    info = {"workers": workers, "images_in_split": len(train), "device_decode": cfg.device_decode == "on"}
    return Runner("ours", step, "fp32", None, info=info, close=batches.close)


def imagefolder_root(source: Any) -> Path | None:
    """The class-folder tree torchvision's ImageFolder reads for the training split of `source`, or None."""
    if source.name not in ("folder", "imagenet") or ":" not in source.spec:
        return None
    root = Path(source.spec.split(":", 1)[1]).expanduser()
    train = next((p for p in root.iterdir() if p.is_dir() and p.name.lower() == "train"), None)
    return train if train is not None else (root if source.name == "folder" else None)


def torchvision_data(cfg: BenchConfig, device: torch.device, root: Path, workers: int, channels: int) -> Runner:
    """torchvision's standard pipeline doing the same work per image: ImageFolder decodes,
    Resize(R) + RandomCrop(S) + RandomHorizontalFlip + ToTensor + Normalize in the workers."""
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision import transforms as T

    from alexnet.data.transforms import resize_for

    size = cfg.image_size
    steps = [T.Grayscale(1)] if channels == 1 else []
    tf = T.Compose([*steps, T.Resize(resize_for(size, "paper")), T.RandomCrop(size), T.RandomHorizontalFlip(),
                    T.ToTensor(), T.Normalize(MEAN[:channels] if channels == 3 else (sum(MEAN) / 3,),
                                              STD[:channels] if channels == 3 else (sum(STD) / 3,))])
    try:
        dataset = datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, OSError) as e:
        raise UsageError(f"torchvision's ImageFolder cannot read {root}: {e}") from None
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    batches = endless(loader)

    def step() -> int:
        x, _ = next(batches)  # float N,C,S,S, normalised
        return x.to(device, non_blocking=True).shape[0]

    return Runner(BASELINE_DATA, step, "fp32", None, info={"workers": workers, "images_in_split": len(dataset)},
                  close=batches.close)


def measure_data(cfg: BenchConfig, device: torch.device, source: Any, notes: list[str],
                 timing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our loader, then torchvision's (with --baseline), over the training split of `source`."""
    from alexnet.data.loader import default_workers
    from alexnet.engine.console import is_out_of_memory

    workers = default_workers() if cfg.workers < 0 else cfg.workers
    factories: list[Callable[[], Runner]] = [lambda: ours_data(cfg, device, source, workers)]
    if cfg.baseline:
        root = imagefolder_root(source)
        if root is None:
            notes.append(f"no {BASELINE_DATA} baseline for {cfg.data}: torchvision's ImageFolder needs a folder of "
                         "class folders (folder:DIR or imagenet:DIR)")
        else:
            channels = model_input_size(cfg.model)[0]
            factories.append(lambda: torchvision_data(cfg, device, root, workers, channels))
    try:
        return measure(factories, device, interleave=False, **timing)
    except Exception as e:  # a worker that died (a broken file torchvision's loader does not skip, ...)
        if isinstance(e, UsageError) or is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RunFailed(f"the data pipeline failed on {cfg.data}: {type(e).__name__}: {first}") from None
