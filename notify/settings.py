"""Typed notification settings, built by the caller from tweakops.yaml and the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from tweakops.errors import ConfigError

SECURITY_MODES: tuple[str, ...] = ("none", "starttls", "ssl")
NOTIFY_ON: tuple[str, ...] = ("success", "failure")
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "ssl": 465}


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
