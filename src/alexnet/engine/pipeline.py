"""A run's data: the dataset cut to the config's sizes, the model sized for its classes, and the
loaders, on-device batch transforms and preparation record (`Pipeline`) of training.

Data flows one way: dataset (alexnet.data) -> prepared uint8 images -> loader -> the batch
transforms on the device (the paper's augmentation, section 4.1; `TrainAugment` and `EvalViews`)
-> the training loop (engine/train.py). The preparation record (`Pipeline.prep`) is saved in
every checkpoint, so eval, predict and export prepare images as training did.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset

from alexnet.config import TrainConfig, resolved_input_norm, resolved_val_images
from alexnet.data import DataSource, open_dataset
from alexnet.data.datasets import ImageFiles, TensorImages
from alexnet.data.decoded import decode_split, fits, prepared_bytes
from alexnet.data.images import BadImage
from alexnet.data.loader import Loader, Shard, default_workers, make_loader
from alexnet.data.stats import PixelStats, cached_pixel_stats
from alexnet.data.subset import hold_out, limit, take
from alexnet.data.transforms import EvalViews, Prepare, TrainAugment, eval_prepare, prep_pca, prep_stats, small_shift
from alexnet.engine.console import log
from alexnet.engine.distributed import World
from alexnet.engine.fast import bf16_switch, switch
from alexnet.errors import UsageError
from alexnet.models import build_model, check_input_size

_ALONE = World()  # one process: rank 0 of 1


def open_training_data(cfg: TrainConfig) -> DataSource:
    """The dataset cfg.data names, cut to cfg.train_images / cfg.val_images; refuses an empty training split."""
    source = hold_out(open_dataset(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction), cfg.holdout)
    source = limit(source, train=cfg.train_images, val=resolved_val_images(cfg))
    if len(source.split("train")) == 0:
        raise UsageError(f"{cfg.data}: the training split has no images")
    return source


def build_for_data(cfg: TrainConfig, source: DataSource) -> nn.Module:
    """The configured model with as many outputs as the data has classes."""
    args = dict(cfg.model_args)
    given = args.pop("num_classes", None)
    if given is not None and int(given) != len(source.classes):
        raise UsageError(f"model_args num_classes={given} but {source.spec} has {len(source.classes)} classes")
    if cfg.image_size:  # the model's own size fits by construction
        check_input_size(cfg.model, cfg.image_size, num_classes=len(source.classes), **args)
    return build_model(cfg.model, num_classes=len(source.classes), **args)


class Pipeline(NamedTuple):
    """The loaders and the on-device batch transforms of one run, and how inputs were prepared."""

    train: Loader
    val: Loader
    augment: TrainAugment  # uint8 N,C,R,R -> float N,C,S,S, random
    views: EvalViews  # uint8 N,C,R,R -> float N,C,S,S, the centre view
    prep: dict[str, Any]  # saved in checkpoints: input_size, mean, std, augment, translate, input_norm, mean_image, pca
    bad: tuple = ()  # unreadable files found while decoding the splits into memory beforehand
    train_eval: Loader | None = None  # a fixed subset of the training images, evaluated as the test is


def data_pipeline(cfg: TrainConfig, model: nn.Module, source: DataSource, device: torch.device, world: World = _ALONE,
                  known: dict[str, Any] | None = None) -> Pipeline:
    """Loaders, batch transforms and the preparation record of a run; `known` is a resumed
    checkpoint, whose pixel statistics are reused rather than computed again."""
    channels, size = model.input_size[0], cfg.image_size or model.input_size[1]
    # pixels of augment small's reflected border, checked against the side before any data is read
    shift = small_shift(size, None if cfg.translate < 0 else cfg.translate) if cfg.augment == "small" else None
    shards = Shard(world.rank, world.size, cfg.batch_size), Shard(world.rank, world.size)  # train, val
    workers = default_workers() if cfg.workers < 0 else cfg.workers
    pin = device.type == "cuda"
    prepare = Prepare(cfg.augment, size, channels)
    decode_on = device if switch(cfg.device_decode, device) else None
    (train_split, val_split), bad = cached_splits(cfg, source, prepare, workers, decode_on, world)
    train = make_loader(train_split, prepare, batch_size=cfg.batch_size, shuffle=True, workers=workers, seed=cfg.seed,
                        pin_memory=pin, shard=shards[0], device=device, decode_on=decode_on)
    val = make_loader(val_split, prepare, batch_size=cfg.batch_size, shuffle=False, workers=workers, seed=cfg.seed,
                      pin_memory=pin, shard=shards[1], device=device, decode_on=decode_on)
    norm = resolved_input_norm(cfg)
    prep: dict[str, Any] = {"input_size": [channels, size, size], "mean": list(source.mean), "std": list(source.std),
                            "augment": cfg.augment, "translate": shift, "input_norm": norm, "mean_image": None,
                            "pca": None}
    if norm == "mean_image" or (cfg.augment == "paper" and cfg.lighting > 0):
        stats = pixel_stats_for(train_split, prepare, known, workers=workers, decode_on=decode_on)
        prep["pca"] = {"eigval": stats.eigval, "eigvec": stats.eigvec}
        if norm == "mean_image":
            # mean/std that turn (x/255 - mean)/std into x minus the mean image's channel means: what a
            # consumer that knows only per-channel statistics (an exported file's user) can apply
            mean = (stats.mean_image.mean(dim=(1, 2)) / 255).tolist()
            prep.update(mean_image=stats.mean_image, mean=mean, std=[1 / 255] * channels)
    nhwc = bf16_switch(cfg.channels_last, device)  # batches laid out as the model's weights are
    stats_kw = dict(size=size, channels=channels, **prep_stats(prep))
    augment = TrainAugment(cfg.augment, lighting=cfg.lighting, flip=cfg.flip, channels_last=nhwc, pca=prep_pca(prep),
                           translate=shift, **stats_kw).to(device)
    views = EvalViews(tta="center", channels_last=nhwc, **stats_kw).to(device)
    train_eval = None
    if cfg.train_eval_images:
        train_eval = make_loader(take(train_split, cfg.train_eval_images), prepare, batch_size=cfg.batch_size,
                                 shuffle=False, workers=workers, seed=cfg.seed, pin_memory=pin, shard=shards[1],
                                 device=device, decode_on=decode_on)
    return Pipeline(train, val, augment, views, prep, tuple(bad), train_eval)


def pixel_stats_for(split: Dataset, prepare: Prepare, known: dict[str, Any] | None, *, workers: int,
                    decode_on: torch.device | None = None) -> PixelStats:
    """The training split's mean image and RGB components (data/stats.py): a resumed run's own, or
    computed (cached)."""
    if known is not None and known.get("pca"):
        side = prepare.side
        mean_image = known.get("mean_image")
        if mean_image is None:
            mean_image = torch.zeros(len(known["pca"]["eigval"]), side, side)
        return PixelStats(mean_image, known["pca"]["eigval"], known["pca"]["eigvec"], 0)
    loader = make_loader(split, prepare, batch_size=256, shuffle=False, workers=workers, decode_on=decode_on)
    channels = prepare.to_channels.channels
    return cached_pixel_stats(split, lambda: iter(loader), channels=channels, side=prepare.side, preset=prepare.preset,
                              total=len(loader))


def cached_splits(cfg: TrainConfig, source: DataSource, prepare: Prepare, workers: int, decode_on: torch.device | None,
                  world: World = _ALONE) -> tuple[list[Dataset], list[BadImage]]:
    """The train and val splits, image files among them decoded and prepared into memory first
    where cfg.cache_images says so (data/decoded.py), and the unreadable files met doing it.

    auto caches when the prepared images take at most a quarter of the memory available, in one
    process (under torchrun every process would hold its own copy)."""
    splits = [source.split("train"), source.split("val")]
    # the files a reader skipped decoding into memory itself (a CIFAR-10 JPEG tree's), listed as the loader's
    known = [b for s in splits if isinstance(s, TensorImages) for b in s.bad]
    files = [s for s in splits if isinstance(s, ImageFiles)]
    if not files or cfg.cache_images == "off":
        return splits, known
    size = sum(prepared_bytes(f, prepare) for f in files)
    if cfg.cache_images == "auto" and (world.size > 1 or not fits(size)):
        return splits, known
    log(f"decoding {sum(len(f) for f in files)} image files once into memory ({size / 1e6:,.0f} MB; "
        f"--cache-images off reads them in every epoch)")
    bad: list[BadImage] = list(known)
    for i, (name, split) in enumerate(zip(("train", "val"), splits)):
        if isinstance(split, ImageFiles):
            splits[i] = decode_split(split, prepare, workers=workers, decode_on=decode_on, strict=cfg.strict,
                                     what=f"{name} images")
            bad += splits[i].bad  # type: ignore[attr-defined]
    return splits, bad


def tta_pipeline(cfg: TrainConfig, source: DataSource, prep: dict[str, Any], workers: int, device: torch.device,
                 world: World = _ALONE, split: str = "val", tta: str | None = None) -> tuple[Loader, EvalViews]:
    """The loader of `split` and the views of an evaluation with `tta` (default cfg.tta)."""
    channels, size, tta = prep["input_size"][0], prep["input_size"][1], tta or cfg.tta
    views = EvalViews(size=size, channels=channels, tta=tta, **prep_stats(prep)).to(device)
    prepare = eval_prepare(cfg.augment, size=size, channels=channels, tta=tta, translate=prep.get("translate"))
    loader = make_loader(source.split(split), prepare, batch_size=cfg.batch_size, shuffle=False, workers=workers,
                         seed=cfg.seed, shard=Shard(world.rank, world.size))
    return loader, views

