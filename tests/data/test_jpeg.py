"""JPEGs decoded on the training device a batch at a time (data/jpeg.py): the same prepared
pixels as the PIL path in the workers, files it cannot take handed to PIL, bad files counted.

On a GPU the decoder is nvJPEG; here it is torchvision's CPU decoder in the main process, the
same code path with another `device`. PIL (libjpeg-turbo too) is the independent reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED, file_state, finishes, write_unopenable
from PIL import Image

from alexnet.data.datasets import ImageFiles, take
from alexnet.data.images import BadImage, load_image
from alexnet.data.jpeg import decode_jpegs, read_encoded, upright
from alexnet.data.loader import DeviceDecoded, make_loader, set_epoch
from alexnet.data.transforms import Prepare

CPU = torch.device("cpu")


def photo(path, size=(60, 40), mode="RGB", seed=0, orientation=None):
    """A noisy (so lossy coding matters) JPEG at `path`, optionally with an EXIF orientation tag."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=85, exif=exif.tobytes())
    return str(path)


def batches(files: ImageFiles, prepare: Prepare, **kw):
    return list(make_loader(files, prepare, batch_size=4, shuffle=False, workers=0, **kw))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pil_applies_it(tmp_path, orientation):
    path = photo(tmp_path / "o.jpg", orientation=orientation)
    encoded = read_encoded(path)
    assert encoded is not None and encoded.orientation == orientation
    (stored,) = decode_jpegs([encoded._replace(orientation=1)], CPU)  # 3,40,60 as stored, not turned
    expected = torch.from_numpy(np.array(load_image(path))).permute(2, 0, 1)  # PIL's exif_transpose
    assert torch.equal(upright(stored, orientation), expected)


def test_only_rgb_and_grey_jpegs_go_to_the_device_decoder(tmp_path, monkeypatch):
    assert read_encoded(photo(tmp_path / "grey.jpg", mode="L")) is not None
    assert read_encoded(photo(tmp_path / "cmyk.jpg", mode="CMYK")) is None
    Image.new("RGB", (8, 8)).save(tmp_path / "p.png")
    assert read_encoded(str(tmp_path / "p.png")) is None
    assert read_encoded(str(tmp_path / "missing.jpg")) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a "decompression bomb": load_image refuses it
    assert read_encoded(photo(tmp_path / "big.jpg")) is None


def test_device_decoding_gives_the_pil_paths_batches(tmp_path):
    """Every kind of file in one tree: the device path prepares the same uint8 images, labels and
    bad files as the workers' PIL path, in the same order."""
    paths = [photo(tmp_path / "a.jpg", size=(60, 40)), photo(tmp_path / "b.jpg", size=(60, 40), seed=1),
             photo(tmp_path / "c.jpg", size=(30, 50), seed=2, orientation=6),
             photo(tmp_path / "d.jpg", mode="L", seed=3),
             photo(tmp_path / "e.jpg", mode="CMYK", seed=4), str(tmp_path / "f.png")]
    Image.new("RGB", (20, 20), (10, 200, 30)).save(paths[-1])
    good = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    paths += [str(tmp_path / "trunc.jpg"), str(tmp_path / "empty.jpg")]
    files = ImageFiles(paths, list(range(len(paths))))
    for channels in (3, 1):
        prepare = Prepare("paper", 28, channels)  # R = 32
        pil = batches(files, prepare)
        device = batches(files, prepare, decode_on=CPU)
        assert len(pil) == len(device) == 2
        for p, d in zip(pil, device):
            assert torch.equal(d.labels, p.labels)  # the sampler's order, whichever decoder read the file
            assert torch.equal(d.images, p.images) and d.images.shape[1] == channels  # N,C,32,32 bit for bit
            assert sorted(b.path for b in d.bad) == sorted(b.path for b in p.bad)
        assert sorted(b.path for x in device for b in x.bad) == sorted(paths[-2:])


def test_a_batch_of_only_bad_files_is_empty(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    (batch,) = batches(ImageFiles([str(tmp_path / "x.jpg")], [0]), Prepare("small", 8, 3), decode_on=CPU)
    assert batch.images.numel() == 0 and batch.labels.numel() == 0 and isinstance(batch.bad[0], BadImage)


def test_the_loader_keeps_its_epoch_order_and_workers(tmp_path):
    paths = [photo(tmp_path / f"{i}.jpg", seed=i) for i in range(10)]
    files = ImageFiles(paths, list(range(10)))
    loader = make_loader(files, Prepare("small", 8, 3), batch_size=4, shuffle=True, workers=1, seed=3, decode_on=CPU)
    plain = make_loader(files, Prepare("small", 8, 3), batch_size=4, shuffle=True, workers=1, seed=3)
    assert isinstance(loader, DeviceDecoded) and len(loader) == len(plain) == 3 and loader.num_workers == 1
    for epoch in (0, 1):
        set_epoch(loader, epoch)
        set_epoch(plain, epoch)
        assert [b.labels.tolist() for b in loader] == [b.labels.tolist() for b in plain]


@pytest.mark.skipif(not (SHARED / "imagenet-sample").is_dir(), reason="../shared/datasets/imagenet-sample is absent")
def test_imagenet_photographs_decode_as_pil_decodes_them():
    from alexnet.data import open_dataset

    files = take(open_dataset(f"folder:{SHARED / 'imagenet-sample'}").split("train"), 48)  # grey ones among them
    prepare = Prepare("paper", 224, 3)
    pil = batches(files, prepare)
    device = batches(files, prepare, decode_on=CPU)
    for p, d in zip(pil, device):
        assert torch.equal(d.labels, p.labels) and torch.equal(d.images, p.images)


def test_a_decoder_that_cannot_run_costs_speed_not_the_run(tmp_path, monkeypatch):
    import torchvision.io

    def broken(*args, **kwargs):
        raise NotImplementedError("torchvision was built without nvJPEG")

    monkeypatch.setattr(torchvision.io, "decode_jpeg", broken)
    files = ImageFiles([photo(tmp_path / f"{i}.jpg", seed=i, orientation=6 if i == 1 else None) for i in range(3)],
                       [0, 1, 2])
    prepare = Prepare("paper", 28, 3)
    (pil,) = batches(files, prepare)
    (device,) = batches(files, prepare, decode_on=CPU)  # every file handed to PIL in the main process
    assert torch.equal(device.images, pil.images) and torch.equal(device.labels, pil.labels) and not device.bad


def test_pipes_devices_and_huge_files_are_not_read_by_the_device_path(tmp_path):
    """The repro of issue 16: the worker read a file before load_image could check it, so a FIFO
    named .jpg blocked for ever and a link to /dev/zero grew until the kernel killed the run."""
    hostile = write_unopenable(tmp_path, huge_bytes=2**40)  # a pipe, a link to /dev/zero, a 1 TiB sparse file
    before = file_state(hostile.values())
    for path in hostile.values():
        assert finishes(lambda path=path: read_encoded(str(path))) is None  # not read: load_image says why
    paths = [photo(tmp_path / "good.jpg"), *map(str, hostile.values())]
    files = ImageFiles(paths, [0, 1, 2, 3])
    (batch,) = finishes(lambda: batches(files, Prepare("small", 8, 3), decode_on=CPU))
    assert batch.labels.tolist() == [0]
    reasons = {b.path: b.reason for b in batch.bad}
    assert reasons == {str(hostile["fifo"]): "not a regular file (a pipe or device)",
                       str(hostile["zero"]): "not a regular file (a pipe or device)",
                       str(hostile["huge"]): reasons[str(hostile["huge"])]}
    assert reasons[str(hostile["huge"])].startswith("file is too large")
    assert file_state(hostile.values()) == before
