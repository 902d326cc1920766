"""User-facing output: one small module; colour on a TTY, plain text in CI logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

_COLORS = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}


class Console:
    """Progress lines and tables for people; JSON goes straight to stdout elsewhere."""

    def __init__(
        self, stream: TextIO | None = None, color: bool | None = None, quiet: bool = False
    ):
        self.stream = stream or sys.stderr
        if color is None:
            color = (
                self.stream.isatty() and not os.environ.get("NO_COLOR") and not os.environ.get("CI")
            )
        self.color = color
        self.quiet = quiet

    def paint(self, text: str, color: str) -> str:
        return f"\033[{_COLORS[color]}m{text}\033[0m" if self.color else text

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def stage_start(self, name: str, detail: str = "") -> None:
        self.say(self.paint(f"==> {name}", "bold") + (f"  {detail}" if detail else ""))

    def stage_done(self, name: str, seconds: float, summary: str) -> None:
        self.say(f"    {self.paint('ok', 'green')} {name} ({seconds:.1f} s): {summary}")

    def stage_failed(self, name: str, message: str) -> None:
        self.say(f"    {self.paint('FAILED', 'red')} {name}: {message}")

    def warn(self, text: str) -> None:
        self.say(self.paint(f"warning: {text}", "yellow"))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        """Render a fixed-width table (returned, so status can print it to stdout)."""
        return render_table(headers, rows)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([line, rule, *body])


def fmt_accuracy(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
