"""Config: presets, overrides, validation, and the field docstrings that become --help."""

import re

import pytest
import yaml

from alexnet.config import FIELDS, TrainConfig, field_docs, make_config, parse_kv, preset_names, read_yaml
from alexnet.errors import UsageError


def test_presets_load_and_carry_the_recipes():
    assert {"fast", "paper", "d2l"} <= set(preset_names())
    paper = make_config(read_yaml("paper"))
    assert (paper.model, paper.optimizer, paper.momentum, paper.weight_decay, paper.batch_size, paper.lr,
            paper.epochs) == ("alexnet2012", "sgd", 0.9, 5e-4, 128, 0.01, 90)
    assert paper.schedule == "plateau" and paper.max_lr_drops == 3
    assert paper.augment == "paper" and paper.lighting == 0.1
    # Caffe's init (the paper's left the loss flat, benchmarks/paper_init.py); choices read a holdout, not the
    # test split
    assert paper.model_args == {"init": "caffe"} and paper.holdout == 5000
    d2l = make_config(read_yaml("d2l"))
    assert (d2l.model, d2l.data, d2l.image_size, d2l.lr, d2l.momentum, d2l.batch_size, d2l.epochs) == (
        "alexnet_d2l", "fashion-mnist", 224, 0.01, 0.0, 128, 10)
    fast = make_config(read_yaml("fast"))
    assert fast.model == "alexnet_mini" and fast.data == "shapes"


def test_overrides_win_and_are_coerced():
    cfg = make_config(read_yaml("paper"), epochs=3, lr="0.1", model_args={"towers": 1})
    assert cfg.epochs == 3 and cfg.lr == 0.1 and cfg.model_args == {"towers": 1}
    assert make_config({"lr": 1}).lr == 1.0 and isinstance(make_config({"lr": 1}).lr, float)


@pytest.mark.parametrize("field,value,words", [
    ("lr", 0, "lr must be > 0"), ("lr", -1.0, "lr"), ("epochs", 0, "epochs must be >= 1"),
    ("batch_size", 0, "batch_size"), ("momentum", 1.5, "momentum"), ("augment", "fancy", "augment must be one of"),
    ("schedule", "step", "schedule"), ("tta", "x", "tta"), ("device", "tpu", "device"),
    ("epochs", 2.5, "epochs expects int"), ("image_size", 4, "image_size"), ("workers", -3, "workers"),
    ("flip", "maybe", "flip expects bool"),
    ("input_norm", "zscore", "input_norm must be one of auto, mean_image, channel"),
    ("momentum_form", "caffe", "momentum_form must be one of torch, paper"),
    ("bias_decay", "sometimes", "bias_decay expects bool"),
])
def test_invalid_values_name_the_field(field, value, words):
    with pytest.raises(UsageError, match=words):
        make_config({field: value})


# one out-of-range value for every numeric field; the test below fails when a new numeric field
# has no entry here (and so, probably, no range check)
BILLION = 10**9 + 1  # one past MAX_COUNT, the bound of every count without a tighter one
OUT_OF_RANGE = {
    "val_fraction": [0.0, 1.0], "image_size": [4, 1025], "lighting": [-0.1, float("inf")], "epochs": [0, BILLION],
    "batch_size": [0, -5, 2**20 + 1, 10**26], "lr": [0.0, float("nan"), float("inf")], "momentum": [-0.1, 1.0],
    "weight_decay": [-1e-4, float("inf")], "warmup_epochs": [-1.0, 11.0], "plateau_patience": [-1, BILLION],
    "max_lr_drops": [-1, BILLION], "label_smoothing": [-0.1, 1.0], "seed": [-1, 2**32], "workers": [-2, 257],
    "max_steps": [-1, BILLION], "train_images": [-1, BILLION], "val_images": [-2, -3, BILLION],
    "bias_lr_mult": [0.0, -1.0, float("nan")], "stop_train_error": [-0.1, 1.0], "train_eval_images": [-1, BILLION],
    "translate": [-2, -5, BILLION], "holdout": [-1, BILLION],
    "accum_steps": [0, 129],  # more micro-batches than the default batch of 128 has images
    "threads": [-1, 257], "progress_every": [-1.0, float("nan"), float("inf")],
    "head_lr_mult": [0.0, -1.0, float("nan"), float("inf")],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, values in OUT_OF_RANGE.items() for v in values])
def test_every_numeric_field_is_range_checked(field, value):
    with pytest.raises(UsageError, match=f"^{field} must"):
        make_config({field: value})


def test_the_range_table_covers_every_numeric_field():
    numeric = {name for name, f in FIELDS.items() if f.type in ("int", "float")}
    assert numeric == set(OUT_OF_RANGE)


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown config key 'learning_rate'"):
        make_config({"learning_rate": 0.1})
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"epochs": 2, "colour": "red"}))
    with pytest.raises(UsageError, match="unknown config key 'colour'"):
        read_yaml(str(f))
    f.write_text("epochs: [1, 2\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        read_yaml(str(f))
    with pytest.raises(UsageError, match="neither a preset"):
        read_yaml("no-such-preset")


def test_yaml_is_parsed_safely(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("epochs: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        read_yaml(str(f))
    assert not (tmp_path / "pwned").exists()


def test_every_field_has_a_docstring():
    docs = field_docs()
    assert set(docs) == set(FIELDS)
    assert all(docs[name].strip() for name in FIELDS)


def test_parse_kv():
    assert parse_kv("activation=tanh, lrn=false,dropout=0.3,towers=1") == {
        "activation": "tanh", "lrn": False, "dropout": 0.3, "towers": 1}
    with pytest.raises(UsageError, match="key=value"):
        parse_kv("tanh")


def test_the_defaults_are_what_alexnet_train_runs_with_no_options():
    """TrainConfig() is the fast preset, the one `alexnet train` reads when given nothing."""
    from alexnet.cli import build_parser
    from alexnet.cli.train import resolve
    from alexnet.config import read_yaml

    assert TrainConfig() == make_config(read_yaml("fast")) == resolve(build_parser().parse_args(["train"]))
    assert (TrainConfig().optimizer, TrainConfig().schedule, TrainConfig().tta) == ("adamw", "onecycle", "flip")


def test_presets_are_public():
    paper = TrainConfig.preset("paper", epochs=2)
    assert (paper.model, paper.optimizer, paper.lr, paper.schedule, paper.epochs) == ("alexnet2012", "sgd", 0.01,
                                                                                      "plateau", 2)
    assert TrainConfig.preset() == TrainConfig() and TrainConfig.preset("d2l").model == "alexnet_d2l"
    with pytest.raises(UsageError, match=r"config 'papper' is neither a preset .*paper.* nor a YAML file"):
        TrainConfig.preset("papper")
    with pytest.raises(UsageError, match="unknown config key 'epoch'"):
        TrainConfig.preset("paper", epoch=2)


def test_the_paper_preset_is_the_paper_in_effect():
    from alexnet.config import read_yaml, resolved_input_norm

    cfg = make_config(read_yaml("paper"))
    assert (cfg.input_norm, cfg.momentum_form, cfg.bias_lr_mult, cfg.bias_decay) == ("mean_image", "paper", 2.0, False)
    assert resolved_input_norm(make_config(model="alexnet2012")) == "mean_image"  # alexnet2012's default anywhere
    assert resolved_input_norm(make_config(read_yaml("fast"))) == "channel"


def test_val_images_auto_bounds_a_smoke_run_only():
    from alexnet.config import SMOKE_VAL_IMAGES, resolved_val_images

    assert resolved_val_images(make_config()) == 0  # all
    assert resolved_val_images(make_config(max_steps=3)) == SMOKE_VAL_IMAGES
    assert resolved_val_images(make_config(max_steps=3, val_images=0)) == 0  # asked for all
    assert resolved_val_images(make_config(max_steps=3, val_images=50)) == 50


@pytest.mark.parametrize("overrides,words", [
    ({"translate": 32, "image_size": 32}, "translate must be below image_size 32"),
    ({"translate": 0, "tta": "tencrop"}, "translate 0 takes no shifted crops"),
    ({"translate": True}, "translate must be an integer"),
    ({"translate": 1.5}, "translate expects int"),
    ({"translate": "two"}, "translate"),
])
def test_translate_is_refused_where_it_means_nothing(overrides, words):
    with pytest.raises(UsageError, match=words):
        make_config(overrides)
    assert make_config(translate=0).translate == 0 and make_config(translate=31, image_size=32).translate == 31
    # a preset's shift does not stand in the way of another augmentation (the fast preset sets 1)
    assert make_config(translate=1, augment="paper").augment == "paper"
    assert make_config(translate=0, tta="tencrop", augment="paper")


def test_tencrop_without_training_crops_is_refused_before_training():
    with pytest.raises(UsageError,
                       match="tta tencrop takes its views where training cropped, and augment none takes no crops"):
        make_config(tta="tencrop", augment="none")
    assert make_config(tta="flip", augment="none").tta == "flip"


# ---- every YAML a user gives is bounded and typed (issue 16) ----------------------------------

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh")
) + "data: *h\n"  # 9**8 = 43 million strings

BAD_CONFIGS = [
    ("billion laughs", LAUGHS.encode(), "more than 10,000 values once its YAML aliases are expanded"),
    ("an alias inside itself", b"model_args: &a {x: *a}\n", "a YAML alias contains itself"),
    ("not UTF-8", "epochs: 3  # caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 16)"),
    ("UTF-16", "epochs: 3\n".encode("utf-16"), "is not UTF-8 text"),
    ("binary", bytes(range(256)), "not UTF-8"),
    ("nested without end", b"[" * 5000 + b"]" * 5000, "YAML nested too deeply"),
    ("unclosed bracket", b"epochs: [1, 2\n", "not valid YAML"),
    ("a tab", b"epochs:\n\t- 1\n", "not valid YAML"),
    ("larger than 1 MiB", b"# " + b"x" * 2**20 + b"\n", "too large"),
    ("max_steps true", b"max_steps: true\n", "max_steps must be an integer; got True"),
    ("epochs true", b"epochs: yes\n", "epochs must be an integer"),
    ("lr true", b"lr: true\n", "lr must be a number"),
    ("epochs infinite", b"epochs: .inf\n", "epochs expects int"),
    ("batch_size huge", b"batch_size: 99999999999999999999999999\n", "batch_size must be in [1, 1048576]"),
    ("workers huge", b"workers: 100000\n", "workers must be in [0, 256]"),
    ("epochs huge", b"epochs: 10000000000\n", "epochs must be at most"),
    ("data a list", b"data: [shapes, mnist]\n", "data expects str, got a list of 2"),
    ("model_args a list", b"model_args: [1, 2]\n", "model_args must be a mapping"),
    ("model_args nested", b"model_args: {towers: [1]}\n", "model_args must map names to single values"),
    ("model_args num_classes", b"model_args: {num_classes: abc}\n", "model_args num_classes must be an integer"),
    ("a list", b"- 1\n- 2\n", "expected a mapping"),
]


@pytest.mark.parametrize("content,words", [r[1:] for r in BAD_CONFIGS], ids=[r[0] for r in BAD_CONFIGS])
def test_every_bad_config_file_is_one_line(tmp_path, capsys, content, words):
    from alexnet.cli import main

    f = tmp_path / "mine.yaml"
    f.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(words)) as err:
        make_config(read_yaml(str(f)))
    assert "\n" not in str(err.value)
    assert main(["train", "--config", str(f), "--out", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().err
    assert len(out.strip().splitlines()) == 1 and words in out and "Traceback" not in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value,words", [
    ("towers=[1", "'towers=[1': not valid YAML (expected ',' or ']', but got '<stream end>' at line 1, column 3)"),
    ("towers={", "not valid YAML"),
    ("towers=*nowhere", "not valid YAML"),
    ("towers=!!python/object/apply:os.system [ls]", "not valid YAML"),
    ("towers=&a [*a]", "a YAML alias contains itself"),
])
def test_every_bad_model_args_value_is_one_line(tmp_path, capsys, value, words):
    from alexnet.cli import main

    with pytest.raises(UsageError, match=re.escape(words)):
        parse_kv(value)
    for argv in (["train", "--model-args", value, "--out", str(tmp_path / "run")],
                 ["summary", "alexnet_mini", "--model-args", value]):
        assert main(argv) == 2
        out = capsys.readouterr().err
        assert len(out.strip().splitlines()) == 1 and words in out, out
    assert not (tmp_path / "run").exists()


def test_a_bool_is_not_a_number_even_given_directly():
    for name in ("max_steps", "epochs", "lr", "seed"):
        with pytest.raises(UsageError, match=f"^{name} must be"):
            TrainConfig(**{name: True})


@pytest.mark.parametrize("text,line", [
    ("model: alexnet_mini\nepochs: 2\nmodel: vgg16\n", "the key 'model' is given twice (first at line 1) at line 3"),
    ("model_args: {towers: 1, towers: 2}\n", "the key 'towers' is given twice (first at line 1)"),
    ("model_args:\n  dropout: 0.1\n  dropout: 0.5\n", "the key 'dropout' is given twice (first at line 2) at line 3"),
    ("model_args:\n  <<: {dropout: 0.1}\n  <<: {dropout: 0.5}\n", "the merge key << is given twice (first at line 2"),
])
def test_a_key_given_twice_is_one_line_not_the_last_one_silently(text, line, tmp_path, capsys):
    from alexnet.cli import main

    f = tmp_path / "twice.yaml"
    f.write_text(text)
    assert main(["train", "--config", str(f), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert line in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_model_args_given_twice_is_one_line(capsys):
    from alexnet.cli import main

    with pytest.raises(UsageError, match="'towers' is given twice in 'towers=1, towers=2'"):
        parse_kv("towers=1, towers=2")
    assert main(["summary", "alexnet_mini", "--model-args", "lrn=true,lrn=false"]) == 2
    assert "'lrn' is given twice" in capsys.readouterr().err
    # the flag given twice: merged, and a key in both is the same error (argparse kept the last flag whole)
    twice = ["train", "--model-args", "dropout=0.1", "--model-args", "dropout=0.3", "--epochs", "1"]
    assert main(twice) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model-args: the key 'dropout' is given twice" in err, err
    from alexnet.cli import build_parser

    args = build_parser(["train"]).parse_args(["train", "--model-args", "dropout=0.1", "--model-args", "towers=1"])
    assert args.model_args == {"dropout": 0.1, "towers": 1}
    # summary takes the flag as train does, and refuses a class count given two ways that disagree
    for argv, words in ((["--model-args", "num_classes=3", "--model-args", "num_classes=9"], "is given twice"),
                        (["--model-args", "num_classes=5", "--num-classes", "7"], "disagree")):
        assert main(["summary", "alexnet_mini", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    """`<<: *base` then a key of the base is YAML's way to override, not a repeat."""
    f = tmp_path / "merged.yaml"
    f.write_text("base: &b {epochs: 3, lr: 0.1}\n")
    from alexnet.limits import load_yaml

    assert load_yaml("a: &a {epochs: 3, lr: 0.1}\nb: {<<: *a, lr: 0.2}\n", "m")["b"] == {"epochs": 3, "lr": 0.2}
