"""End to end: a corpus of bad and odd inputs through `alexnet train`, `eval` and `predict`.

The corpus is an image-folder dataset (train/ and test/ of class folders) holding, besides small
good pictures, every kind of file a real photo collection turns up: broken ones (a truncated
JPEG, a zero-byte file, a text file named .jpg, a PNG whose header claims 50,000 x 50,000 pixels,
an unreadable file, a dangling symbolic link, a named pipe called .jpg, a link to /dev/zero, a
1 TiB sparse file) and odd but valid ones (CMYK, 16-bit, palette with
transparency, grayscale, RGBA, EXIF-rotated, an animated GIF, a name that is not valid UTF-8),
plus an empty class folder; it goes through every decoding path (the cache, the workers, the
device decoder). Then malformed IDX files (gzip bombs, headers claiming exabytes or 0x0 images),
a CIFAR batch of the wrong shape, CIFAR-10 trees and archives with files that must not be read
whole, and `folder:/proc`. Every broken file is left as it was.

Every command runs as a subprocess, as a user runs it, under a time limit (a hang fails the test)
and with its peak memory measured (``os.wait4``: the child's own rusage, workers included).
Expected: odd files are converted and used; broken ones are skipped, counted and listed by path
in ``bad_images.txt`` (``--strict`` stops at the first, naming it, exit 2); predict gives an
error entry for each broken file and predictions for the rest (exit 1); malformed dataset files
give a one-line error and exit 2. Nothing prints a traceback.

The commands' stdout is strict UTF-8 (as under an ordinary en_US.UTF-8 locale), so a file name
that is not valid UTF-8 must be printed safely. Run as root, the commands lose the capabilities
that let root read any file, so the chmod-000 file is unreadable to them as to any user (where
the container forbids that, the unreadable file is left out of the corpus).
"""

from __future__ import annotations

import ctypes
import functools
import gzip
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180  # per command: far above the few seconds each takes, so only a hang reaches it
MAX_RSS_KIB = 3 * 1024 * 1024  # 3 GiB: a tiny net on 40x40 pictures needs a fraction of this

CLASSES = ("circle", "square", "stripes")
BASE_COLOURS = {"circle": (200, 40, 40), "square": (40, 200, 40), "stripes": (40, 40, 200)}
GOOD_TRAIN, GOOD_TEST = 8, 3  # good pictures per class


# --- running the command line ------------------------------------------------------------------


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str
    max_rss_kib: int  # the child's peak resident memory, its own children (workers) included

    def __str__(self) -> str:
        return f"alexnet {' '.join(self.args)} -> {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def _drop_root_file_access() -> None:
    """preexec_fn for root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    that after exec the child, though uid 0, is refused a chmod-000 file like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@functools.cache
def file_permissions() -> tuple[bool, object]:
    """(whether a chmod-000 file is unreadable to the commands, the preexec_fn that makes it so).

    Not root: it is. Root: only with the capability drop above, where the container allows it."""
    if os.geteuid() != 0:
        return True, None
    with tempfile.TemporaryDirectory() as tmp:
        secret = Path(tmp) / "secret"
        secret.write_text("x")
        secret.chmod(0)
        try:
            probe = subprocess.run([sys.executable, "-c", f"open({str(secret)!r}).read()"], capture_output=True,
                                   timeout=60, preexec_fn=_drop_root_file_access)
        except (OSError, subprocess.SubprocessError):
            return False, None
    if probe.returncode != 0 and b"PermissionError" in probe.stderr:
        return True, _drop_root_file_access
    return False, None


def alexnet(*args: str, cwd: Path, timeout: float = TIMEOUT_S) -> Run:
    """Run ``python -m alexnet ARGS`` in `cwd` with no terminal, killing it (and failing) past `timeout`.

    stdout is strict UTF-8 (PYTHONIOENCODING), as under an ordinary en_US.UTF-8 locale: a file
    name that is not valid UTF-8 must be printed some safe way, not crash the print."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "ALEXNET_CACHE": str(cwd / ".cache"),
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2", "PYTHONIOENCODING": "utf-8"}
    env.pop("ALEXNET_DATA", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "alexnet", *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, cwd=cwd, env=env, start_new_session=True,
                                preexec_fn=file_permissions()[1])
        deadline = time.monotonic() + timeout
        while True:
            # wait4, not Popen.wait: it gives this child's own rusage (ru_maxrss in KiB on Linux)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # the child and its DataLoader workers
                os.wait4(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
                out.seek(0)
                err.seek(0)
                pytest.fail(f"alexnet {' '.join(args)} did not finish in {timeout} s (a hang?)\n"
                            f"stdout: {out.read()[-2000:]!r}\nstderr: {err.read()[-2000:]!r}")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_out = out.read().decode("utf-8", "surrogateescape")
        text_err = err.read().decode("utf-8", "surrogateescape")
    return Run(list(args), proc.returncode, text_out, text_err, usage.ru_maxrss)


def assert_clean(run: Run) -> None:
    """No traceback anywhere, and the memory stayed bounded."""
    for stream in (run.out, run.err):
        assert "Traceback" not in stream, str(run)
    assert run.max_rss_kib < MAX_RSS_KIB, f"peak memory {run.max_rss_kib / 2**20:.2f} GiB\n{run}"


def assert_one_line_error(run: Run, verb: str, *words: str) -> str:
    """Exit 2 and a single `alexnet VERB: error: ...` line (the last one) that contains `words`."""
    assert run.code == 2, str(run)
    assert_clean(run)
    lines = [line for line in run.err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert lines and lines[-1].startswith(f"alexnet {verb}: error: "), str(run)
    assert errors == [lines[-1]], str(run)
    for word in words:
        assert word in lines[-1], f"{word!r} not in the error line\n{run}"
    return lines[-1]


# --- writing the files -------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims `width` x `height` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))


def picture(cls: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """An H,W,3 uint8 picture of class `cls`: its base colour plus noise (the classes are told apart by colour)."""
    base = np.array(BASE_COLOURS[cls], dtype=np.float64)
    return np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_odd(folder: Path, kind: str, cls: str, rng: np.random.Generator, tag: str = "") -> str:
    """An odd but valid picture of class `cls` in `folder`; returns its path as the scanner lists it."""
    rgb = Image.fromarray(picture(cls, rng))
    stem = f"odd-{kind}{tag}"
    if kind == "cmyk":
        path = folder / f"{stem}.jpg"
        rgb.convert("CMYK").save(path)
    elif kind == "16bit":
        path = folder / f"{stem}.png"
        gray = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(gray).save(path)  # mode I;16
    elif kind == "palette":
        path = folder / f"{stem}.png"
        pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        pal.putpixel((0, 0), 0)
        pal.save(path, transparency=0)
    elif kind == "gray":
        path = folder / f"{stem}.jpg"
        rgb.convert("L").save(path)
    elif kind == "rgba":
        path = folder / f"{stem}.png"
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)))
        rgba.save(path)
    elif kind == "exif":
        path = folder / f"{stem}.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees to show it upright
        rgb.crop((0, 0, 40, 24)).save(path, exif=exif)
    elif kind == "gif":
        path = folder / f"{stem}.gif"
        frames = [rgb, Image.fromarray(picture(cls, rng)), Image.fromarray(picture(cls, rng))]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
    elif kind == "non-utf8":
        raw = os.fsencode(folder) + b"/caf\xe9" + tag.encode() + b".jpg"  # Latin-1 e-acute: not UTF-8
        with open(raw, "wb") as f:
            f.write(encoded(rgb, "JPEG"))
        return os.fsdecode(raw)
    else:
        raise ValueError(kind)
    return str(path)


def write_broken(folder: Path, kind: str, tag: str = "") -> str | None:
    """A broken file in `folder`; returns its path as the scanner lists it (None: not broken here)."""
    stem = f"bad-{kind}{tag}"
    good_jpeg = encoded(Image.fromarray(picture("circle", np.random.default_rng(9))), "JPEG")
    if kind == "truncated":
        path = folder / f"{stem}.jpg"
        path.write_bytes(good_jpeg[: len(good_jpeg) // 2])
    elif kind == "empty":
        path = folder / f"{stem}.jpg"
        path.write_bytes(b"")
    elif kind == "text":
        path = folder / f"{stem}.jpg"
        path.write_text("<html><body><h1>404 Not Found</h1></body></html>\n")
    elif kind == "bomb":
        path = folder / f"{stem}.png"
        path.write_bytes(png_claiming(50_000, 50_000))  # 7.5 GB of pixels if anyone decoded it
    elif kind == "unreadable":
        path = folder / f"{stem}.png"
        path.write_bytes(encoded(Image.new("RGB", (40, 40), (1, 2, 3)), "PNG"))
        path.chmod(0)
        if not file_permissions()[0]:  # root that cannot give up reading everything: leave it out
            path.unlink()
            return None
    elif kind == "dangling":
        path = folder / f"{stem}.jpg"
        path.symlink_to(folder / "no-such-target.jpg")
    elif kind == "fifo":  # a named pipe with no writer: opening it to read would block forever
        path = folder / f"{stem}.jpg"
        os.mkfifo(path)
    elif kind == "devzero":  # a link to a device that never ends: read whole, it filled 22 GB
        path = folder / f"{stem}.jpg"
        path.symlink_to("/dev/zero")
    elif kind == "huge":  # a 1 TiB sparse file (no disk) that starts like a JPEG
        path = folder / f"{stem}.jpg"
        with open(path, "wb") as f:
            f.write(b"\xff\xd8\xff\xe0")
            f.truncate(2**40)
    else:
        raise ValueError(kind)
    return str(path)


ODD_KINDS = ("cmyk", "16bit", "palette", "gray", "rgba", "exif", "gif", "non-utf8")
BROKEN_KINDS = ("truncated", "empty", "text", "bomb", "unreadable", "dangling", "fifo", "devzero", "huge")


def file_state(paths) -> dict[str, tuple[int, int, str]]:
    """{path: (lstat mode, lstat size, link target)}: the same before and after a command that left the files alone."""
    return {str(p): (os.lstat(p).st_mode, os.lstat(p).st_size, os.readlink(p) if os.path.islink(p) else "")
            for p in paths}


@dataclass
class Corpus:
    root: Path
    broken: dict[str, list[str]] = field(default_factory=lambda: {"train": [], "test": []})
    odd: dict[str, list[str]] = field(default_factory=lambda: {"train": [], "test": []})
    good: dict[str, list[str]] = field(default_factory=lambda: {"train": [], "test": []})
    state: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # the broken files as written

    def usable(self, split: str) -> int:
        return len(self.good[split]) + len(self.odd[split])

    def all_broken(self) -> set[str]:
        return set(self.broken["train"]) | set(self.broken["test"])

    def all_usable(self) -> set[str]:
        return {p for s in ("train", "test") for p in self.good[s] + self.odd[s]}


def build_corpus(root: Path) -> Corpus:
    """DIR/train/<class>/ and DIR/test/<class>/ with good, odd and broken files, and an empty class."""
    corpus = Corpus(root)
    rng = np.random.default_rng(0)
    for split, n in (("train", GOOD_TRAIN), ("test", GOOD_TEST)):
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                img = Image.fromarray(picture(cls, rng))
                path = folder / f"{i:03d}.{'jpg' if i % 2 else 'png'}"
                img.save(path)
                corpus.good[split].append(str(path))
    (root / "train" / "empty_class").mkdir()  # a class folder with no images: dropped with a warning
    (root / "train" / "empty_class" / "notes.txt").write_text("not an image\n")

    # every odd and every broken kind in train (spread over the classes), some again in test
    for i, kind in enumerate(ODD_KINDS):
        cls = CLASSES[i % len(CLASSES)]
        corpus.odd["train"].append(write_odd(root / "train" / cls, kind, cls, rng))
    for i, kind in enumerate(("rgba", "non-utf8", "cmyk")):
        corpus.odd["test"].append(write_odd(root / "test" / CLASSES[i], kind, CLASSES[i], rng, tag="-t"))
    for i, kind in enumerate(BROKEN_KINDS):
        path = write_broken(root / "train" / CLASSES[i % len(CLASSES)], kind)
        if path:
            corpus.broken["train"].append(path)
    for i, kind in enumerate(("truncated", "bomb", "dangling", "fifo", "devzero")):
        corpus.broken["test"].append(write_broken(root / "test" / CLASSES[i % len(CLASSES)], kind, tag="-t"))
    corpus.state = file_state(corpus.all_broken())
    return corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus") / "photos")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The commands' working directory (nothing lands in the repository)."""
    return tmp_path_factory.mktemp("cwd")


TRAIN_ARGS = ("--model", "alexnet_mini", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
              "--device", "cpu", "--no-tensorboard", "--json")


def train(corpus: Corpus, workdir: Path, out: str, *extra: str) -> Run:
    return alexnet("train", "--data", f"folder:{corpus.root}", *TRAIN_ARGS, "--out", str(workdir / out), *extra,
                   cwd=workdir)


def read_report(run_dir: Path) -> dict[str, str]:
    """bad_images.txt as {path: reason}; paths are the file system's bytes, read back as `os.fsdecode` gives them."""
    report = run_dir / "bad_images.txt"
    assert report.is_file(), f"no {report}"
    rows = {}
    for line in report.read_bytes().splitlines():
        path, sep, reason = line.partition(b"\t")
        assert sep and reason.strip(), f"malformed line {line!r} in {report}"
        rows[os.fsdecode(path)] = reason.decode("utf-8", "replace")
    return rows


@pytest.fixture(scope="module")
def trained(corpus: Corpus, workdir: Path) -> tuple[Run, Path]:
    """The corpus through `alexnet train --workers 0`; eval and predict use its run folder."""
    return train(corpus, workdir, "run0", "--workers", "0"), workdir / "run0"


# --- training -----------------------------------------------------------------------------------


def check_training(run: Run, run_dir: Path, corpus: Corpus) -> None:
    assert run.code == 0, str(run)
    assert_clean(run)
    # broken files: skipped, counted and listed by path, and nothing else is listed
    report = read_report(run_dir)
    assert set(report) == corpus.all_broken(), str(run)
    assert not set(report) & corpus.all_usable()
    assert f"skipped {len(corpus.all_broken())} unreadable image(s)" in run.err, str(run)
    assert "bad_images.txt" in run.err, str(run)
    result = json.loads(run.out.strip().splitlines()[-1])
    assert result["bad_images"] == len(corpus.all_broken())
    assert result["epochs"] == 1 and np.isfinite(result["final_top1"])
    # every good and odd training picture was used, and nothing else
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(metrics) == 1 and metrics[0]["images"] == corpus.usable("train"), metrics
    assert np.isfinite(metrics[0]["train_loss"]) and np.isfinite(metrics[0]["val_loss"])
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    # the empty class folder was dropped, so the net has the three real classes
    assert f"{len(CLASSES)} classes" in run.err and "empty_class" in run.err, str(run)
    assert file_state(corpus.all_broken()) == corpus.state  # the broken files are as they were


def test_train_skips_and_reports_broken_files(trained: tuple[Run, Path], corpus: Corpus):
    run, run_dir = trained
    check_training(run, run_dir, corpus)


def test_train_with_worker_processes(corpus: Corpus, workdir: Path):
    run = train(corpus, workdir, "run2", "--workers", "2")
    check_training(run, workdir / "run2", corpus)


def test_train_with_device_decoding_and_no_cache(corpus: Corpus, workdir: Path):
    # issue 16's repro: the device-decode path (CUDA's default; here the same code on the CPU)
    # read each file in the worker before any check, so the pipe hung it and /dev/zero filled memory
    run = train(corpus, workdir, "run-dd", "--workers", "1", "--device-decode", "on", "--cache-images", "off")
    check_training(run, workdir / "run-dd", corpus)


def test_strict_stops_at_the_first_broken_file(corpus: Corpus, workdir: Path):
    run = train(corpus, workdir, "strict", "--workers", "0", "--strict")
    line = assert_one_line_error(run, "train", "unreadable image")
    named = [p for p in corpus.all_broken() if f"unreadable image {p}:" in line]
    assert len(named) == 1, f"the error names none (or several) of the broken files: {line}"
    assert not (workdir / "strict" / "best.pt").exists()


# --- evaluation and prediction -----------------------------------------------------------------


def test_eval_skips_and_reports_broken_files(trained: tuple[Run, Path], corpus: Corpus, workdir: Path):
    _, run_dir = trained
    assert (run_dir / "best.pt").is_file(), "training failed; see test_train_skips_and_reports_broken_files"
    run = alexnet("eval", str(run_dir), "--data", f"folder:{corpus.root}", "--split", "test", "--workers", "0",
                  "--device", "cpu", "--json", cwd=workdir)
    assert run.code == 0, str(run)
    assert_clean(run)
    result = json.loads(run.out.strip().splitlines()[-1])
    assert sorted(result["bad_images"]) == sorted(corpus.broken["test"])
    assert result["n"] == corpus.usable("test")
    assert sum(result["per_class"].values()) >= 0 and set(result["per_class"]) == set(CLASSES)


def test_predict_reports_each_broken_file_and_predicts_the_rest(trained: tuple[Run, Path], corpus: Corpus,
                                                                workdir: Path):
    _, run_dir = trained
    assert (run_dir / "best.pt").is_file(), "training failed; see test_train_skips_and_reports_broken_files"
    run = alexnet("predict", str(corpus.root), "--checkpoint", str(run_dir), "--json", "--topk", "2",
                  "--batch-size", "7", "--device", "cpu", cwd=workdir)
    assert run.code == 1, str(run)  # some inputs could not be read
    assert_clean(run)
    entries = [json.loads(line) for line in run.out.splitlines() if line.strip()]
    by_path = {e["path"]: e for e in entries}
    assert len(by_path) == len(entries), "a file was reported twice"
    assert set(by_path) == corpus.all_broken() | corpus.all_usable()
    for path in corpus.all_broken():
        assert set(by_path[path]) == {"path", "error"} and by_path[path]["error"].strip(), by_path[path]
    for path in corpus.all_usable():
        top = by_path[path].get("topk")
        assert top and len(top) == 2 and {t["class"] for t in top} <= set(CLASSES), by_path[path]
        assert 0.0 <= top[1]["prob"] <= top[0]["prob"] <= 1.0
    n_bad = len(corpus.all_broken())
    assert f"{n_bad} of {len(entries)} input(s) could not be read" in run.err, str(run)


def test_viz_refuses_a_pipe_a_device_and_a_huge_file_on_one_line(corpus: Corpus, workdir: Path):
    # viz opens its image through load_image, as predict does: no hang, no read, one line, exit 2
    # (a link to /dev/zero meets the pipe's check: see tests/data/test_load_image.py)
    for kind, reason in (("fifo", "not a regular file (a pipe or device)"),
                         ("huge", "file is too large (1 TiB, over the limit of")):
        path = next(p for p in corpus.broken["train"] if Path(p).name.startswith(f"bad-{kind}."))
        run = alexnet("viz", "augment", path, "--model", "alexnet_mini", "--device", "cpu", "--out",
                      str(workdir / "aug.png"), cwd=workdir, timeout=60)
        assert_one_line_error(run, "viz", f"cannot read {path}: {reason}")
    assert not (workdir / "aug.png").exists()
    assert file_state(corpus.all_broken()) == corpus.state


# --- a broken file whose name is not valid UTF-8 -----------------------------------------------


@pytest.fixture(scope="module")
def latin1_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, Run]:
    """A small tree with a truncated JPEG named b'broken-\\xff.jpg' in train/ and a valid JPEG named
    b'na\\xefve.jpg' in test/ (neither name decodes as UTF-8), trained on; returns (root, the broken
    path, the valid path, the training run)."""
    base = tmp_path_factory.mktemp("latin1")
    root = base / "photos"
    rng = np.random.default_rng(3)
    for split, n in (("train", 4), ("test", 2)):
        for cls in CLASSES:
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(picture(cls, rng)).save(root / split / cls / f"{i}.png")
    jpeg = encoded(Image.fromarray(picture("circle", rng)), "JPEG")
    broken = os.fsencode(root / "train" / "circle") + b"/broken-\xff.jpg"
    valid = os.fsencode(root / "test" / "square") + b"/na\xefve.jpg"
    with open(broken, "wb") as f:
        f.write(jpeg[: len(jpeg) // 2])
    with open(valid, "wb") as f:
        f.write(encoded(Image.fromarray(picture("square", rng)), "JPEG"))
    run = alexnet("train", "--data", f"folder:{root}", *TRAIN_ARGS, "--workers", "0", "--out", str(base / "run"),
                  cwd=base)
    return root, os.fsdecode(broken), os.fsdecode(valid), run


def test_train_lists_a_broken_file_with_a_non_utf8_name(latin1_names: tuple[Path, str, str, Run]):
    root, broken, _, run = latin1_names
    assert run.code == 0, str(run)
    assert_clean(run)
    run_dir = root.parent / "run"
    assert set(read_report(run_dir)) == {broken}  # the file's own bytes, so the path can be found again
    assert json.loads(run.out.strip().splitlines()[-1])["bad_images"] == 1


def test_predict_prints_non_utf8_names(latin1_names: tuple[Path, str, str, Run]):
    root, _, _, _ = latin1_names
    run_dir = root.parent / "run"
    assert (run_dir / "best.pt").is_file(), f"training failed:\n{latin1_names[3]}"
    # the plain-text output (not --json) on a strict UTF-8 stdout
    run = alexnet("predict", str(root), "--checkpoint", str(run_dir), "--topk", "1", "--device", "cpu", cwd=root.parent)
    assert run.code == 1, str(run)
    assert_clean(run)
    heads = [line for line in run.out.splitlines() if line and not line.startswith(" ")]
    n_files = 3 * (4 + 2) + 2
    assert len(heads) == n_files, str(run)  # one line per file: its path, or its path and the error
    errors = [line for line in heads if ": error: " in line]
    assert len(errors) == 1 and "broken-" in errors[0], str(run)
    assert any("na" in line and "ve.jpg" in line and ": error: " not in line for line in heads), str(run)
    assert f"1 of {n_files} input(s) could not be read" in run.err, str(run)


# --- malformed dataset files -------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None, shape: tuple[int, ...] | None = None) -> bytes:
    """IDX encoding of a uint8 array; `magic` and `shape` override what the header says."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    dims = array.shape if shape is None else shape
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8),
    }
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.gz"
        paths[name].write_bytes(gzip.compress(idx_bytes(array)))
    return paths


@pytest.mark.parametrize("defect", ["wrong-magic", "truncated-body", "huge-claim", "huge-dims", "empty-images",
                                    "gzip-bomb"])
def test_malformed_idx_file_is_a_one_line_error(tmp_path: Path, defect: str):
    paths = write_idx_set(tmp_path / "fm")
    bad = paths["t10k-images-idx3-ubyte"]
    five = np.zeros((5, 28, 28), np.uint8)
    if defect == "wrong-magic":  # a labels file whose magic says 3-D images
        bad = paths["train-labels-idx1-ubyte"]
        bad.write_bytes(gzip.compress(idx_bytes(np.zeros(12, np.uint8), magic=0x00000803)))
        words = (str(bad), "magic")
    elif defect == "truncated-body":  # a header claiming 50 images over a body of 5
        bad.write_bytes(gzip.compress(idx_bytes(five, shape=(50, 28, 28))))
        words = (str(bad), "truncated")
    elif defect == "huge-claim":  # a header claiming 4 billion images (3 TB) over a body of 5: no allocation, no hang
        bad.write_bytes(gzip.compress(idx_bytes(five, shape=(4_000_000_000, 28, 28))))
        words = (str(bad), "(4000000000x28x28) claims is too large (2.85 TiB, over the limit of 1 GiB)")
    elif defect == "huge-dims":  # 2^31 x 2^31 x 4 = 2^64 bytes, which wraps to 0 in int64 and "matched" an empty body
        bad.write_bytes(idx_bytes(np.zeros((0, 0, 0), np.uint8), shape=(2**31, 2**31, 4)))
        words = (str(bad), "(2147483648x2147483648x4) claims is too large (16 EiB")
    elif defect == "empty-images":  # images of 0x0 pixels
        bad.write_bytes(idx_bytes(np.zeros((5, 0, 0), np.uint8)))
        words = (str(bad), "5x0x0: a 0 leaves no values")
    else:  # 6 MB that inflate to 6 GiB: the right values, then 6 GiB of zeros (one compressed MiB, repeated)
        bad.write_bytes(gzip.compress(idx_bytes(five)) + gzip.compress(bytes(2**20)) * 6 * 1024)
        words = (str(bad), "longer than the 3920 bytes the header (5x28x28) says: file has trailing bytes")
    before = bad.read_bytes()
    run = alexnet("train", "--data", f"fashion-mnist:{tmp_path / 'fm'}", "--epochs", "1", "--workers", "0",
                  "--device", "cpu", "--no-tensorboard", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert_one_line_error(run, "train", *words)
    assert bad.read_bytes() == before


def test_cifar_batch_of_the_wrong_shape_is_a_one_line_error(tmp_path: Path):
    folder = tmp_path / "cifar"
    folder.mkdir()
    rng = np.random.default_rng(1)

    def batch(data: np.ndarray, n: int) -> bytes:
        return pickle.dumps({b"batch_label": b"batch", b"labels": rng.integers(0, 10, n).tolist(), b"data": data,
                             b"filenames": [b"x.png"] * n}, protocol=2)

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(batch(rng.integers(0, 256, (4, 3072), dtype=np.uint8), 4))
    (folder / "test_batch").write_bytes(batch(rng.integers(0, 256, (3, 3072), dtype=np.uint8), 3))
    meta = {b"label_names": [c.encode() for c in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                   "horse", "ship", "truck")],
            b"num_cases_per_batch": 4, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    bad = folder / "data_batch_3"
    bad.write_bytes(batch(rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), 4))  # H,W,C images, not N x 3072
    run = alexnet("train", "--data", f"cifar10:{folder}", "--epochs", "1", "--workers", "0", "--device", "cpu",
                  "--no-tensorboard", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert_one_line_error(run, "train", str(bad), "3072")


# --- CIFAR-10 trees and archives, and folders that are no dataset (issue 16) -------------------

CIFAR_ARGS = ("--model", "alexnet_mini", "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--workers", "0",
              "--device", "cpu", "--no-tensorboard", "--json")


def cifar_tree(root: Path) -> Path:
    """A small CIFAR-10 JPEG tree: train/ and test/ with two classes of 32x32 pictures."""
    rng = np.random.default_rng(5)
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("airplane", "cat"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i:04d}.jpg")
    return root


def test_cifar_tree_lists_pipes_devices_huge_files_and_pixel_bombs_in_bad_images(tmp_path: Path):
    tree = cifar_tree(tmp_path / "cifar")
    cat = tree / "train" / "cat"
    bad = {str(cat / "bomb.png"): "too many pixels (decompression bomb?)",  # 20000 x 20000: 1.2 GB if decoded
           str(cat / "pipe.jpg"): "not a regular file (a pipe or device)",
           str(cat / "zero.jpg"): "not a regular file (a pipe or device)",
           str(cat / "huge.jpg"): "file is too large (1 TiB, over the limit of 1 MiB)"}
    (cat / "bomb.png").write_bytes(png_claiming(20_000, 20_000))
    os.mkfifo(cat / "pipe.jpg")
    (cat / "zero.jpg").symlink_to("/dev/zero")
    with open(cat / "huge.jpg", "wb") as f:
        f.truncate(2**40)
    before = file_state(bad)
    run = alexnet("train", "--data", f"cifar10:{tree}", *CIFAR_ARGS, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.code == 0, str(run)
    assert_clean(run)
    assert read_report(tmp_path / "run") == bad
    assert json.loads(run.out.strip().splitlines()[-1])["bad_images"] == 4
    assert file_state(bad) == before


def test_cifar_archive_that_is_not_gzip_is_a_one_line_error(tmp_path: Path):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    archive.write_bytes(b"<html>a download that went wrong</html>")
    run = alexnet("train", "--data", f"cifar10:{archive}", *CIFAR_ARGS, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert_one_line_error(run, "train", f"{archive}: cannot read the archive "
                                        "(not a tar file, nor a gzip, bzip2 or xz compressed one)")


def test_cifar_archive_with_a_sparse_member_claiming_a_tib_lists_it_in_bad_images(tmp_path: Path):
    # a real GNU tar --sparse archive, a few hundred bytes, whose member claims 1 TiB
    try:
        version = subprocess.run(["tar", "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = b""
    if b"GNU tar" not in version:
        pytest.skip("GNU tar is not installed")
    tree = cifar_tree(tmp_path / "src")
    with open(tree / "train" / "cat" / "huge.jpg", "wb") as f:
        f.truncate(2**40)
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    subprocess.run(["tar", "--sparse", "-czf", str(archive), "-C", str(tree), "train", "test"], check=True, timeout=60)
    before = archive.read_bytes()
    run = alexnet("train", "--data", f"cifar10:{archive}", *CIFAR_ARGS, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.code == 0, str(run)
    assert_clean(run)
    assert read_report(tmp_path / "run") == {"train/cat/huge.jpg": "file is too large (1 TiB, over the limit of 1 MiB)"}
    assert archive.read_bytes() == before


@pytest.mark.skipif(not Path("/proc/self/mountinfo").is_file(), reason="no /proc file system (not Linux)")
def test_a_kernel_file_system_is_a_one_line_error_not_a_walk(tmp_path: Path):
    # /proc/*/root links to every process's root folder: walking it walked the whole file system
    run = alexnet("train", "--data", "folder:/proc", *CIFAR_ARGS, "--out", str(tmp_path / "run"), cwd=tmp_path,
                  timeout=60)
    assert_one_line_error(run, "train", "folder: /proc is on the proc file system, which holds no image files")
