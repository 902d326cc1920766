"""Stage 2: read the code and pick the image, recording which rule fired and the evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tweakops.context import RunContext
from tweakops.inspection import InspectResult, inspect_tree


@dataclass(frozen=True)
class Inspected:
    found: InspectResult

    def to_dict(self) -> dict[str, Any]:
        return self.found.to_dict()

    def summary(self) -> str:
        first = f"; e.g. {self.found.evidence[0]}" if self.found.evidence else ""
        return (
            f"{self.found.framework} → {self.found.image} (rule: {self.found.rule}), "
            f"entrypoint {self.found.entrypoint}{first}"
        )


def inspect(ctx: RunContext) -> Inspected:
    config = ctx.config()
    found = inspect_tree(ctx.source_dir, image_override=config.image, entrypoint=config.entrypoint)
    for item in found.evidence[:8]:
        ctx.console.say(f"    evidence: {item}")
    return Inspected(found)
