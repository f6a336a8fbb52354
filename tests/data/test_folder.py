"""`folder:DIR`: trees with and without split folders, the deterministic split, and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import finishes, write_image
from PIL import Image

from alexnet.data import BadImage, open_dataset
from alexnet.data.folder import list_images, special_filesystems
from alexnet.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")


def test_train_val_and_test_folders(tmp_path: Path, image_tree):
    image_tree(tmp_path / "train", {"dog": 3, "cat": 2})
    image_tree(tmp_path / "val", {"cat": 1, "dog": 1})
    image_tree(tmp_path / "test", {"dog": 2})
    source = open_dataset(f"folder:{tmp_path}")
    assert source.name == "folder" and source.classes == ["cat", "dog"]
    assert source.channels == 3 and source.image_size is None and source.mean == (0.485, 0.456, 0.406)
    train, val, test = source.split("train"), source.split("val"), source.split("test")
    assert (len(train), len(val), len(test)) == (5, 2, 2) and test is not val
    assert sorted(train.targets) == [0, 0, 1, 1, 1] and test.targets == [1, 1]
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and label == train.targets[0]


def test_train_and_test_only(tmp_path: Path, image_tree):
    image_tree(tmp_path / "train", {"a": 2, "b": 2})
    image_tree(tmp_path / "test", {"a": 1})
    source = open_dataset(f"folder:{tmp_path}")
    assert source.split("val") is source.split("test") and len(source.split("val")) == 1


def test_single_tree_is_split_per_class_and_deterministically(tmp_path: Path, image_tree):
    image_tree(tmp_path, {"a": 20, "b": 10, "c": 1})
    source = open_dataset(f"folder:{tmp_path}", val_fraction=0.2, seed=5)
    train, val = source.split("train"), source.split("val")
    assert source.classes == ["a", "b", "c"] and source.split("test") is val
    assert sorted(val.targets) == [0, 0, 0, 0, 1, 1]  # 20% of each class; a single image stays in train
    assert not set(train.paths) & set(val.paths) and len(train) + len(val) == 31
    again = open_dataset(f"folder:{tmp_path}", val_fraction=0.2, seed=5).split("val")
    assert again.paths == val.paths
    other = open_dataset(f"folder:{tmp_path}", val_fraction=0.2, seed=6).split("val")
    assert other.paths != val.paths


def test_files_are_found_recursively_by_extension(tmp_path: Path):
    write_image(tmp_path / "x" / "1.JPG")
    write_image(tmp_path / "x" / "deep" / "er" / "2.Png")
    write_image(tmp_path / "x" / "3.webp")
    write_image(tmp_path / "x" / ".hidden.jpg")
    (tmp_path / "x" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "y" / "1.bmp")
    write_image(tmp_path / "y" / "2.tiff")
    Image.new("L", (8, 8)).save(tmp_path / "y" / "3.pgm")
    source = open_dataset(f"folder:{tmp_path}", val_fraction=0.5)
    names = sorted(Path(p).name for p in source.split("train").paths + source.split("val").paths)
    assert names == ["1.JPG", "1.bmp", "2.Png", "2.tiff", "3.pgm", "3.webp"]


def test_empty_class_folder_is_dropped_with_a_warning(tmp_path: Path, image_tree):
    image_tree(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match="empty"):
        source = open_dataset(f"folder:{tmp_path}")
    assert source.classes == ["a", "b"]


def test_broken_image_is_a_bad_image(tmp_path: Path, image_tree):
    image_tree(tmp_path / "train", {"a": 1})
    image_tree(tmp_path / "val", {"a": 1})
    (tmp_path / "train" / "a" / "zz.jpg").write_bytes(b"")
    train = open_dataset(f"folder:{tmp_path}").split("train")
    image, label = train[1]
    assert image == BadImage(str(tmp_path / "train" / "a" / "zz.jpg"), "empty file") and label == 0


def test_errors(tmp_path: Path):
    with pytest.raises(DataError, match=f"{tmp_path / 'missing'} does not exist"):
        open_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        open_dataset(f"folder:{tmp_path / 'file.txt'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"no images .* under {tmp_path / 'empty'}"):
        open_dataset(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "readme.md").write_text("x")
    with pytest.raises(DataError, match="no images"), pytest.warns(UserWarning):
        open_dataset(f"folder:{tmp_path / 'texts'}")
    write_image(tmp_path / "loose" / "1.jpg")
    with pytest.raises(DataError, match="one folder per class"):
        open_dataset(f"folder:{tmp_path / 'loose'}")
    with pytest.raises(Exception, match="folder needs a folder"):
        open_dataset("folder")


def test_val_class_unknown_to_train(tmp_path: Path, image_tree):
    image_tree(tmp_path / "train", {"a": 1})
    image_tree(tmp_path / "val", {"b": 1})
    with pytest.raises(DataError, match="not a class of the train folder"):
        open_dataset(f"folder:{tmp_path}")


# --- links out of the tree and kernel file systems (issue 16) ---------------------------------


def test_links_to_folders_are_followed_only_inside_the_tree(tmp_path: Path):
    root = tmp_path / "data"
    write_image(root / "cats" / "1.jpg")
    write_image(root / "dogs" / "1.jpg")
    write_image(root / "spare" / "cats" / "2.jpg")  # inside the tree: a link to it is followed
    write_image(tmp_path / "elsewhere" / "3.jpg")  # outside: a link to it is not
    (root / "cats" / "more").symlink_to(root / "spare" / "cats")
    (root / "cats" / "out").symlink_to(tmp_path / "elsewhere")
    (root / "dogs" / "everything").symlink_to("/")  # the whole file system, as /proc/*/root is
    (root / "dogs" / "4.jpg").symlink_to(write_image(tmp_path / "elsewhere" / "4.jpg"))  # a link to a file: listed
    with pytest.warns(UserWarning) as warned:
        source = finishes(lambda: open_dataset(f"folder:{root}", val_fraction=0.5))
    passed = sorted(str(w.message).split(", e.g. ")[1].split(" ")[0] for w in warned)
    assert passed == [str(root / "cats" / "out"), str(root / "dogs" / "everything")]
    assert all(f"not entering 1 folder(s) that lead out of {root} or onto a special file system" in str(w.message)
               for w in warned)
    listed = sorted(str(Path(p).relative_to(root)) for p in source.split("train").paths + source.split("val").paths)
    assert listed == ["cats/1.jpg", "cats/more/2.jpg", "dogs/1.jpg", "dogs/4.jpg", "spare/cats/2.jpg"]


@pytest.mark.skipif(not Path("/proc/self/mountinfo").is_file(), reason="no /proc file system (not Linux)")
def test_kernel_file_systems_are_never_walked():
    # /proc links to every process's root folder: `folder:/proc` walked the whole file system
    special = special_filesystems()
    assert special.get(os.stat("/proc").st_dev) == "proc" and special.get(os.stat("/sys").st_dev) == "sysfs"
    with pytest.raises(DataError) as err:
        finishes(lambda: open_dataset("folder:/proc"))
    assert str(err.value) == "folder: /proc is on the proc file system, which holds no image files"
    with pytest.warns(UserWarning, match="special file system"):  # nor is one entered from outside it
        assert finishes(lambda: list_images(Path("/proc/self"), within=Path("/"))) == []
