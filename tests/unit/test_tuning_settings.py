"""The `tuning:` key of tweakops.yaml, parsed through tweakops.config like every other key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuning import Pruning, TuningSettings, auto_parallel
from tweakops.config import Config, apply_overrides, load_config, parse_config
from tweakops.errors import ConfigError

GIB = 1024**3


def tuning(value: object) -> TuningSettings:
    return parse_config({"tuning": value}).tuning


def refused(value: object) -> str:
    """The message of the ConfigError that `tuning: value` raises."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"tuning": value})
    assert caught.value.exit_code == 2
    return str(caught.value)


# --- good values -----------------------------------------------------------------------------


def test_no_tuning_key_and_an_empty_one_give_the_defaults() -> None:
    assert Config().tuning == TuningSettings()
    assert parse_config({}).tuning == TuningSettings()
    assert tuning(None) == TuningSettings()
    assert tuning({}) == TuningSettings()
    defaults = TuningSettings()
    assert defaults.strategy == "optuna" and defaults.seed == 0 and defaults.parallel is None
    assert defaults.patience is None and defaults.pruning == Pruning()
    assert defaults.grow_first is True
    assert defaults.storage is None and defaults.study is None and defaults.ladder == ()


def test_every_key_is_read_and_typed_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "tweakops.yaml").write_text(
        """\
threshold: 0.95
tuning:
  strategy: escalate
  seed: 7
  patience: 5
  pruning: {metric: val_loss_ratio, warmup_epochs: 3, startup_trials: 4}
  grow_first: false
  parallel: 2
  storage: postgresql://tweakops@db.example.org/studies
  study: digits-cnn
  ladder:
    - {conv_blocks: 1, filters: 16, epochs: 10}
    - {conv_blocks: 2, filters: 32, epochs: 15, optimizer: adam, batchnorm: true, lr: 0.001}
"""
    )
    settings = load_config(tmp_path).tuning
    assert settings == TuningSettings(
        strategy="escalate",
        seed=7,
        patience=5,
        pruning=Pruning(metric="val_loss_ratio", warmup_epochs=3, startup_trials=4),
        grow_first=False,
        parallel=2,
        storage="postgresql://tweakops@db.example.org/studies",
        study="digits-cnn",
        ladder=(
            {"conv_blocks": 1, "filters": 16, "epochs": 10},
            {
                "conv_blocks": 2,
                "filters": 32,
                "epochs": 15,
                "optimizer": "adam",
                "batchnorm": True,
                "lr": 0.001,
            },
        ),
    )


def test_a_ladder_is_allowed_with_the_optuna_strategy_too() -> None:
    assert tuning({"ladder": [{"units": 8}]}).ladder == ({"units": 8},)


# --- unknown keys, strategy, ladder ----------------------------------------------------------


def test_tuning_must_be_a_mapping() -> None:
    message = refused(["optuna"])
    assert message.startswith("tuning in tweakops.yaml must be a mapping with keys strategy")


def test_an_unknown_key_is_named_with_the_allowed_ones() -> None:
    message = refused({"strategy": "optuna", "trials": 5})
    assert message == (
        "unknown key tuning.trials in tweakops.yaml: allowed are strategy, seed, patience, "
        "pruning, grow_first, parallel, storage, study, ladder"
    )


@pytest.mark.parametrize("value", ["grid", "Optuna", "", None, 1])
def test_a_bad_strategy_names_the_key_and_the_choices(value: object) -> None:
    message = refused({"strategy": value})
    assert message.startswith("tuning.strategy in tweakops.yaml must be one of optuna, escalate")
    assert repr(value) in message


def test_escalate_without_a_ladder_says_what_a_ladder_is() -> None:
    message = refused({"strategy": "escalate"})
    assert "tuning.strategy escalate in tweakops.yaml needs tuning.ladder" in message
    assert "one mapping per trial" in message


@pytest.mark.parametrize(
    ("ladder", "expected"),
    [
        ([], "tuning.ladder in tweakops.yaml must be a non-empty list of params"),
        ({"filters": 16}, "tuning.ladder in tweakops.yaml must be a non-empty list of params"),
        ("big", "tuning.ladder in tweakops.yaml must be a non-empty list of params"),
        ([{"filters": 16}, 32], "tuning.ladder in tweakops.yaml: rung 2 must be a mapping"),
        ([{}], "tuning.ladder in tweakops.yaml: rung 1 must be a mapping of params, got {}"),
        ([{"2fast": 1}], "tuning.ladder in tweakops.yaml: rung 1 has a bad param name '2fast'"),
        ([{"a-b": 1}], "rung 1 has a bad param name 'a-b'"),
        (
            [{"units": 8}, {"units": [8, 16]}],
            "tuning.ladder in tweakops.yaml: rung 2 param units must be a number, string or "
            "boolean, got [8, 16]",
        ),
        ([{"units": None}], "rung 1 param units must be a number, string or boolean, got None"),
        ([{"opt": {"name": "adam"}}], "rung 1 param opt must be a number, string or boolean"),
    ],
)
def test_ladder_rung_errors_name_the_rung_and_the_param(ladder: object, expected: str) -> None:
    assert expected in refused({"strategy": "escalate", "ladder": ladder})


# --- pruning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, None),
        (None, None),
        (True, Pruning()),
        ({}, Pruning()),
        ({"metric": "accuracy"}, Pruning(metric="accuracy")),
        ({"warmup_epochs": 0, "startup_trials": 0}, Pruning(warmup_epochs=0, startup_trials=0)),
        (
            {"metric": "val_acc", "warmup_epochs": 5, "startup_trials": 3},
            Pruning("val_acc", 5, 3),
        ),
    ],
)
def test_pruning_is_off_on_or_a_mapping(value: object, expected: Pruning | None) -> None:
    assert tuning({"pruning": value}).pruning == expected


def test_pruning_defaults_are_val_accuracy_after_two_epochs_and_two_trials() -> None:
    assert Pruning() == Pruning(metric="val_accuracy", warmup_epochs=2, startup_trials=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", "tuning.pruning in tweakops.yaml must be false or a mapping like"),
        (1, "tuning.pruning in tweakops.yaml must be false or a mapping like"),
        (
            {"metric": "val accuracy"},
            "tuning.pruning in tweakops.yaml: metric must name an epoch metric like "
            "val_accuracy, got 'val accuracy'",
        ),
        ({"metric": 3}, "tuning.pruning in tweakops.yaml: metric must name an epoch metric"),
        ({"metric": ""}, "tuning.pruning in tweakops.yaml: metric must name an epoch metric"),
        (
            {"warmup_epochs": -1},
            "tuning.pruning in tweakops.yaml: warmup_epochs must be a whole number from 0",
        ),
        (
            {"startup_trials": 1.5},
            "tuning.pruning in tweakops.yaml: startup_trials must be a whole number from 0",
        ),
        ({"startup_trials": True}, "startup_trials must be a whole number"),
        (
            {"patience": 3},
            "unknown key tuning.pruning.patience in tweakops.yaml: allowed are metric, "
            "warmup_epochs, startup_trials",
        ),
    ],
)
def test_bad_pruning_names_the_key(value: object, expected: str) -> None:
    assert expected in refused({"pruning": value})


# --- storage and study -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tweakops@db.example.org/studies",
        "postgresql://db.example.org:5432/studies",
        "postgresql+psycopg2://tweakops@db.example.org:5432/studies",
        "mysql://tweakops@db.example.org/studies",
        "mysql+pymysql://tweakops@db/studies",
        "sqlite:////var/lib/tweakops/studies.db",
        "sqlite:///studies.db",
        "POSTGRESQL://tweakops@db/studies",
    ],
)
def test_storage_takes_database_urls(url: str) -> None:
    assert tuning({"storage": url}).storage == url
    assert tuning({"storage": f"  {url}  "}).storage == url


@pytest.mark.parametrize(
    "value",
    ["https://db.example.org/studies", "/var/lib/studies.db", "studies.db", "", 5, None],
)
def test_storage_that_is_not_a_database_url_is_refused(value: object) -> None:
    message = refused({"storage": value})
    assert message.startswith(
        "tuning.storage in tweakops.yaml must be a database URL like postgresql://user@host/db"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tweakops:s3cretPW@db.example.org/studies",
        "mysql+pymysql://tweakops:s3cretPW@db/studies",
        "postgresql://:s3cretPW@db/studies",
        "postgresql://tweakops:s3cretPW@db.example.org:5432/studies",
        "postgresql+psycopg2://tweakops:s3cretPW@db.example.org/studies",
        "postgresql://tweakops@db.example.org/studies?password=s3cretPW",
    ],
)
def test_a_password_in_the_storage_url_is_refused_without_repeating_it(url: str) -> None:
    message = refused({"storage": url})
    assert message.startswith("tuning.storage in tweakops.yaml holds a password")
    assert "PGPASSWORD" in message
    assert "s3cretPW" not in message  # the error goes to Jenkins logs


@pytest.mark.parametrize("name", ["digits-cnn", "a", "Run_2.v1", "x" * 100])
def test_study_names(name: str) -> None:
    assert tuning({"study": name}).study == name


@pytest.mark.parametrize("name", ["digits cnn", "", "x" * 101, "a/b", 5, None, "ü"])
def test_bad_study_names_are_refused(name: object) -> None:
    message = refused({"study": name})
    assert message.startswith("tuning.study in tweakops.yaml must be a name of letters, digits")


# --- numbers: parallel, patience, seed -------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 64, 3.0])
def test_parallel_bounds_accept(value: object) -> None:
    assert tuning({"parallel": value}).parallel == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", ["auto", "AUTO", " auto "])
def test_parallel_auto_leaves_it_to_the_machine(value: str) -> None:
    assert tuning({"parallel": value}).parallel is None


@pytest.mark.parametrize(
    ("cpus", "memory", "trial_cpus", "trial_memory", "expected"),
    [
        (2, 24 * GIB, None, 4 * GIB, 2),  # one trial per CPU
        (16, 24 * GIB, None, 4 * GIB, 6),  # memory holds 6 trials of 4g
        (64, None, None, 4 * GIB, 8),  # never more than 8
        (8, 64 * GIB, 3.0, None, 2),  # cpus: 3 per trial
        (1, 1 * GIB, None, 4 * GIB, 1),  # always one
        (4, None, 0.5, None, 8),  # half a CPU each
    ],
)
def test_auto_parallel_is_what_cpus_and_memory_hold(
    cpus: int, memory: int | None, trial_cpus: float | None, trial_memory: int | None, expected: int
) -> None:
    assert auto_parallel(cpus, memory, trial_cpus, trial_memory) == expected


@pytest.mark.parametrize(("cpus", "expected"), [(2, 1), (1, 1), (8, 7), (4, 3)])
def test_auto_parallel_leaves_a_cpu_to_the_warm_spares(cpus: int, expected: int) -> None:
    assert auto_parallel(cpus, None, None, None, spare_cpus=1) == expected
    assert auto_parallel(cpus, None, 2.0, None, spare_cpus=1) == max(1, (cpus - 1) // 2)


@pytest.mark.parametrize("value", [0, -1, 65, 1.5, True, "2", None])
def test_parallel_bounds_refuse(value: object) -> None:
    message = refused({"parallel": value})
    assert message == (
        f"tuning.parallel in tweakops.yaml must be auto or a whole number from 1 to 64, "
        f"got {value!r}"
    )


@pytest.mark.parametrize(("value", "expected"), [(None, None), (1, 1), (10_000, 10_000)])
def test_patience_bounds_accept(value: object, expected: int | None) -> None:
    assert tuning({"patience": value}).patience == expected


@pytest.mark.parametrize("value", [0, -3, 10_001, 2.5, False, "5"])
def test_patience_bounds_refuse(value: object) -> None:
    message = refused({"patience": value})
    assert message == (
        f"tuning.patience in tweakops.yaml must be a whole number from 1 to 10000, got {value!r}"
    )


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_grow_first_must_be_true_or_false(value: object) -> None:
    message = refused({"grow_first": value})
    assert message == f"tuning.grow_first in tweakops.yaml must be true or false, got {value!r}"


@pytest.mark.parametrize("value", [-1, 2**31, 0.5, "0"])
def test_seed_must_be_a_whole_number(value: object) -> None:
    assert refused({"seed": value}).startswith("tuning.seed in tweakops.yaml must be a whole")


# --- the --parallel override -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("3", 3), (" 2 ", 2), (4, 4), ("64", 64)])
def test_parallel_override_from_the_command_line(value: object, expected: int) -> None:
    config = apply_overrides(Config(), {"parallel": value})
    assert config.tuning == TuningSettings(parallel=expected)


def test_parallel_override_keeps_the_rest_of_the_files_tuning() -> None:
    from_file = parse_config(
        {"tuning": {"strategy": "escalate", "ladder": [{"units": 8}], "parallel": 4, "seed": 3}}
    )
    config = apply_overrides(from_file, {"parallel": "2", "threshold": "0.8", "ref": None})
    assert config.tuning == TuningSettings(
        strategy="escalate", ladder=({"units": 8},), parallel=2, seed=3
    )
    assert config.threshold == 0.8


def test_a_missing_parallel_override_changes_nothing() -> None:
    assert apply_overrides(Config(), {"parallel": None}) == Config()


def test_parallel_auto_overrides_a_number_in_the_file() -> None:
    config = parse_config({"tuning": {"parallel": 3}})
    assert apply_overrides(config, {"parallel": "auto"}).tuning.parallel is None


@pytest.mark.parametrize("value", ["0", "65", "1.5", "two", "", True])
def test_a_bad_parallel_override_names_the_flag(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(Config(), {"parallel": value})
    assert str(caught.value).startswith("--parallel must be auto or a whole number from 1 to 64")
    assert caught.value.exit_code == 2
