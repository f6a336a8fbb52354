"""The command line: --help of every verb, one-line errors with exit code 2, train -> eval end to end."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alexnet.cli import VERBS, build_parser, main
from alexnet.cli.common import kv_option

ROOT = Path(__file__).resolve().parents[2]


def alexnet(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "alexnet", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_help(verb, capsys):
    assert main([verb, "--help"]) == 0
    assert "usage: alexnet " + verb in capsys.readouterr().out


def test_top_level_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(v in out for v in VERBS)


@pytest.mark.parametrize("args,words", [
    (["train", "--model", "lenet"], "unknown model 'lenet'"),
    (["train", "--data", "imagenette"], "imagenette"),
    (["train", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "--lr", "-0.1"], "lr must be > 0"),
    (["train", "--batch-size", "abc"], "expected int"),
    (["train", "--config", "nosuch"], "neither a preset"),
    (["train", "--model-args", "tanh"], "key=value"),
    (["train", "--data", "folder:/no/such/folder"], "/no/such/folder"),
    (["eval", "/no/such/run"], "not found"),
    (["summary", "alexnet2012", "--input", "3x64"], "--input"),
    (["summary", "vgg99"], "unknown model 'vgg99'"),
    (["train", "--max-steps", "-1"], "max_steps"),
])
def test_bad_input_is_one_line_exit_2(args, words, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def numeric_options():
    """(verb path, option, its argparse type) of every option that takes a number, train's aside
    (train's options are config fields, range-checked by TrainConfig: tests/test_config.py)."""
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            # K=V,... options (--model-args) are maps whose values the model's builder checks
            elif action.option_strings and action.type not in (None, str, kv_option) and path[:1] != ["train"]:
                yield path, action.option_strings[0], action.type
    return list(walk(build_parser(), []))


def test_numeric_options_are_found():
    found = {(" ".join(path), opt) for path, opt, _ in numeric_options()}
    assert {("predict", "--topk"), ("eval", "--workers"), ("viz augment", "--lighting"),
            ("viz filters", "--layer")} <= found
    assert len(found) >= 15


@pytest.mark.parametrize("path,option,kind", numeric_options(),
                         ids=[" ".join([*p, o]) for p, o, _ in numeric_options()])
def test_every_numeric_option_is_range_checked(path, option, kind, capsys):
    low, high = getattr(kind, "low", None), getattr(kind, "high", None)
    assert low is not None, f"{' '.join(path)} {option} takes an unchecked number: use alexnet.cli.common.number"
    bad = [str(low - 1), "nan", "inf", "ten"] + ([str(high + 1)] if high != float("inf") else [])
    for value in bad:
        assert main([*path, f"{option}={value}"]) == 2, (option, value)
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and option in err and "Traceback" not in err, err


def test_argparse_errors_are_one_line(capsys):
    assert main(["train", "--epochs"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--epochs" in err


def test_models_lists_every_model(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["alexnet2012"]["params"] == 60_965_224 and rows["alexnet2012"]["input_size"] == [3, 227, 227]
    assert rows["alexnet_owt"]["params"] == 61_100_840
    assert {"alexnet_d2l", "alexnet_mini", "alexnet_simple", "vgg11", "vgg16", "vgg_small"} <= set(rows)


def test_summary_json(capsys):
    assert main(["summary", "alexnet2012", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["total_params"] == 60_965_224
    assert 0.03 < table["conv_share"] < 0.05


def test_train_then_eval_end_to_end(tmp_path):
    run = tmp_path / "run"
    train = alexnet("train", "--data", "shapes:train=256,test=64", "--epochs", "2", "--batch-size", "32",
                    "--workers", "0", "--out", str(run), "--json", "--no-tensorboard")
    assert train.returncode == 0, train.stderr
    result = json.loads(train.stdout.strip().splitlines()[-1])
    assert {"run_dir", "epochs", "best_top1", "final_top1", "final_top5", "seconds"} <= set(result)
    assert result["epochs"] == 2 and result["run_dir"] == str(run)
    ev = alexnet("eval", str(run), "--json", "--workers", "0", "--tta", "flip")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert {"top1", "top5", "loss", "n"} <= set(metrics) and metrics["n"] == 64 and metrics["views"] == 2
    assert Path(metrics["confusion_png"]).is_file()
    human = alexnet("eval", str(run), "--workers", "0")
    assert human.returncode == 0 and "top-1" in human.stdout and "per-class accuracy" in human.stdout


def test_a_folder_with_one_image_per_class_trains_says_why_and_suggests_a_command_that_works(tmp_path, capsys):
    from PIL import Image

    for i, name in enumerate(("ant", "bee", "cat")):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (40, 30), (80 * i, 40, 200)).save(tmp_path / "data" / name / "only.jpg")
    code = main(["train", "--data", f"folder:{tmp_path / 'data'}", "--model", "alexnet_simple", "--image-size", "32",
                 "--val-fraction", "0.5", "--epochs", "1", "--workers", "0", "--no-tensorboard",
                 "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "has no validation images" in err and "3 of its 3 classes have a single image" in err
    assert "val_fraction (0.5)" in err
    assert "no val images" in err and "nan" not in (out + err).lower()
    assert "no validation images to score it on" in out and "-100" not in out and "1 epoch in" in out
    assert (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "best.pt").exists()
    suggested = out.strip().splitlines()[-1]
    assert "alexnet eval" not in out and suggested.startswith("classify pictures with it: alexnet predict")
    assert main(suggested.split(": ", 1)[1].split()[1:]) == 0  # the suggested command works
    assert "only.jpg" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "run"), "--workers", "0"]) == 2
    assert "(val) has no images: score the net on a labelled set with --data SPEC" in capsys.readouterr().err


def test_a_smoke_run_says_so_and_bounds_its_validation(tmp_path, capsys):
    code = main(["train", "--data", "shapes:train=256,test=1500", "--max-steps", "2", "--batch-size", "32", "--workers",
                 "0", "--no-tensorboard", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "1500 train" not in err and "(256 train / 1000 val images" in err  # SMOKE_VAL_IMAGES of the 1500
    assert "a smoke run: it stops after 2 steps (--max-steps)" in err and "--val-images 0 takes them all" in err
    assert "epoch 1/8 (stops at step 2, --max-steps)" in err and "1 epoch (2 steps, --max-steps) in" in out
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and record["images"] == 64


def test_the_epoch_line_gives_the_lr_at_its_first_and_last_step_and_resume_counts_all_sessions(tmp_path, capsys):
    common = ["--data", "shapes:train=128,test=32", "--batch-size", "32", "--workers", "0", "--no-tensorboard",
              "--schedule", "cosine", "--lr", "0.05", "--warmup-epochs", "0"]
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2"]) == 0
    out, err = capsys.readouterr()
    first, second = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # cosine over 2 x 4 steps (the resumed config's): the second epoch's steps 5..8 take the
    # formula's lr at 4/8 .. 7/8, not the 1-epoch run's last (0)
    import math
    assert second["lr"] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert second["lr_end"] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert f"lr {second['lr']:.3g} -> {second['lr_end']:.3g}" in err
    assert "2 epochs, 1 of them in this session (" in out and "s in all sessions)" in out
    ckpt = __import__("torch").load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["elapsed"] > first["seconds"] + second["seconds"]  # training and everything around it, both sessions


@pytest.mark.parametrize("given,expected", [
    ([], "auto"), (["--amp"], "on"), (["--amp", "off"], "off"), (["--no-amp"], "off"), (["--amp", "auto"], "auto"),
])
def test_switch_options_take_a_bare_flag_a_value_or_no(given, expected):
    from alexnet.cli.train import resolve

    args = build_parser().parse_args(["train", *given, "--compile", "--no-cuda-graphs", "--epochs", "2"])
    cfg = resolve(args)
    assert (cfg.amp, cfg.compile, cfg.cuda_graphs, cfg.epochs) == (expected, "on", "off", 2)


@pytest.mark.parametrize("verb,flag", [("train", "--amp"), ("train", "--cache-images"), ("bench", "--compile"),
                                       ("bench", "--channels-last")])
def test_a_switch_with_a_wrong_value_is_one_line_exit_2(verb, flag, capsys):
    """Every verb's switches take the same words (cli/common.py add_switch)."""
    assert main([verb, flag, "sometimes"]) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: invalid choice: 'sometimes' (choose from 'auto', 'on', 'off')" in err
    assert len(err.strip().splitlines()) == 1


def test_a_reader_that_closes_the_pipe_stops_the_command_quietly():
    """`alexnet models | head -1`: the reader is gone before the output is written."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "alexnet", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err


# every number a user gives is bounded before any work: no run folder, no allocation (issue 16)
HUGE = "99999999999999999999999999"


@pytest.mark.parametrize("args,words", [
    (["train", "--batch-size", HUGE], "batch_size must be in [1, 1048576]"),
    (["train", "--workers", "100000"], "workers must be in [0, 256]"),
    (["train", "--epochs", HUGE], "epochs must be at most 1,000,000,000"),
    (["train", "--max-steps", "1e30"], "expected int"),
    (["train", "--model-args", "in_channels=2"], "in_channels must be 1 or 3"),
    (["train", "--model-args", "num_classes=100000000000"], "model_args num_classes=100000000000 but"),
    (["train", "--data", "shapes:size=100000"], "shapes: size must be at most 1024"),
    (["train", "--data", "shapes:noise=nan"], "noise a finite number"),
    (["train", "--data", f"shapes:train={HUGE}"], "would take more than 4 GiB"),
    (["eval", "run", "--batch-size", "1e20"], "argument --batch-size: must be in [1, 1,048,576], got '1e20'"),
    (["eval", "run", "--batch-size", HUGE], "argument --batch-size: must be in [1, 1,048,576]"),
    (["eval", "run", "--workers", "100000"], "argument --workers: must be in [-1, 256]"),
    (["predict", "x.jpg", "--batch-size", HUGE], "argument --batch-size"),
    (["predict", "x.jpg", "--topk", HUGE], "argument --topk: must be at most 1,000,000,000"),
    (["summary", "alexnet_mini", "--input", "3x100000x100000"], "input size 3x100000x100000 is too large"),
    (["summary", "alexnet_mini", "--num-classes", "1e14"],
     "argument --num-classes: must be in [1, 100,000], got '1e14'"),
    (["summary", "alexnet_mini", "--num-classes", "100000000000000"],
     "argument --num-classes: must be in [1, 100,000]"),
    (["summary", "alexnet_mini", "--model-args", "num_classes=100000000000000"], "num_classes must be at most 100,000"),
    (["summary", "convnet_local", "--model-args", "local3=1000000"], "more than the 1,000,000,000 allowed"),
    (["summary", "convnet_local", "--model-args", f"local3={HUGE}"], "cannot be built"),
    (["summary", "alexnet_mini", "--model-args", "in_channels=4"], "in_channels must be 1 or 3"),
])
def test_huge_and_odd_numbers_are_one_line_before_any_work(args, words, tmp_path, capsys):
    if args[0] == "train":
        args = ([*args, "--out", str(tmp_path / "run"), "--max-steps", "1"] if "--max-steps" not in args
                else [*args, "--out", str(tmp_path / "run")])
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,words", [
    (["eval", "/no/such/run", "--json"], "checkpoint not found: /no/such/run"),
    (["train", "--json", "--epochs", "0"], "epochs must be >= 1"),
    (["export", "/no/such.pt", "--format", "onnx", "--json"], "/no/such.pt"),
    (["eval", "run", "--json", "--batch-size", "0"],
     "argument --batch-size: must be in [1, 1,048,576], got '0'"),  # argparse's
    (["summary", "--json", "alexnet_mini", "--input", "3x9"], "--input '3x9' is not CxHxW"),
])
def test_with_json_an_error_is_also_one_json_object_on_stdout(args, words, capsys):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and words in err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    record = json.loads(lines[0])
    assert record["exit_code"] == 2 and record["verb"] == args[0]
    assert words in record["error"] and record["error"] in err


@pytest.mark.parametrize("argv,says", [
    (["train", "--modle", "alexnet_mini"], "alexnet train: error: unrecognized arguments: --modle alexnet_mini; "
                                           "did you mean --model? (see alexnet train --help)"),
    (["trian"], "did you mean train? (see alexnet --help)"),
    (["eval", "RUN", "--workres", "2"], "did you mean --workers? (see alexnet eval --help)"),
    (["viz", "filtres"], "did you mean filters? (see alexnet viz --help)"),
    (["summary", "alexnet2012", "--zzzzzz"], "unrecognized arguments: --zzzzzz (see alexnet summary --help)"),
])
def test_a_typo_names_the_verbs_help_and_the_closest_match(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
