"""tweakops.yaml, parsed once into a typed Config; errors name the key, value and allowed values."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from monitor import RestartPolicy
from notify.settings import NotifySettings, notify_from_env, parse_notify
from tuning.settings import TuningSettings, parse_parallel, parse_tuning
from tuning.space import ParamSpec, SpaceError, parse_space
from tweakops.errors import ConfigError, quoted
from tweakops.redact import is_secret_name
from tweakops.sections import as_number, check_section

CONFIG_FILE = "tweakops.yaml"
KEYS = (
    "entrypoint",
    "image",
    "metric",
    "threshold",
    "max_trials",
    "time_budget",
    "search_space",
    "notify",
    "resources",
    "watchdog",
    "tuning",
    "dependencies",
    "autotune",
    "autocheckpoint",
    "env",
)
DEPENDENCY_MODES = ("install", "host")
MAX_YAML_BYTES = 256 * 1024
MAX_SECONDS = 30 * 24 * 3600  # a time budget of 30 days at the most
RESOURCE_KEYS = ("memory", "cpus")
WATCHDOG_KEYS = ("max_restarts", "backoff", "backoff_max", "engine_wait")
# Overrides that are pull's (what to pull, which branch it was pushed to): stored with the run,
# never settings.
PULL_OVERRIDES = ("ref", "branch")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg])b?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


@dataclass(frozen=True)
class Resources:
    """Limits of one training container: memory like "4g", cpus like 1.5 (None: no limit)."""

    memory: str | None = "4g"
    cpus: float | None = None


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know from the user's repo and command line."""

    entrypoint: str | None = None
    image: str | None = None
    metric: str = "accuracy"
    threshold: float = 0.9
    max_trials: int = 10
    time_budget: float = 3600.0
    search_space: tuple[ParamSpec, ...] = ()
    notify: NotifySettings = field(default_factory=NotifySettings)
    resources: Resources = field(default_factory=Resources)
    watchdog: RestartPolicy = field(default_factory=RestartPolicy)
    tuning: TuningSettings = field(default_factory=TuningSettings)
    dependencies: str = "install"  # install the repo's requirements, or `host`: check only
    autotune: bool = True  # infer a search space from the code when none is declared
    autocheckpoint: bool = True  # checkpoint Keras fit() calls that have no BackupAndRestore
    env: tuple[str, ...] = ()  # names of this machine's variables a trial gets (never a secret)


def load_config(root: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read root/tweakops.yaml (optional), then apply command-line overrides and SMTP env.

    A run resolves its configuration once (tweakops.resolved) and keeps it in the store."""
    config = parse_config(read_config_file(root), source=CONFIG_FILE)
    if overrides:
        config = apply_overrides(config, overrides)
    return replace(config, notify=notify_from_env(config.notify, os.environ))


def read_config_file(root: Path) -> object:
    """root/tweakops.yaml as YAML data, {} when there is none."""
    path = root / CONFIG_FILE
    return read_yaml(path, CONFIG_FILE) if path.is_file() else {}


TRACED = ("threshold", "max_trials", "time_budget")  # where each came from is reported
FLAGS = {"threshold": "THRESHOLD", "max_trials": "MAX_TRIALS", "time_budget": None}


def origins(root: Path, overrides: Mapping[str, Any]) -> dict[str, str]:
    """trace_origins of root/tweakops.yaml, read even when it is not a valid config (a run
    whose config could not be resolved still says where its settings would come from)."""
    raw: object = {}
    with contextlib.suppress(ConfigError):
        raw = read_config_file(root)
    return trace_origins(raw, overrides)


def trace_origins(raw: object, overrides: Mapping[str, Any]) -> dict[str, str]:
    """Where the run's threshold, max_trials and time_budget came from: the run's flags (or
    the Jenkins parameters that became them), the repository's tweakops.yaml, or the default."""
    found = {}
    for key in TRACED:
        flag, parameter = "--" + key.replace("_", "-"), FLAGS[key]
        if overrides.get(key) not in (None, ""):
            found[key] = f"{flag}" + (f" (Jenkins: {parameter})" if parameter else "")
        elif isinstance(raw, dict) and key in raw:
            found[key] = CONFIG_FILE
        else:
            found[key] = "default"
    return found


def read_yaml(path: Path, label: str) -> object:
    """A YAML file of the repository: UTF-8, at most MAX_YAML_BYTES, no aliases (a few
    nested aliases expand to gigabytes: a "billion laughs"); {} when empty."""
    data = path.read_bytes()[: MAX_YAML_BYTES + 1]
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{label} is larger than {MAX_YAML_BYTES // 1024} KiB: keep it short")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{label} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}): "
            "save it as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        why = getattr(exc, "problem", None) or "fix its syntax"
        raise ConfigError(f"{label} is not valid YAML{where}: {why}") from None


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (*name), so a small file stays a small value."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed: write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def parse_config(raw: object, source: str = CONFIG_FILE) -> Config:
    """The file's top-level mapping; each key is parsed by its section's parser."""
    shape = f"a mapping of keys ({', '.join(KEYS)})"
    values: dict[str, Any] = {}
    for key, value in check_section(raw, "", source, KEYS, shape).items():
        values[str(key)] = _PARSERS[str(key)](value, source)
    return Config(**values)


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Command-line values win over the file; they are validated the same way."""
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "parallel":  # the one tuning setting with a flag of its own
            number = as_number(value)
            whole = int(number) if number is not None and number == int(number) else value
            parallel = parse_parallel(whole, "--parallel")
            values["tuning"] = replace(values.get("tuning", config.tuning), parallel=parallel)
            continue
        if key not in _PARSERS:
            raise ConfigError(f"unknown override {quoted(key)}: allowed are {', '.join(KEYS)}")
        values[key] = _PARSERS[key](value, f"--{key.replace('_', '-')}")
    return replace(config, **values)


def _where(key: str, source: str) -> str:
    return source if source.startswith("--") else f"{key} in {source}"


def _text(key: str) -> Any:
    def parse(value: object, source: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{_where(key, source)} must be a non-empty string, got {quoted(value)}"
            )
        return value.strip()

    return parse


def parse_threshold(value: object, source: str) -> float:
    number = as_number(value)
    if number is None or not 0 <= number <= 100:
        raise ConfigError(
            f"threshold must be between 0 and 1 (or a percentage up to 100) "
            f"but got {quoted(value)} in {_where('threshold', source)}"
        )
    return number / 100 if number > 1 else number


def _parse_max_trials(value: object, source: str) -> int:
    number = as_number(value)
    if number is None or number != int(number) or not 1 <= number <= 10_000:
        raise ConfigError(
            f"max_trials must be a whole number from 1 to 10000 (trial 0, the defaults, counts), "
            f"got {quoted(value)} in {_where('max_trials', source)}"
        )
    return int(number)


def parse_duration(value: object, source: str) -> float:
    """Seconds as a number, or '900s', '15m', '2h'."""
    number = as_number(value)
    if number is None and isinstance(value, str) and (match := _DURATION.match(value)):
        number = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if number is None or not 0 < number <= MAX_SECONDS:
        raise ConfigError(
            f"time_budget must be a positive number of seconds (30 days at most) or like '15m' "
            f"/ '2h', "
            f"got {quoted(value)} in {_where('time_budget', source)}"
        )
    return number


def _parse_metric(value: object, source: str) -> str:
    text = _text("metric")(value, source)
    if not re.match(r"^[A-Za-z0-9_.-]+$", text):
        raise ConfigError(
            f"metric names the file <metric>.txt and may hold letters, digits, '_', '.', '-': "
            f"got {quoted(value)} in {_where('metric', source)}"
        )
    return text


def _parse_space(value: object, source: str) -> tuple[ParamSpec, ...]:
    try:
        return parse_space(value)
    except SpaceError as exc:
        raise ConfigError(f"search_space in {source}: {exc}") from exc


_PARSERS: dict[str, Any] = {
    "entrypoint": _text("entrypoint"),
    "image": _text("image"),
    "metric": _parse_metric,
    "threshold": parse_threshold,
    "max_trials": _parse_max_trials,
    "time_budget": parse_duration,
    "search_space": _parse_space,
}


def _parse_resources(value: object, source: str) -> Resources:
    if value is None:
        return Resources()
    value = check_section(
        value, "resources", source, RESOURCE_KEYS, "a mapping like {memory: 4g, cpus: 2}"
    )
    memory = value.get("memory", Resources.memory)
    if memory is not None and not _MEMORY.match(str(memory)):
        raise ConfigError(
            f"resources.memory in {source} must be a size like 512m or 4g, got {quoted(memory)}"
        )
    cpus = value.get("cpus")
    number = as_number(cpus) if cpus is not None else None
    if cpus is not None and (number is None or not 0 < number <= 1024):
        raise ConfigError(
            f"resources.cpus in {source} must be a number above 0, got {quoted(cpus)}"
        )
    return Resources(memory=str(memory).strip().lower() if memory else None, cpus=number)


def memory_bytes(size: str) -> int:
    """A resources.memory size ("512m", "4g", "1.5g") in bytes."""
    match = _MEMORY.match(size)
    if match is None:
        raise ValueError(f"not a memory size: {size!r}")
    return int(float(match.group(1)) * 1024 ** "kmg".index(match.group(2).lower()) * 1024)


_PARSERS["notify"] = parse_notify
_PARSERS["resources"] = _parse_resources


def _parse_watchdog(value: object, source: str) -> RestartPolicy:
    """watchdog: {max_restarts: 3, backoff: 0.5, backoff_max: 10, engine_wait: 120} (seconds)."""
    if value is None:
        return RestartPolicy()
    shape = "a mapping like {max_restarts: 3, backoff: 0.5}"
    value = check_section(value, "watchdog", source, WATCHDOG_KEYS, shape)
    fields = {"backoff": "backoff_initial"}
    values: dict[str, Any] = {}
    for key, raw in value.items():
        number = as_number(raw)
        whole = key == "max_restarts"
        if number is None or number < 0 or (whole and number != int(number)):
            kind = "a whole number, 0 or more" if whole else "a number of seconds, 0 or more"
            raise ConfigError(f"watchdog.{key} in {source} must be {kind}, got {quoted(raw)}")
        values[fields.get(str(key), str(key))] = int(number) if whole else number
    return RestartPolicy(**values)


_PARSERS["watchdog"] = _parse_watchdog
_PARSERS["tuning"] = parse_tuning


def _flag(key: str) -> Callable[[object, str], bool]:
    def parse(value: object, source: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(key, source)} must be true or false, got {quoted(value)}")
        return value

    return parse


def _parse_dependencies(value: object, source: str) -> str:
    if value not in DEPENDENCY_MODES:
        raise ConfigError(
            f"{_where('dependencies', source)} must be install (the repository's requirements "
            f"are installed for its trials) or host (nothing installed, imports checked), "
            f"got {quoted(value)}"
        )
    return str(value)


def _parse_env(value: object, source: str) -> tuple[str, ...]:
    """env: [DATA_DIR, HF_HOME]: variables of this machine handed to every trial."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{_where('env', source)} must be a list of variable names")
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.startswith("TWEAKOPS_"):
            raise ConfigError(
                f"{_where('env', source)}: {quoted(name)} is not a variable name a trial may "
                "get (letters, digits and _, not TWEAKOPS_*)"
            )
        if is_secret_name(name):
            raise ConfigError(
                f"{_where('env', source)}: {name} is named like a secret, and tweakops never "
                "hands a secret to a trial (its code arrives by push): give the data another way"
            )
    return tuple(dict.fromkeys(names))


_PARSERS["dependencies"] = _parse_dependencies
_PARSERS["env"] = _parse_env
_PARSERS["autotune"] = _flag("autotune")
_PARSERS["autocheckpoint"] = _flag("autocheckpoint")
