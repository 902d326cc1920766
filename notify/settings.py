"""Typed notification settings: the `notify` section of tweakops.yaml and the environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tweakops.errors import ConfigError, quoted
from tweakops.sections import as_number, check_section

SECURITY_MODES: tuple[str, ...] = ("none", "starttls", "ssl")
NOTIFY_ON: tuple[str, ...] = ("success", "failure")
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "ssl": 465}
NOTIFY_KEYS = ("to", "from", "on", "smtp")
SMTP_KEYS = ("host", "port", "user", "security")


@dataclass(frozen=True)
class NotifySettings:
    """Who gets the report and how it is sent; the password is never printed."""

    to: tuple[str, ...] = ()
    sender: str = "tweakops@localhost"
    on: tuple[str, ...] = ("success",)  # subset of {"success","failure"}
    smtp_host: str | None = None  # None → no server: write to the outbox
    smtp_port: int | None = None  # default 25 / 587 starttls / 465 ssl
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)  # never printed or logged
    security: str = "none"  # "none" | "starttls" | "ssl"
    timeout: float = 10.0
    retries: int = 3  # attempts in total before giving up (at least one is made)

    def __post_init__(self) -> None:
        """Reject values that would only fail later, naming the key, the value and the choices."""
        if isinstance(self.to, str):
            raise ConfigError(
                f"notify.to must be a list of addresses but got the string {self.to!r}"
            )
        if self.security not in SECURITY_MODES:
            allowed = ", ".join(SECURITY_MODES)
            raise ConfigError(
                f"notify.smtp.security (TWEAKOPS_SMTP_SECURITY) must be one of {allowed} "
                f"but got {self.security!r}"
            )
        unknown = sorted(set(self.on) - set(NOTIFY_ON))
        if isinstance(self.on, str) or unknown:
            raise ConfigError(f"notify.on must be a list of success, failure but got {self.on!r}")
        if self.smtp_port is not None and not 0 < self.smtp_port < 65536:
            raise ConfigError(
                f"notify.smtp.port (TWEAKOPS_SMTP_PORT) must be 1–65535 but got {self.smtp_port}"
            )
        if self.timeout <= 0 or self.retries < 0:
            raise ConfigError(
                f"notify.timeout must be > 0 and notify.retries >= 0 "
                f"but got timeout={self.timeout}, retries={self.retries}"
            )

    @property
    def port(self) -> int:
        """The SMTP port: the configured one or the default of the security mode."""
        return self.smtp_port if self.smtp_port is not None else DEFAULT_PORTS[self.security]

    @property
    def address(self) -> str:
        """host:port of the SMTP server, for messages."""
        return f"{self.smtp_host}:{self.port}"


def parse_notify(value: object, source: str) -> NotifySettings:
    """The `notify` mapping of tweakops.yaml; every error names the key and the value."""
    if value is None:
        return NotifySettings()
    if isinstance(value, Mapping):  # YAML 1.1 reads the key `on` as True
        value = {("on" if key is True else key): item for key, item in value.items()}
    section = check_section(value, "notify", source, NOTIFY_KEYS)
    to = section.get("to", [])
    to_list = [to] if isinstance(to, str) else to
    if not isinstance(to_list, list) or not all(isinstance(a, str) and "@" in a for a in to_list):
        raise ConfigError(
            f"notify.to in {source} must be an address or a list of addresses, got {quoted(to)}"
        )
    on = section.get("on", list(NotifySettings.on))
    on_list = [on] if isinstance(on, str) else on
    if not isinstance(on_list, list) or not set(on_list) <= set(NOTIFY_ON):
        raise ConfigError(
            f"notify.on in {source} must list success and/or failure, got {quoted(on)}"
        )
    settings = NotifySettings(to=tuple(to_list), on=tuple(on_list))
    if "from" in section:
        settings = replace(settings, sender=_sender(section["from"], source))
    return _with_smtp(settings, _smtp_section(section.get("smtp") or {}, source), source)


def _sender(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"notify.from in {source} must be a non-empty string, got {quoted(value)}"
        )
    return value.strip()


def _smtp_section(value: object, source: str) -> Mapping[str, Any]:
    """notify.smtp: host, port, user and security; never a password."""
    if isinstance(value, Mapping) and "password" in value:
        raise ConfigError(
            f"notify.smtp.password in {source}: never commit passwords; "
            "set TWEAKOPS_SMTP_PASSWORD (a Jenkins credential) instead"
        )
    return check_section(value, "notify.smtp", source, SMTP_KEYS)


def _with_smtp(settings: NotifySettings, smtp: Mapping[str, Any], source: str) -> NotifySettings:
    security = smtp.get("security", settings.security)
    if security not in SECURITY_MODES:
        raise ConfigError(
            f"notify.smtp.security in {source} must be none, starttls or ssl"
            f", got {quoted(security)}"
        )
    port = smtp.get("port")
    if port is not None and (as_number(port) is None or not 0 < int(port) < 65536):
        raise ConfigError(f"notify.smtp.port in {source} must be a port number, got {quoted(port)}")
    return replace(
        settings,
        smtp_host=smtp.get("host", settings.smtp_host),
        smtp_port=int(port) if port is not None else settings.smtp_port,
        smtp_user=smtp.get("user", settings.smtp_user),
        security=security,
    )


def notify_from_env(settings: NotifySettings, env: Mapping[str, str]) -> NotifySettings:
    """TWEAKOPS_SMTP_* and TWEAKOPS_NOTIFY_* (e.g. bound from Jenkins credentials) win."""
    smtp = {
        key: env[f"TWEAKOPS_SMTP_{key.upper()}"]
        for key in SMTP_KEYS
        if env.get(f"TWEAKOPS_SMTP_{key.upper()}")
    }
    settings = _with_smtp(settings, smtp, "the environment")
    if env.get("TWEAKOPS_SMTP_PASSWORD"):
        settings = replace(settings, smtp_password=env["TWEAKOPS_SMTP_PASSWORD"])
    if env.get("TWEAKOPS_NOTIFY_TO"):
        to = _env_list(env, "TWEAKOPS_NOTIFY_TO", lambda a: "@" in a, "addresses")
        settings = replace(settings, to=to)
    if env.get("TWEAKOPS_NOTIFY_ON"):  # also read when the run has no tweakops.yaml (pull failed)
        on = _env_list(env, "TWEAKOPS_NOTIFY_ON", NOTIFY_ON.__contains__, "success and/or failure")
        settings = replace(settings, on=on)
    if env.get("TWEAKOPS_NOTIFY_FROM"):
        settings = replace(settings, sender=env["TWEAKOPS_NOTIFY_FROM"])
    return settings


def _env_list(
    env: Mapping[str, str], name: str, valid: Callable[[str], bool], expected: str
) -> tuple[str, ...]:
    """A comma-separated variable as a tuple; every item must pass `valid`."""
    items = tuple(item.strip() for item in env[name].split(",") if item.strip())
    if not items or not all(valid(item) for item in items):
        raise ConfigError(f"{name} must be a comma-separated list of {expected}, got {env[name]!r}")
    return items
