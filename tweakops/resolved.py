"""A run's configuration as resolved once, and as the run store keeps it.

The first stage after pull resolves the run's copy of tweakops.yaml with the run's
overrides (`resolve_config`) and stores the result with the run; the later stages, the
report and the email read it back (`ResolvedConfig.from_dict`) instead of parsing again.
The machine's SMTP and notify environment is not part of it: notify applies it when it
sends (a Jenkins credential is bound to the notify job only), and no secret is stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from monitor import RestartPolicy
from notify.settings import NotifySettings
from tuning.settings import Pruning, TuningSettings
from tuning.space import ParamSpec
from tweakops.config import (
    CONFIG_FILE,
    PULL_OVERRIDES,
    Config,
    Resources,
    apply_overrides,
    parse_config,
    read_config_file,
    trace_origins,
)
from tweakops.errors import ConfigError

# What a stored config that no longer fits the types raises: it is then resolved again.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, ConfigError)


@dataclass(frozen=True)
class ResolvedConfig:
    """The run's Config (tweakops.yaml and the run's overrides; no environment) and where
    its traced settings came from: "tweakops.yaml", "--max-trials (Jenkins: MAX_TRIALS)"..."""

    config: Config
    origins: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self.config)
        values["notify"].pop("smtp_password", None)  # never stored (and never in the file)
        return {"config": values, "origins": dict(self.origins)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResolvedConfig:
        return cls(config_from_dict(data["config"]), dict(data["origins"]))


def setting_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's overrides that are settings (--threshold...), not what to pull (--ref)."""
    return {key: value for key, value in overrides.items() if key not in PULL_OVERRIDES}


def resolve_config(root: Path, overrides: dict[str, Any]) -> ResolvedConfig:
    """root/tweakops.yaml (optional) with the overrides applied, read once."""
    raw = read_config_file(root)
    config = parse_config(raw, source=CONFIG_FILE)
    if overrides:
        config = apply_overrides(config, overrides)
    return ResolvedConfig(config, trace_origins(raw, overrides))


def config_from_dict(data: dict[str, Any]) -> Config:
    """A Config from its stored JSON (ResolvedConfig.to_dict)."""
    tuning = data["tuning"]
    pruning = tuning["pruning"]
    notify = data["notify"]
    return Config(
        entrypoint=data["entrypoint"],
        image=data["image"],
        metric=data["metric"],
        threshold=data["threshold"],
        max_trials=data["max_trials"],
        time_budget=data["time_budget"],
        search_space=tuple(
            ParamSpec(**{**spec, "choices": tuple(spec["choices"])})
            for spec in data["search_space"]
        ),
        notify=NotifySettings(**{**notify, "to": tuple(notify["to"]), "on": tuple(notify["on"])}),
        resources=Resources(**data["resources"]),
        watchdog=RestartPolicy(**data["watchdog"]),
        tuning=TuningSettings(
            **{
                **tuning,
                "pruning": Pruning(**pruning) if pruning is not None else None,
                "ladder": tuple(tuning["ladder"]),
            }
        ),
        dependencies=data["dependencies"],
        autotune=data["autotune"],
        autocheckpoint=data["autocheckpoint"],
        env=tuple(data["env"]),
    )
