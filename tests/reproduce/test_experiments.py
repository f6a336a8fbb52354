"""The experiment definitions: each pair of arms differs only in the factor it ablates, and shares the base runs."""

import pytest

from alexnet.errors import UsageError
from alexnet.models import build_model, model_options
from alexnet.reproduce.experiments import EXPERIMENTS, SCALES, arm_config, base_config, get, get_scale

# The factor each experiment ablates, as config fields and model arguments. towers is the paper's
# own comparison: one tower with half the kernels (section 3.2), so two model arguments change.
FACTORS = {
    "relu-vs-tanh": {"activation"},
    "towers": {"towers", "conv_width"},
    "lrn": {"lrn"},
    "overlapping-pooling": {"pool"},
    "pca-lighting": {"lighting"},
    "dropout": {"dropout"},
    "ten-crop": set(),
}


def flat(config):
    out = {k: v for k, v in config.items() if k != "model_args"}
    out.update(config["model_args"])
    return out


@pytest.mark.parametrize("data", ["cifar10", "imagenet:/data/imagenet"])
@pytest.mark.parametrize("scale", list(SCALES))
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_arms_differ_only_in_the_ablated_factor(name, scale, data):
    exp = EXPERIMENTS[name]
    a = flat(arm_config(exp, exp.with_arm, SCALES[scale], data))
    b = flat(arm_config(exp, exp.without_arm, SCALES[scale], data))
    assert a.keys() == b.keys()
    assert {k for k in a if a[k] != b[k]} == FACTORS[name]
    if exp.kind == "views":  # the same runs, two evaluations
        assert exp.with_arm.view != exp.without_arm.view
    else:
        assert exp.with_arm.view == exp.without_arm.view


def test_every_experiment_is_listed():
    assert set(EXPERIMENTS) == set(FACTORS)


@pytest.mark.parametrize("name", [n for n, e in EXPERIMENTS.items() if e.base == "paper-net"])
def test_the_with_arm_is_the_base_net_so_its_runs_are_shared(name):
    exp = EXPERIMENTS[name]
    scale = SCALES["cpu"]
    assert arm_config(exp, exp.with_arm, scale, "cifar10") == base_config(exp, scale, "cifar10")


@pytest.mark.parametrize("data, model", [("cifar10", "alexnet_mini"), ("imagenet:/x", "alexnet2012"),
                                         ("folder:/x", "alexnet2012")])
def test_base_net_fits_the_data_and_its_switches_exist(data, model):
    for exp in EXPERIMENTS.values():
        for arm in (exp.with_arm, exp.without_arm):
            config = arm_config(exp, arm, SCALES["smoke"], data)
            if exp.base == "paper-net":
                assert config["model"] == model
            assert set(config["model_args"]) <= set(model_options(config["model"]))
            build_model(config["model"], **config["model_args"])  # a valid net


def test_paper_recipe_in_the_base():
    config = base_config(EXPERIMENTS["towers"], SCALES["cpu"], "cifar10")
    assert (config["optimizer"], config["momentum"], config["weight_decay"], config["batch_size"]) == (
        "sgd", 0.9, 5e-4, 128)
    assert config["augment"] == "paper" and config["tta"] == "tencrop"
    fig1 = base_config(EXPERIMENTS["relu-vs-tanh"], SCALES["cpu"], "cifar10")
    assert fig1["weight_decay"] == 0 and fig1["augment"] == "none"  # "no regularization of any kind"
    exp = EXPERIMENTS["relu-vs-tanh"]
    assert exp.with_arm.lr_grid and exp.without_arm.lr_grid  # each unit gets its own lr, as in the paper


@pytest.mark.parametrize("data", ["cifar10", "imagenet:/x"])
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_run_updates_as_the_reference_code_does(name, data):
    config = base_config(EXPERIMENTS[name], SCALES["cpu"], data)
    assert (config["momentum_form"], config["bias_lr_mult"], config["bias_decay"]) == ("paper", 2.0, False)


def test_figure1_and_lrn_run_cuda_convnets_nets_on_its_inputs():
    fig1 = base_config(EXPERIMENTS["relu-vs-tanh"], SCALES["cpu"], "cifar10")
    assert fig1["model"] == "convnet4" and fig1["input_norm"] == "mean_image"
    # to 25% or the budget
    assert fig1["train_images"] == 10_000 and fig1["stop_train_error"] == 0.25 and fig1["epochs"] == 100
    # a pilot stopped at 25% is then the same run whatever its cap (runner.pilot_lr)
    assert fig1["schedule"] == "constant"
    lrn = base_config(EXPERIMENTS["lrn"], SCALES["cpu"], "cifar10")
    assert lrn["model"] == "convnet_local" and lrn["input_norm"] == "mean_image"
    assert base_config(EXPERIMENTS["lrn"], SCALES["cpu"], "imagenet:/x")["model"] == "alexnet2012"
    assert base_config(EXPERIMENTS["towers"], SCALES["cpu"], "imagenet:/x")["input_norm"] == "mean_image"


def test_dropout_is_measured_on_clean_training_images_at_a_scale_that_can_overfit():
    exp = EXPERIMENTS["dropout"]
    config = base_config(exp, SCALES["cpu"], "cifar10")
    towers = base_config(EXPERIMENTS["towers"], SCALES["cpu"], "cifar10")
    assert 0 < config["train_eval_images"] <= config["train_images"] < towers["train_images"]
    assert config["epochs"] > towers["epochs"]
    assert exp.overfitting and exp.regulariser and exp.paper["iterations"] == 2.0  # both of section 4.2's statements
    assert exp.with_arm.view == exp.without_arm.view == "center"  # the training error's view


def test_unknown_names_are_usage_errors():
    with pytest.raises(UsageError, match=r"unknown experiment 'lrm'.*lrn"):
        get("lrm")
    with pytest.raises(UsageError, match="unknown scale"):
        get_scale("huge")


@pytest.mark.parametrize("scale", ["cpu", "gpu"])
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_run_chooses_on_a_holdout_and_reports_on_test(name, scale):
    """No choice reads the test split: each run validates on training images held out (CIFAR-10's
    'val' is its test split), and the test split is scored once, at the end."""
    config = base_config(EXPERIMENTS[name], SCALES[scale], "cifar10")
    assert config["holdout"] == 5_000


def test_the_mini_ablations_take_the_papers_inputs_so_lrn_acts():
    config = base_config(EXPERIMENTS["towers"], SCALES["cpu"], "cifar10")
    assert config["input_norm"] == "mean_image" and config["model_args"]["conv1_std"] == 0.01
    net = build_model("alexnet_mini", **config["model_args"])
    assert abs(float(net.features.conv1.weight.detach().std()) - 0.01) < 0.001  # the paper's N(0, 0.01) in conv1 ...
    assert float(net.features.conv2.weight.detach().std()) > 0.04  # ... Kaiming's sqrt(2 / 600) = 0.058 above it
    imagenet = base_config(EXPERIMENTS["towers"], SCALES["cpu"], "imagenet:/x")
    assert "conv1_std" not in imagenet["model_args"]  # alexnet2012's own init


def test_the_shared_with_arms_are_named():
    from alexnet.reproduce.runner import shares_runs_with

    scale = SCALES["cpu"]
    assert set(shares_runs_with(EXPERIMENTS["towers"], scale, "cifar10")) == {
        "overlapping-pooling", "pca-lighting", "ten-crop"}
    assert shares_runs_with(EXPERIMENTS["lrn"], scale, "cifar10") == []
    assert shares_runs_with(EXPERIMENTS["dropout"], scale, "cifar10") == []


def test_run_keys_survive_a_field_written_out_at_its_old_implicit_value():
    """Every config names translate -1 since TrainConfig's default became the fast preset's 1; the
    runs keyed before (docs/reproduce/cpu/runs) keep their keys, and another translate is another run."""
    from alexnet.reproduce.runner import run_key

    config = arm_config(get("towers"), get("towers").with_arm, get_scale("cpu"), "cifar10")
    assert config["translate"] == -1
    without = {k: v for k, v in config.items() if k != "translate"}
    assert run_key(config) == run_key(without) != run_key({**config, "translate": 2})
