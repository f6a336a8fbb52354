"""ImageNet (ILSVRC-2012) from its usual folder layout, with the 1000-class index shipped in the package.

Spec: ``imagenet:DIR``. ``DIR/train/<wnid>/*.JPEG`` holds the training images (a folder per
WordNet id, searched recursively). ``DIR/val/`` is either sorted the same way, or flat
(``ILSVRC2012_val_00000001.JPEG`` ...) with its labels in the first of:
  (i)   ``DIR/val_labels.txt``: lines ``FILENAME WNID`` (blank lines and ``#`` comments allowed);
  (ii)  the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (one ILSVRC2012_ID per line, in
        file-number order) with its ``meta.mat`` (ILSVRC2012_ID -> WNID; read with scipy), in DIR
        or DIR/ILSVRC2012_devkit_t12/data;
  (iii) Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first WNID of the
        prediction string), in DIR or up to three folders above it (Kaggle puts the images in
        ``ILSVRC/Data/CLS-LOC/``).

Labels always index the full 1000-class list of ``imagenet_classes.tsv`` (sorted WordNet ids,
the order of the ILSVRC-2012 devkit and of Keras' ``imagenet_class_index.json``), even when the
train folder holds only some of the classes, so that a model's output i always means the same
class. Two class names that occur twice in that index are told apart there: 'crane (bird)' /
'crane (machine)' and 'maillot' / 'maillot (tank suit)'.
"""

from __future__ import annotations

import csv
import functools
import io
import warnings
from importlib import resources
from pathlib import Path

from alexnet.data.datasets import DataSource, ImageFiles
from alexnet.data.folder import IMAGENET_MEAN, IMAGENET_STD, scan_class_folders
from alexnet.data.images import is_image_file
from alexnet.errors import DataError, UsageError, reraise_signal
from alexnet.limits import LABEL_FILE_BYTES, Refused, check_size, read_regular

VAL_LABELS_TXT = "val_labels.txt"
DEVKIT_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
KAGGLE_SOLUTION = "LOC_val_solution.csv"


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 1000 ILSVRC-2012 classes: (wnids, human-readable names), index = label."""
    text = resources.files("alexnet.data").joinpath("imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    if len(rows) != 1000 or any(len(r) != 2 for r in rows):
        raise DataError("imagenet_classes.tsv in the alexnet package is damaged: reinstall alexnet")
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def open_imagenet(
    arg: str | None, *, seed: int = 0, val_fraction: float = 0.1, download: bool = True
) -> DataSource:
    """Open an ILSVRC-2012 folder (see the module docstring); val doubles as 'test'."""
    if not arg:
        raise UsageError("imagenet needs a folder: imagenet:DIR")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"imagenet: {root} is not a folder")
    wnids, names = imagenet_classes()
    index = {w: i for i, w in enumerate(wnids)}

    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"imagenet: {root} has no {split}/ folder")
    train = _sorted_split(root / "train", index)
    if len(train) == 0:
        raise DataError(f"imagenet: no images in the class folders of {root / 'train'}")
    val_dir = root / "val"
    val = _sorted_split(val_dir, index)
    if len(val) == 0:
        val = _flat_val(root, val_dir, index)

    return DataSource(
        name="imagenet",
        spec=f"imagenet:{arg}",
        classes=list(names),
        splits={"train": train, "val": val, "test": val},
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        image_size=None,
        wnids=list(wnids),
    )


def _sorted_split(folder: Path, index: dict[str, int]) -> ImageFiles:
    """A split whose images sit in one folder per WordNet id (empty if it has no such folders)."""
    paths, targets = [], []
    for wnid, files in scan_class_folders(folder).items():
        if wnid not in index:
            raise DataError(f"imagenet: {folder / wnid} is not named after an ILSVRC-2012 class (a WordNet id such as "
                            "n01440764)")
        paths += files
        targets += [index[wnid]] * len(files)
    return ImageFiles(paths, targets)


def _flat_val(root: Path, val_dir: Path, index: dict[str, int]) -> ImageFiles:
    """The flat val folder, labelled from the first label file found."""
    files = sorted(str(p) for p in val_dir.iterdir() if is_image_file(p.name) and not p.name.startswith("."))
    if not files:
        raise DataError(f"imagenet: no images in {val_dir}, flat or in class folders")
    source, labels = _val_labels(root)
    paths, targets, unlabelled = [], [], 0
    for path in files:
        wnid = labels.get(Path(path).name) or labels.get(Path(path).stem)
        if wnid is None:
            unlabelled += 1
            continue
        if wnid not in index:
            raise DataError(f"imagenet: {source} gives {wnid!r} for {Path(path).name}, not an ILSVRC-2012 class")
        paths.append(path)
        targets.append(index[wnid])
    if not paths:
        raise DataError(f"imagenet: {source} labels none of the images in {val_dir}")
    if unlabelled:
        warnings.warn(f"imagenet: {unlabelled} images in {val_dir} have no label in {source}; skipped", stacklevel=3)
    return ImageFiles(paths, targets)


def _val_labels(root: Path) -> tuple[Path, dict[str, str]]:
    """(label file, {file name or stem: wnid}) from the first label source found."""
    txt = root / VAL_LABELS_TXT
    if txt.is_file():
        return txt, _read_val_labels_txt(txt)
    for folder in (root, root / "ILSVRC2012_devkit_t12" / "data"):
        if (folder / DEVKIT_GROUND_TRUTH).is_file():
            return folder / DEVKIT_GROUND_TRUTH, _read_devkit(folder)
    for folder in [root, *list(root.resolve().parents)[:3]]:
        if (folder / KAGGLE_SOLUTION).is_file():
            return folder / KAGGLE_SOLUTION, _read_kaggle(folder / KAGGLE_SOLUTION)
    raise DataError(
        f"imagenet: {root / 'val'} is flat (no class folders) and no labels were found: looked for "
        f"{VAL_LABELS_TXT} and {DEVKIT_GROUND_TRUTH} (with meta.mat) in {root} and "
        f"{root / 'ILSVRC2012_devkit_t12' / 'data'}, and {KAGGLE_SOLUTION} in {root} and above"
    )


def _read_val_labels_txt(path: Path) -> dict[str, str]:
    labels = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{path}:{number}: expected 'FILENAME WNID', found {line!r}")
        labels[Path(parts[0]).name] = parts[1]
    return labels


def _read_devkit(folder: Path) -> dict[str, str]:
    """{'ILSVRC2012_val_00000001': wnid, ...} from the devkit's ground truth and meta.mat."""
    meta = folder / "meta.mat"
    if not meta.is_file():
        raise DataError(f"imagenet: {folder / DEVKIT_GROUND_TRUTH} needs the devkit's meta.mat beside it")
    try:
        from scipy.io import loadmat  # only here: only the devkit route needs scipy
    except ImportError as e:
        reraise_signal(e)  # a signal during the import, not a missing package
        raise DataError(f"imagenet: reading {meta} needs scipy (pip install scipy), or give the labels as "
                        f"{VAL_LABELS_TXT}") from None
    try:
        check_size(meta.stat().st_size, LABEL_FILE_BYTES)
    except Refused as err:
        raise DataError(f"{meta}: not read: {err}") from None
    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        id_to_wnid = {int(i): str(w) for i, w in zip(synsets["ILSVRC2012_ID"], synsets["WNID"])}
    except Exception as err:  # scipy raises many types on a malformed file
        raise DataError(f"{meta}: not the devkit's meta.mat ({' '.join(str(err).split())[:150]})") from None

    gt = folder / DEVKIT_GROUND_TRUTH
    labels = {}
    for number, line in enumerate(_read_text(gt).split(), start=1):
        try:
            labels[f"ILSVRC2012_val_{number:08d}"] = id_to_wnid[int(line)]
        except (ValueError, KeyError):
            raise DataError(f"{gt}: line {number}: {line!r} is not an ILSVRC2012_ID of {meta}") from None
    return labels


def _read_kaggle(path: Path) -> dict[str, str]:
    labels = {}
    rows = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = next(rows, None)
    if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
        raise DataError(f"{path}: expected the header 'ImageId,PredictionString'")
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) < 2 or not row[1].split():
            raise DataError(f"{path}:{number}: expected 'ImageId,WNID ...', found {','.join(row)!r}")
        labels[row[0].strip()] = row[1].split()[0]
    return labels


def _read_text(path: Path) -> str:
    try:
        return read_regular(path, LABEL_FILE_BYTES).decode("utf-8")
    except Refused as err:
        raise DataError(f"{path}: not read: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None

