"""The `watchdog` key of tweakops.yaml: parsed into the RestartPolicy that supervises trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor import RestartPolicy
from tweakops.config import load_config, parse_config
from tweakops.errors import ConfigError


def watchdog(value: Any) -> RestartPolicy:
    return parse_config({"watchdog": value}).watchdog


def test_no_watchdog_key_gives_the_default_policy() -> None:
    assert parse_config({}).watchdog == RestartPolicy()
    assert watchdog(None) == RestartPolicy()
    assert watchdog({}) == RestartPolicy()


def test_every_key_is_read_and_typed() -> None:
    policy = watchdog({"max_restarts": 15, "backoff": 0.1, "backoff_max": 2, "engine_wait": 30})
    assert policy == RestartPolicy(
        max_restarts=15, backoff_initial=0.1, backoff_max=2.0, engine_wait=30.0
    )
    assert isinstance(policy.max_restarts, int)
    assert policy.backoff_factor == RestartPolicy().backoff_factor  # not configurable


def test_keys_left_out_keep_their_defaults() -> None:
    policy = watchdog({"max_restarts": 0})
    assert policy == RestartPolicy(max_restarts=0)
    assert policy.engine_wait == RestartPolicy().engine_wait


def test_the_yaml_forms_users_write_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "tweakops.yaml").write_text(
        "watchdog:\n  max_restarts: 5.0\n  backoff: '0.25'\n  backoff_max: 0\n  engine_wait: 1e2\n"
    )
    policy = load_config(tmp_path).watchdog
    assert policy == RestartPolicy(
        max_restarts=5, backoff_initial=0.25, backoff_max=0.0, engine_wait=100.0
    )
    assert type(policy.max_restarts) is int
    flow = yaml.safe_load("watchdog: {max_restarts: 15, backoff: 0.1}")
    assert parse_config(flow).watchdog == RestartPolicy(max_restarts=15, backoff_initial=0.1)


def test_the_policy_reaches_the_delays_between_restarts() -> None:
    policy = watchdog({"backoff": 0.1, "backoff_max": 0.3})
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]


@pytest.mark.parametrize("key", ["retries", "max_restart", "backoff_initial", "backoff_factor"])
def test_an_unknown_key_is_named_with_the_allowed_ones(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        watchdog({key: 1})
    message = str(error.value)
    assert f"unknown key watchdog.{key} in tweakops.yaml" in message
    assert "max_restarts, backoff, backoff_max, engine_wait" in message


@pytest.mark.parametrize("value", [[1, 2], "max_restarts: 3", 3, True])
def test_a_watchdog_that_is_not_a_mapping_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"watchdog in tweakops.yaml must be a mapping"):
        watchdog(value)


@pytest.mark.parametrize("value", [2.5, "three", "3 times", True, None, [3], float("nan")])
def test_max_restarts_must_be_a_whole_number(value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        watchdog({"max_restarts": value})
    expected = "watchdog.max_restarts in tweakops.yaml must be a whole number, 0 or more, got"
    assert f"{expected} {value!r}" in str(error.value)


@pytest.mark.parametrize("key", ["backoff", "backoff_max", "engine_wait"])
@pytest.mark.parametrize("value", ["soon", "5 seconds", False, None, {"s": 1}, float("inf")])
def test_seconds_must_be_numbers(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        watchdog({key: value})
    expected = f"watchdog.{key} in tweakops.yaml must be a number of seconds, 0 or more, got"
    assert f"{expected} {value!r}" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_restarts", -1), ("backoff_max", -0.5), ("engine_wait", -30), ("engine_wait", "-1")],
)
def test_negative_values_are_refused_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        watchdog({key: value})
    message = str(error.value)
    assert message.startswith(f"watchdog.{key} in tweakops.yaml must be ")
    assert message.endswith(f"0 or more, got {value!r}")


def test_a_negative_backoff_is_refused_naming_the_key_the_user_wrote() -> None:
    with pytest.raises(ConfigError) as error:
        watchdog({"backoff": -0.1})
    message = str(error.value)
    assert (
        message
        == "watchdog.backoff in tweakops.yaml must be a number of seconds, 0 or more, got -0.1"
    )


def test_a_bad_watchdog_in_the_file_fails_loading_with_the_key(tmp_path: Path) -> None:
    (tmp_path / "tweakops.yaml").write_text("threshold: 0.9\nwatchdog:\n  max_restarts: many\n")
    with pytest.raises(ConfigError, match=r"watchdog\.max_restarts in tweakops.yaml"):
        load_config(tmp_path)
