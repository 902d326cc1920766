"""tuning/prior.py: which knobs are sizes, and the first tuned trial grown from trial 0."""

from __future__ import annotations

import pytest

from tuning import parse_space
from tuning.prior import grown, is_size

WIDE = parse_space(
    {
        "learning_rate": {"type": "float", "low": 0.0001, "high": 0.1, "log": True},
        "epochs": {"type": "int", "low": 4, "high": 20},
        "conv_blocks": {"type": "int", "low": 1, "high": 3},
        "filters": {"type": "int", "low": 8, "high": 64, "step": 8},
        "kernel_size": [3, 5],
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "batch_size": [16, 32, 64, 128],
        "optimizer": ["adam", "rmsprop", "sgd"],
    }
)
TRIAL0 = {
    "learning_rate": 0.003,
    "epochs": 5,
    "conv_blocks": 1,
    "filters": 8,
    "kernel_size": 3,
    "dropout": 0.0,
    "batch_size": 64,
    "optimizer": "adam",
    "seed": 0,  # not in the space: never a param
}


@pytest.mark.parametrize(
    "name",
    [
        "epochs",
        "dense_units",
        "conv2d_filters",
        "conv_blocks",
        "n_estimators",
        "max_depth",
        "max_iter",
        "hidden_layer_sizes",
        "max_leaf_nodes",
        "dense_units_2",
        "hidden_size",
        "n_hidden",
        "embedding_dim",
        "num_layers",
        "steps_per_epoch",
    ],
)
def test_sizes_are_named_by_what_they_count(name: str) -> None:
    assert is_size(name)


@pytest.mark.parametrize(
    "name",
    [
        "learning_rate",
        "batch_size",
        "kernel_size",
        "dropout",
        "alpha",
        "C",
        "min_samples_leaf",
        "optimizer",
        "seed",
        "epoch_seconds",
        "hidden_dropout",
        "hidden_activation",
        "units_activation",
        "min_units",
    ],
)
def test_rates_shapes_and_minimums_are_not_sizes(name: str) -> None:
    assert not is_size(name)


def test_size_knobs_go_to_the_top_and_the_rest_keep_trial_zeros_values() -> None:
    assert grown(WIDE, TRIAL0) == {
        "learning_rate": 0.003,
        "epochs": 20,
        "conv_blocks": 3,
        "filters": 64,
        "kernel_size": 3,
        "dropout": 0.0,
        "batch_size": 64,
        "optimizer": "adam",
    }


def test_values_outside_the_space_or_unknown_are_left_to_the_sampler() -> None:
    trial0 = {**TRIAL0, "learning_rate": 0.5, "batch_size": 100, "optimizer": "nadam"}
    del trial0["dropout"]
    params = grown(WIDE, trial0)
    assert not {"learning_rate", "batch_size", "optimizer", "dropout"} & set(params)
    assert params["epochs"] == 20 and params["kernel_size"] == 3


def test_a_type_that_does_not_match_is_outside_the_space() -> None:
    trial0 = {**TRIAL0, "epochs": 5.5, "kernel_size": True, "optimizer": 1}
    params = grown(WIDE, trial0)
    assert params["epochs"] == 20  # a size: its top, whatever trial 0 said
    assert "kernel_size" not in params and "optimizer" not in params


def test_numeric_choices_of_a_size_grow_to_the_largest() -> None:
    space = parse_space({"units": [32, 128, 64], "activation": ["relu", "tanh"]})
    assert grown(space, {"activation": "tanh"}) == {"units": 128, "activation": "tanh"}


def test_a_space_without_a_size_knob_grows_nothing() -> None:
    space = parse_space({"C": {"type": "float", "low": 0.01, "high": 100, "log": True}})
    assert grown(space, {"C": 1.0}) == {}


def test_a_step_float_default_off_the_step_is_left_to_the_sampler() -> None:
    space = parse_space(
        {
            "epochs": {"type": "int", "low": 10, "high": 50},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
        }
    )
    assert grown(space, {"dropout": 0.25}) == {"epochs": 50}
    assert grown(space, {"dropout": 0.3}) == {"epochs": 50, "dropout": 0.3}
