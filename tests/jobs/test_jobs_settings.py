"""jobs/settings.yaml loads into JenkinsSettings; a bad value is an error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tweakops.errors import ConfigError
from tweakops.jenkins.jobs import JOBS_DIR, JenkinsSettings, load_settings

FIXTURE_SETTINGS = Path(__file__).parent / "fixtures" / "settings.yaml"
REPO = "repo_url: https://git.example.test/ml/digits.git\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_settings_file_loads() -> None:
    settings = load_settings()
    assert settings == load_settings(JOBS_DIR / "settings.yaml")
    assert settings.tweakops_home.startswith("/")


def test_the_fixture_settings_load_with_every_value() -> None:
    assert load_settings(FIXTURE_SETTINGS) == JenkinsSettings(
        repo_url="https://git.example.test/ml/digits-fixture.git",
        prefix="fx-",
        branch="release-7",
        agent_label="gpu-fixture",
        tweakops_home="/srv/tweakops-fixture",
        threshold="0.93",
        max_trials="7",
        watchdog_schedule="H/7 * * * *",
        poll_schedule="H/11 * * * *",
        trigger_token="fixture-token-42",
        view_name="fixture-view",
        runtime="auto",
    )


def test_a_docker_runtime_forbids_the_local_one_on_the_agent(tmp_path: Path) -> None:
    docker = load_settings(write(tmp_path, REPO))
    assert (docker.runtime, docker.variables()["local_runtime"]) == ("docker", "forbid")
    local = load_settings(write(tmp_path, REPO + "runtime: local\n"))
    assert local.variables()["local_runtime"] == "allow"
    with pytest.raises(ConfigError, match=r"runtime in .* is 'podman': expected docker, auto"):
        load_settings(write(tmp_path, REPO + "runtime: podman\n"))


def test_only_repo_url_is_required(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, REPO))
    assert settings == JenkinsSettings(repo_url="https://git.example.test/ml/digits.git")
    assert settings.trigger_token is None


def test_numbers_none_and_an_empty_label_are_accepted(tmp_path: Path) -> None:
    text = REPO + "threshold: 95\nmax_trials: 20\ntrigger_token: none\nagent_label:\n"
    settings = load_settings(write(tmp_path, text))
    assert (settings.threshold, settings.max_trials) == ("95", "20")
    assert (settings.trigger_token, settings.agent_label) == (None, "")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("prefix: team/a-", r"prefix in .* is 'team/a-': expected letters"),
        ("repo_url: ext::sh -c touch", r"repo_url in .*remote-helper transports"),
        ("repo_url: --upload-pack=x", r"repo_url in .*git option"),
        ("branch: -main", r"branch in .*refusing ref '-main'"),
        ("branch: a..b", r"branch in .*refusing ref 'a\.\.b'"),
        ("tweakops_home: var/lib/tweakops", r"tweakops_home in .* expected an absolute path"),
        ("threshold: '1.5x'", r"threshold must be between 0 and 1 .*'1\.5x' in threshold in"),
        ("threshold: 101", r"threshold must be between 0 and 1 .*'101'"),
        ("max_trials: 0", r"max_trials must be a whole number .*'0' in max_trials in"),
        ("watchdog_schedule: every 5 minutes", r"watchdog_schedule in .* expected a Jenkins cron"),
        ("poll_schedule: '* * * *'", r"poll_schedule in .* expected a Jenkins cron"),
        ("trigger_token: 'a b'", r"trigger_token in .* is 'a b': expected URL-safe"),
        ("view_name: 'a/b'", r"view_name in .* is 'a/b'"),
        ("view_name: ''", r"view_name in .* is ''"),
        ("agent_label: [a, b]", r"agent_label in .* must be text, got \['a', 'b'\]"),
        ("prefix: '{team}-'", r"prefix in .* without \{ or \}"),
        ('branch: "main\\nrm -rf /"', r"branch in .* must be one line"),
        ("colour: blue", r"unknown key 'colour' in .*: allowed are repo_url, prefix"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_key(
    tmp_path: Path, line: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, REPO + line + "\n"))


def test_a_missing_repo_url_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"repo_url is missing in .*settings\.yaml"):
        load_settings(write(tmp_path, "prefix: a-\n"))


@pytest.mark.parametrize("text", ["- prefix: a-\n", "just text\n", ""])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping of settings"):
        load_settings(write(tmp_path, text))


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read Jenkins settings"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="cannot read Jenkins settings"):
        load_settings(write(tmp_path, "prefix: [unclosed\n"))
