"""Where a run's trials run and what was put there for them."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Environment:
    """Where trials run and what was put there for them."""

    runtime: str  # docker | local
    python: str  # the interpreter of the trial command
    base: str  # the framework image, or this Python
    image: str | None = None  # docker: the image trials run in (derived or the base)
    launcher: str = ""  # training/autorun.py as the trial sees it; "" when the image lacks it
    installed: tuple[str, ...] = ()  # what was added over the base
    provided: tuple[str, ...] = ()  # declared requirements the base already has
    notes: tuple[str, ...] = ()  # pins not honoured, requirements not installed
    key: str = ""  # the derived image tag or venv folder; "" when the base is used as it is
    built: bool = False  # made by this call (False: reused, or nothing to make)
    mode: str = "install"

    def describe(self) -> str:
        if self.runtime == "docker":
            added = f" ({self.base} + {', '.join(self.installed)})" if self.installed else ""
            return f"image {self.image}{added}"
        if self.installed:
            return f"a venv over this Python with {', '.join(self.installed)} ({self.key})"
        return f"this Python ({sys.executable})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in ("installed", "provided", "notes"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)
