"""`load_image`: broken files become BadImage (never an exception), odd modes become 'RGB' or 'L'."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import file_state, finishes, png_claiming, write_unopenable
from PIL import Image

from alexnet.data import BadImage, load_image
from alexnet.limits import IMAGE_FILE_BYTES

pytestmark = pytest.mark.usefixtures("isolated")


def _jpeg_bytes(size=(64, 64)) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _pixels(img: Image.Image) -> list:
    return np.asarray(img).ravel().tolist()


# --- broken files ------------------------------------------------------------------------------


def test_truncated_jpeg(tmp_path: Path):
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    result = load_image(path)
    assert isinstance(result, BadImage)
    assert result.path == str(path) and "truncated" in result.reason


def test_zero_byte_file(tmp_path: Path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert load_image(path) == BadImage(str(path), "empty file")


def test_text_named_jpg(tmp_path: Path):
    path = tmp_path / "page.jpg"
    path.write_text("<html><body>404 Not Found</body></html>")
    assert load_image(path) == BadImage(str(path), "not an image file")


def test_decompression_bomb_is_refused_without_allocating(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(50_000, 50_000))  # 7.5 GB if decoded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = load_image(path)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert isinstance(result, BadImage) and "pixels" in result.reason
    assert after - before < 200_000


def test_image_just_over_the_pixel_limit_is_refused(tmp_path: Path):
    # between 1x and 2x PIL's limit PIL only warns; load_image refuses those too
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(10_000, 10_000))
    result = load_image(path)
    assert isinstance(result, BadImage) and "pixels" in result.reason


def test_dangling_symlink_and_folder(tmp_path: Path):
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "nowhere.jpg")
    assert isinstance(load_image(link), BadImage)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    assert isinstance(load_image(folder), BadImage)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads files whatever their permissions: make the open fail

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(Image, "open", refuse)
    assert load_image(path) == BadImage(str(path), "permission denied")


# --- odd but valid images ----------------------------------------------------------------------


def test_rgb_and_grayscale_stay(tmp_path: Path):
    Image.new("RGB", (5, 4), (10, 20, 30)).save(tmp_path / "rgb.png")
    Image.new("L", (5, 4), 77).save(tmp_path / "gray.jpg")
    rgb, gray = load_image(tmp_path / "rgb.png"), load_image(tmp_path / "gray.jpg")
    assert rgb.mode == "RGB" and rgb.size == (5, 4) and rgb.getpixel((0, 0)) == (10, 20, 30)
    assert gray.mode == "L" and abs(gray.getpixel((2, 2)) - 77) <= 1


def test_bilevel_becomes_gray(tmp_path: Path):
    Image.new("1", (8, 8), 1).save(tmp_path / "bw.png")
    img = load_image(tmp_path / "bw.png")
    assert img.mode == "L" and img.getpixel((0, 0)) == 255


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red in ink
    img = load_image(tmp_path / "cmyk.jpg")
    assert img.mode == "RGB"
    r, g, b = img.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_to_8_bit(tmp_path: Path):
    a = np.array([[0, 32896, 65535, 257]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "deep.png")
    img = load_image(tmp_path / "deep.png")
    assert img.mode == "L"
    assert _pixels(img) == [0, 128, 255, 1]


def test_float_tiff_is_scaled_to_8_bit(tmp_path: Path):
    a = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(a).save(tmp_path / "float.tif")
    img = load_image(tmp_path / "float.tif")
    assert img.mode == "L" and _pixels(img) == [0, 128, 255]


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path):
    img = Image.new("P", (4, 2), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    for x in range(2, 4):
        for y in range(2):
            img.putpixel((x, y), 1)  # red on the right, index 0 (black, transparent) on the left
    img.save(tmp_path / "pal.png", transparency=0)
    loaded = load_image(tmp_path / "pal.png")
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (255, 255, 255) and loaded.getpixel((3, 1)) == (255, 0, 0)


def test_palette_without_transparency(tmp_path: Path):
    Image.new("RGB", (4, 4), (0, 0, 255)).convert("P").save(tmp_path / "pal.gif")
    loaded = load_image(tmp_path / "pal.gif")
    assert loaded.mode == "RGB" and loaded.getpixel((1, 1)) == (0, 0, 255)


def test_rgba_and_la_are_composited_on_white(tmp_path: Path):
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(0, 0, 0, 0), (255, 0, 0, 255), (0, 0, 0, 128)])
    rgba.save(tmp_path / "rgba.png")
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (255, 255, 255) and loaded.getpixel((1, 0)) == (255, 0, 0)
    assert all(120 <= v <= 135 for v in loaded.getpixel((2, 0)))

    la = Image.new("LA", (2, 1))
    la.putdata([(0, 0), (50, 255)])
    la.save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert loaded.mode == "L" and _pixels(loaded) == [255, 50]


def test_exif_orientation_is_applied(tmp_path: Path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # red left half, blue right half, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown rotated 90 degrees clockwise
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.mode == "RGB" and loaded.size == (20, 40)  # upright: portrait
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the stored left half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_animated_gif_gives_its_first_frame(tmp_path: Path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(tmp_path / "anim.gif")
    assert loaded.mode == "RGB" and loaded.getpixel((4, 4)) == (255, 0, 0)


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result: list = []
    reader = threading.Thread(target=lambda: result.append(load_image(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)  # opening a pipe with no writer blocks; load_image must not open it
    assert result, "load_image blocked on a named pipe"
    assert isinstance(result[0], BadImage) and "not a regular file" in result[0].reason


def test_a_link_to_dev_zero_and_a_huge_file_are_refused_without_reading(tmp_path: Path):
    # a link to /dev/zero never ends; a 1 TiB sparse file (no disk) would take hours to read
    files = write_unopenable(tmp_path, huge_bytes=2**40)
    before = file_state(files.values())
    results = finishes(lambda: {kind: load_image(path) for kind, path in files.items()})
    assert results["fifo"] == BadImage(str(files["fifo"]), "not a regular file (a pipe or device)")
    assert results["zero"] == BadImage(str(files["zero"]), "not a regular file (a pipe or device)")
    huge = results["huge"]
    assert isinstance(huge, BadImage) and huge.reason.startswith("file is too large (1 TiB, over the limit of")
    assert file_state(files.values()) == before  # the files are as they were


def test_the_image_file_limit_is_the_one_in_limits(tmp_path: Path):
    # just over IMAGE_FILE_BYTES is refused; a real picture just under any sane size is read
    path = tmp_path / "over.jpg"
    with open(path, "wb") as f:
        f.truncate(IMAGE_FILE_BYTES + 1)
    assert "too large" in load_image(path).reason
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").getpixel((0, 0)) == (1, 2, 3)
