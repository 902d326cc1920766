"""What every mapping of tweakops.yaml is checked for, whichever package parses it.

tweakops.config parses the file's top level, resources and watchdog; tuning.settings the
`tuning` section; notify.settings the `notify` section. Each checks its mapping here first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tweakops.errors import ConfigError, quoted


def check_section(
    value: object, name: str, source: str, allowed: Sequence[str], shape: str = ""
) -> Mapping[str, Any]:
    """`value` as the mapping of section `name` ("" for the file itself) of `source`; a
    ConfigError naming the section when it is no mapping, or names the first unknown key
    and the allowed ones. `shape` says what is expected, e.g. "a mapping like {cpus: 2}"."""
    allowed_text = ", ".join(allowed)
    if not isinstance(value, Mapping):
        where = f"{name} in {source}" if name else source
        raise ConfigError(f"{where} must be {shape or f'a mapping with keys {allowed_text}'}")
    unknown = [str(key) for key in value if key not in allowed]
    if unknown:
        label = f"{name}.{unknown[0]}" if name else quoted(unknown[0])
        raise ConfigError(f"unknown key {label} in {source}: allowed are {allowed_text}")
    return value


def as_number(value: object) -> float | None:
    """A finite number, or a string of one ("0.9", "95%"); None for anything else (a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
