"""A knob: one tunable value in the user's code, where it is written and its search range."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tuning.space import ParamSpec, parse_param

# How a site's new text is made from the trial's values:
#   value     the literal is replaced by the value     Dense(16) -> Dense(32)
#   pair      a (k, k) tuple is replaced by (v, v)     Conv2D(8, (3, 3)) -> Conv2D(8, (5, 5))
#   keyword   `name=value` is inserted into a call     SVC() -> SVC(C=10.0)
#   optimizer a string optimizer becomes a config dict when its learning rate is tuned
FORMS = ("value", "pair", "keyword", "optimizer")
OPTIMIZER_KNOB = "compile optimizer"  # what the optimizer-name knob of a compile() is


@dataclass(frozen=True)
class Site:
    """Where a knob's value is written: a span of one unit (file or notebook cell).

    Columns are UTF-8 byte offsets, as ast gives them. `text` is the span as written, checked
    before every rewrite; a keyword site is an empty span where `name=value` is inserted
    (after a comma when the call already has arguments).
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    text: str
    form: str = "value"
    cell: int | None = None
    keyword: str = ""
    comma: bool = False

    @property
    def label(self) -> str:
        return f"{self.file}#cell{self.cell}" if self.cell is not None else self.file

    @property
    def where(self) -> str:
        """`model.py:12`, or `model.ipynb#cell3:4`."""
        return f"{self.label}:{self.line}"


@dataclass(frozen=True)
class Knob:
    """A hyperparameter inspect found in the code: its name in the search space, what it is
    (`Dense units`), its value as written (or the library's default), and its range."""

    name: str
    what: str
    default: Any
    spec: ParamSpec
    rule: str  # the range rule, in words
    site: Site

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            "default": self.default,
            "spec": self.spec.to_dict(),
            "rule": self.rule,
            "site": asdict(self.site),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Knob:
        return cls(
            name=data["name"],
            what=data["what"],
            default=data["default"],
            spec=parse_param(data["name"], data["spec"]),
            rule=data["rule"],
            site=Site(**data["site"]),
        )
