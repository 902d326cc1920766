"""The inspect stage's record, as later stages, the report and `status` read it back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tweakops.analysis.inspection import InspectResult
from tweakops.environment import Environment
from tweakops.knobs import Knob

CHECKPOINT_WORDS = {
    "injected": "injected (every Keras fit() checkpoints each epoch and resumes after a kill)",
    "helpers": "the script's own (training.keras_callbacks or BackupAndRestore)",
    "off": "off (autocheckpoint: false)",
    "unavailable": "not injected: the image is your own and has no tweakops harness",
}
SPACE_WORDS = {
    "tweakops.yaml": "declared in tweakops.yaml",
    "inferred": "inferred from the code",
    "none": "none: nothing declared, no tunable literal found",
    "off": "off (autotune: false) and none declared",
}


@dataclass(frozen=True)
class Inspected:
    """The inspect stage's record: what was found and what was made for the trials."""

    found: InspectResult
    environment: Environment | None = None
    knobs: tuple[Knob, ...] = ()
    space: str = "none"  # tweakops.yaml | inferred | none | off (autotune: false)
    checkpoints: str = ""  # injected | helpers | off | unavailable; "" for non-Keras code
    files: tuple[str, ...] = ()  # the entrypoint and the repository modules it imports
    requirements: tuple[str, ...] = ()  # "pandas (requirements.txt:2)"
    requirement_notes: tuple[str, ...] = ()
    tuned: tuple[str, ...] = ()  # the knobs tuning writes: all inferred, or those declared

    def to_dict(self) -> dict[str, Any]:
        extra = {
            "environment": self.environment.to_dict() if self.environment else None,
            "knobs": [k.to_dict() for k in self.knobs],
            **{name: _plain(getattr(self, name)) for name in _PLAIN},
        }
        return self.found.to_dict() | extra

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inspected:
        """Read a stored record back (records from before a field existed get its default);
        tweakops.results.read_result is how the rest of tweakops calls it."""
        environment = data.get("environment")
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in data.items()
            if key in _PLAIN
        }
        return cls(
            found=InspectResult.from_dict(data),
            environment=Environment.from_dict(environment) if environment else None,
            knobs=tuple(Knob.from_dict(k) for k in data.get("knobs") or ()),
            **values,
        )

    @property
    def inject_checkpoints(self) -> bool:
        return self.checkpoints == "injected"

    def summary(self) -> str:
        found, env = self.found, self.environment
        first = f"; e.g. {found.evidence[0]}" if found.evidence else ""
        knobs = f", {len(self.knobs)} knob(s) inferred" if self.space == "inferred" else ""
        where = self.image if env is None or env.runtime == "docker" else "the local runtime"
        return (
            f"{found.framework} → {where} (rule: {found.rule}), "
            f"entrypoint {found.entrypoint}{knobs}{first}"
        )

    @property
    def image(self) -> str:
        env = self.environment
        return env.image if env is not None and env.image else self.found.image

    def facts(self) -> list[tuple[str, str]]:
        """What inspect found and applied, as (label, text) for `status` and the report."""
        found, env = self.found, self.environment
        evidence = f"; {found.entrypoint_evidence}" if found.entrypoint_evidence else ""
        rows = [
            (
                "entrypoint",
                f"{found.entrypoint} ({found.entrypoint_rule or 'rule not recorded'}{evidence})",
            )
        ]
        if env is not None:
            made = "built for this run" if env.built else "reused" if env.key else "as it is"
            rows.append(("environment", f"{env.describe()}, {made}"))
        rows.append(("requirements", ", ".join(self.requirements) or "none declared"))
        rows += [("note", note) for note in self.requirement_notes]
        if self.checkpoints:
            rows.append(("checkpoints", CHECKPOINT_WORDS[self.checkpoints]))
        rows.append(("search space", SPACE_WORDS.get(self.space, self.space)))
        if self.knobs:
            tuned = [k.name for k in self.knobs if k.name in self.tuned]
            idle = [k.name for k in self.knobs if k.name not in self.tuned]
            text = f"{len(self.knobs)} found; tuned: {', '.join(tuned) or 'none'}"
            rows.append(("knobs", text + (f"; not tuned: {', '.join(idle)}" if idle else "")))
        return rows


_PLAIN = (
    "space",
    "checkpoints",
    "files",
    "requirements",
    "requirement_notes",
    "tuned",
)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
