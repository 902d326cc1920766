from pathlib import Path

import pytest

from notify import NotifySettings
from tweakops.config import Config, apply_overrides, load_config, notify_from_env, parse_config
from tweakops.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tweakops.yaml").write_text(text)
    return tmp_path


def test_missing_file_gives_every_default(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.metric == "accuracy"
    assert config.threshold == 0.9
    assert config.search_space == ()


def test_file_values_are_read_and_typed(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
entrypoint: train.py
threshold: 97
max_trials: 5
time_budget: 15m
search_space:
  lr: {type: float, low: 0.001, high: 0.1, log: true}
  units: {type: int, low: 8, high: 64, step: 8}
  opt: [adam, sgd]
""",
        )
    )
    assert config.entrypoint == "train.py"
    assert config.threshold == pytest.approx(0.97)
    assert config.max_trials == 5
    assert config.time_budget == 900
    assert [p.name for p in config.search_space] == ["lr", "units", "opt"]
    assert config.search_space[2].choices == ("adam", "sgd")


def test_unknown_key_names_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'treshold'.*allowed are entrypoint"):
        parse_config({"treshold": 0.9})


@pytest.mark.parametrize("value", [170, -0.1, "high", True, None])
def test_threshold_out_of_range_is_rejected_with_the_value(value: object) -> None:
    with pytest.raises(ConfigError, match=r"threshold must be between 0 and 1 .* but got"):
        parse_config({"threshold": value})


@pytest.mark.parametrize("value", [0, 1.5, "ten", 20000])
def test_max_trials_must_be_a_whole_positive_number(value: object) -> None:
    with pytest.raises(ConfigError, match="max_trials must be a whole number"):
        parse_config({"max_trials": value})


@pytest.mark.parametrize(("value", "seconds"), [(30, 30), ("90s", 90), ("2h", 7200), ("1.5m", 90)])
def test_time_budget_accepts_seconds_and_units(value: object, seconds: float) -> None:
    assert parse_config({"time_budget": value}).time_budget == seconds


def test_time_budget_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match=r"time_budget must be .* got '3 weeks'"):
        parse_config({"time_budget": "3 weeks"})


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": {"type": "float", "low": 1, "high": 0.1}}, "lr: low must be below high"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "log range needs low > 0"),
        ({"lr": {"type": "gaussian"}}, "lr.type must be one of float, int, categorical"),
        ({"n": {"type": "int", "low": 1.5, "high": 4}}, "n.low must be a whole number"),
        ({"n": {"type": "int", "low": 1}}, "n.high is required"),
        ({"opt": {"type": "categorical", "choices": []}}, "opt.choices must be a non-empty list"),
        ({"bad-name": [1, 2]}, "not a valid parameter name"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1, "scale": 2}}, "unknown key 'scale'"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_search_space_errors_name_the_parameter(space: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"search_space": space})


def test_password_in_the_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"never commit passwords.*TWEAKOPS_SMTP_PASSWORD"):
        parse_config({"notify": {"smtp": {"host": "localhost", "password": "x"}}})


def test_notify_settings_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "notify: {to: a@example.org, on: [success, failure], smtp: {host: mail}}\n")
    monkeypatch.setenv("TWEAKOPS_SMTP_PORT", "2525")
    monkeypatch.setenv("TWEAKOPS_SMTP_PASSWORD", "s3cret")
    settings = load_config(tmp_path).notify
    assert settings.to == ("a@example.org",)
    assert settings.on == ("success", "failure")
    assert (settings.smtp_host, settings.smtp_port) == ("mail", 2525)
    assert settings.smtp_password == "s3cret"
    assert "s3cret" not in repr(settings)


def test_notify_lists_from_the_environment_win_and_are_checked() -> None:
    env = {"TWEAKOPS_NOTIFY_TO": "a@example.org, b@example.org", "TWEAKOPS_NOTIFY_ON": "failure"}
    settings = notify_from_env(NotifySettings(), env)
    assert settings.to == ("a@example.org", "b@example.org")
    assert settings.on == ("failure",)
    assert notify_from_env(NotifySettings(), {}).on == ("success",)
    with pytest.raises(ConfigError, match=r"TWEAKOPS_NOTIFY_ON must be .* success and/or failure"):
        notify_from_env(NotifySettings(), {"TWEAKOPS_NOTIFY_ON": "success,always"})
    with pytest.raises(ConfigError, match=r"TWEAKOPS_NOTIFY_TO must be .* addresses, got 'ops'"):
        notify_from_env(NotifySettings(), {"TWEAKOPS_NOTIFY_TO": "ops"})


def test_command_line_overrides_win_and_are_validated() -> None:
    config = apply_overrides(Config(threshold=0.9), {"threshold": "95", "max_trials": "4"})
    assert (config.threshold, config.max_trials) == (0.95, 4)
    with pytest.raises(ConfigError, match=r"but got '1000' in --threshold"):
        apply_overrides(Config(), {"threshold": "1000"})


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(write(tmp_path, "threshold: [\n"))


def test_resources_limit_each_training_container() -> None:
    config = parse_config({"resources": {"memory": "512M", "cpus": 1.5}})
    assert (config.resources.memory, config.resources.cpus) == ("512m", 1.5)
    assert parse_config({}).resources.memory == "4g"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"memory": "lots"}, "resources.memory .* must be a size like 512m or 4g, got 'lots'"),
        ({"cpus": 0}, "resources.cpus .* must be a number above 0, got 0"),
        ({"gpus": 1}, "unknown key resources.gpus"),
    ],
)
def test_bad_resources_are_named(resources: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"resources": resources})
