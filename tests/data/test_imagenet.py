"""ImageNet layouts written by the tests: sorted and flat val, each kind of val label file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, write_image
from PIL import Image

from alexnet.data import BadImage, open_dataset
from alexnet.data.imagenet import imagenet_classes
from alexnet.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated")

WNIDS, NAMES = imagenet_classes()
TRAIN = {"n01440764": 2, "n01443537": 1, "n15075141": 2}  # tench, goldfish, toilet tissue (last)
VAL = [("ILSVRC2012_val_00000001.JPEG", "n15075141"), ("ILSVRC2012_val_00000002.JPEG", "n01440764"),
       ("ILSVRC2012_val_00000003.JPEG", "n01443537")]


def write_train(root: Path) -> None:
    for wnid, n in TRAIN.items():
        for i in range(n):
            write_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", size=(40, 30))


def write_flat_val(root: Path) -> None:
    for name, _ in VAL:
        write_image(root / "val" / name, size=(30, 40))


def _check(source) -> None:
    assert source.name == "imagenet" and len(source.classes) == 1000 and len(source.wnids) == 1000
    assert source.classes[0] == "tench" and source.wnids[0] == "n01440764"
    assert source.channels == 3 and source.image_size is None
    assert source.mean == (0.485, 0.456, 0.406) and source.std == (0.229, 0.224, 0.225)
    train, val = source.split("train"), source.split("val")
    assert len(train) == 5 and sorted(train.targets) == [0, 0, 1, 999, 999]
    for path, label in zip(train.paths, train.targets):
        assert Path(path).parent.name == source.wnids[label]
    assert sorted(zip((Path(p).name for p in val.paths), val.targets)) == [
        (name, WNIDS.index(wnid)) for name, wnid in VAL
    ]
    image, label = val[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (30, 40)
    assert source.split("test") is val


def test_class_index_shipped_with_the_package():
    assert len(WNIDS) == len(set(WNIDS)) == 1000 and list(WNIDS) == sorted(WNIDS)
    assert (WNIDS[0], NAMES[0]) == ("n01440764", "tench")
    assert (WNIDS[999], NAMES[999]) == ("n15075141", "toilet tissue")
    assert len(set(NAMES)) == 1000  # the two duplicated names are told apart


@pytest.mark.skipif(not (SHARED / "imagenet_class_index.json").is_file(), reason=f"{SHARED} is absent")
def test_class_index_matches_the_keras_json():
    index = json.loads((SHARED / "imagenet_class_index.json").read_text())
    for i in range(1000):
        wnid, name = index[str(i)]
        assert WNIDS[i] == wnid
        assert NAMES[i].split(" (")[0] == name.replace("_", " ")


def test_sorted_val(tmp_path: Path):
    write_train(tmp_path)
    for name, wnid in VAL:
        write_image(tmp_path / "val" / wnid / name, size=(30, 40))
    _check(open_dataset(f"imagenet:{tmp_path}"))


def test_flat_val_with_val_labels_txt(tmp_path: Path):
    write_train(tmp_path)
    write_flat_val(tmp_path)
    lines = ["# FILENAME WNID", ""] + [f"{name} {wnid}" for name, wnid in VAL]
    (tmp_path / "val_labels.txt").write_text("\n".join(lines) + "\n")
    _check(open_dataset(f"imagenet:{tmp_path}"))


def test_flat_val_with_kaggle_solution_above(tmp_path: Path):
    root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    write_train(root)
    write_flat_val(root)
    rows = ["ImageId,PredictionString"] + [f"{Path(n).stem},{w} 1 2 30 40 {w} 5 6 7 8" for n, w in VAL]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    _check(open_dataset(f"imagenet:{root}"))


def _write_devkit(root: Path) -> Path:
    from scipy.io import savemat

    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    # meta.mat's synsets: ILSVRC2012_ID 1..1000 are the leaf classes (in the devkit's own order,
    # which is not the sorted one), higher ids are inner WordNet nodes
    rng = np.random.default_rng(0)
    order = rng.permutation(1000)
    synsets = np.zeros((1001, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    for k, i in enumerate(order):
        synsets[k, 0] = (k + 1, WNIDS[i], NAMES[i], 0)
    synsets[1000, 0] = (1001, "n00001740", "entity", 1)
    savemat(data / "meta.mat", {"synsets": synsets})
    ids = {WNIDS[i]: k + 1 for k, i in enumerate(order)}
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ids[w]}\n" for _, w in VAL))
    return data


def test_flat_val_with_the_devkit(tmp_path: Path):
    pytest.importorskip("scipy", reason="scipy is not installed: the devkit's meta.mat needs it")
    write_train(tmp_path)
    write_flat_val(tmp_path)
    _write_devkit(tmp_path)
    _check(open_dataset(f"imagenet:{tmp_path}"))


def test_devkit_without_scipy_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_train(tmp_path)
    write_flat_val(tmp_path)
    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    (data / "meta.mat").write_bytes(b"")
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n3\n")
    monkeypatch.setitem(sys.modules, "scipy", None)  # `import scipy...` now fails
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(DataError, match="needs scipy"):
        open_dataset(f"imagenet:{tmp_path}")


def test_a_broken_file_is_a_bad_image(tmp_path: Path):
    write_train(tmp_path)
    for name, wnid in VAL:
        write_image(tmp_path / "val" / wnid / name)
    broken = tmp_path / "train" / "n01440764" / "n01440764_9.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    train = open_dataset(f"imagenet:{tmp_path}").split("train")
    index = train.paths.index(str(broken))
    image, label = train[index]
    assert isinstance(image, BadImage) and image.path == str(broken) and label == 0


def test_errors(tmp_path: Path):
    with pytest.raises(DataError, match="not a folder"):
        open_dataset(f"imagenet:{tmp_path / 'missing'}")
    write_train(tmp_path)
    with pytest.raises(DataError, match="no val/ folder"):
        open_dataset(f"imagenet:{tmp_path}")
    write_flat_val(tmp_path)
    with pytest.raises(DataError, match="no labels were found") as err:
        open_dataset(f"imagenet:{tmp_path}")
    assert "val_labels.txt" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "val_labels.txt").write_text("ILSVRC2012_val_00000001.JPEG\n")
    with pytest.raises(DataError, match=r"val_labels.txt:1"):
        open_dataset(f"imagenet:{tmp_path}")
    (tmp_path / "val_labels.txt").write_text("ILSVRC2012_val_00000001.JPEG n99999999\n")
    with pytest.raises(DataError, match="n99999999"):
        open_dataset(f"imagenet:{tmp_path}")
    write_image(tmp_path / "train" / "cats" / "0.jpg")
    with pytest.raises(DataError, match="cats"):
        open_dataset(f"imagenet:{tmp_path}")


@pytest.mark.parametrize("name", ["val_labels.txt", "LOC_val_solution.csv"])
def test_a_label_file_claiming_a_tib_is_one_line_and_never_read(tmp_path: Path, name: str):
    """A sparse file (no disk used) of 1 TiB where the labels should be: refused by its size."""
    root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" if name.endswith(".csv") else tmp_path
    write_train(root)
    write_flat_val(root)
    with open(tmp_path / name, "wb") as f:
        f.write(b"ImageId,PredictionString\n" if name.endswith(".csv") else b"ILSVRC2012_val_00000001.JPEG n01440764\n")
        f.truncate(1 << 40)
    with pytest.raises(DataError, match=r"not read: file is too large \(1 TiB, over the limit of 64 MiB\)") as err:
        open_dataset(f"imagenet:{root}")
    assert "\n" not in str(err.value)
