"""User-facing output: one small module; colour on a TTY, plain text in CI logs."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import TextIO

from tweakops.redact import redact

_COLORS = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}
_ANSI = re.compile(r"\033\[[0-9;]*m")
_PAINTED = re.compile(r"(?P<start>\033\[[0-9;]*m)(?P<text>[^\033]*)\033\[0m")  # paint()'s
COLOR_CHOICES: tuple[str, ...] = ("auto", "always", "never")
# How `status` and `runs` colour a status word; a word not listed stays plain.
STATUS_COLORS = {
    "reached": "green",
    "succeeded": "green",
    "failed": "red",
    "not_reached": "red",
    "running": "yellow",
    "pruned": "dim",
    "cancelled": "dim",
    "skipped": "dim",
}


def use_color(stream: TextIO, choice: str = "auto", env: Mapping[str, str] | None = None) -> bool:
    """Whether to colour `stream`: always/never as asked; auto only on a terminal that wants it.

    auto means: `stream` is a TTY, NO_COLOR is unset or empty (no-color.org), CI is unset or
    empty (CI logs keep plain text), and TERM is not "dumb".
    """
    if choice not in COLOR_CHOICES:
        raise ValueError(f"color must be one of {', '.join(COLOR_CHOICES)} but got {choice!r}")
    if choice != "auto":
        return choice == "always"
    env = os.environ if env is None else env
    if env.get("NO_COLOR") or env.get("CI") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal_width(stream: TextIO) -> int | None:
    """The columns of the terminal `stream` writes to; None when it is not a terminal."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    return shutil.get_terminal_size().columns


def paint(text: str, color: str, enabled: bool = True) -> str:
    """`text` wrapped in the ANSI code of `color` (a key of _COLORS), or as is when disabled."""
    return f"\033[{_COLORS[color]}m{text}\033[0m" if enabled else text


def paint_status(word: str, enabled: bool = True) -> str:
    """A status word in its colour (STATUS_COLORS); unknown words stay plain."""
    color = STATUS_COLORS.get(word)
    return paint(word, color, enabled) if color else word


def strip_ansi(text: str) -> str:
    """`text` without its ANSI colour codes: what a terminal shows."""
    return _ANSI.sub("", text)


def visible_len(text: str) -> int:
    """Length of `text` as a terminal shows it: ANSI colour codes take no room."""
    return len(strip_ansi(text))


class Console:
    """Progress lines and tables for people; JSON goes straight to stdout elsewhere."""

    def __init__(
        self, stream: TextIO | None = None, color: bool | None = None, quiet: bool = False
    ):
        self.stream = stream or sys.stderr
        self.color = use_color(self.stream) if color is None else color
        self.quiet = quiet

    def paint(self, text: str, color: str) -> str:
        return paint(text, color, self.color)

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(redact(text), file=self.stream, flush=True)

    def stage_start(self, name: str, detail: str = "") -> None:
        self.say(self.paint(f"==> {name}", "bold") + (f"  {detail}" if detail else ""))

    def stage_done(self, name: str, seconds: float, summary: str) -> None:
        self.say(f"    {self.paint('ok', 'green')} {name} ({seconds:.1f} s): {summary}")

    def stage_failed(self, name: str, message: str) -> None:
        self.say(f"    {self.paint('FAILED', 'red')} {name}: {message}")

    def warn(self, text: str) -> None:
        self.say(self.paint(f"warning: {text}", "yellow"))

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
    ) -> str:
        """Render a fixed-width table (returned, so status can print it to stdout)."""
        return render_table(headers, rows, right=right, color=self.color)


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Collection[int] = (),
    color: bool = False,
    width: int | None = None,
) -> str:
    """Columns padded to their widest cell, measured on the visible text.

    Cells may already carry colour codes (see paint); `right` lists the columns to
    right-align (numbers); `color` makes the header bold. Without colour codes in the cells
    and with color=False, the output is plain text with the same layout. With `width` (a
    terminal's), cells of the last column are cut with … so that no line wraps.
    """
    widths = [visible_len(h) for h in headers]
    for row in rows:
        widths = [max(w, visible_len(cell)) for w, cell in zip(widths, row, strict=True)]
    if width is not None:
        room = width - sum(widths[:-1]) - 2 * (len(widths) - 1)
        widths[-1] = max(min(widths[-1], room), visible_len(headers[-1]), 1)

    def line(cells: Sequence[str]) -> str:
        *first, last = cells
        fitted = [*first, cut(last, widths[-1])]
        pairs = enumerate(zip(fitted, widths, strict=True))
        return "  ".join(_pad(cell, w, i in right) for i, (cell, w) in pairs).rstrip()

    header = [paint(h, "bold", color) for h in headers]
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def cut(cell: str, width: int) -> str:
    """`cell` shortened to `width` visible characters, ending in …; a colour around it stays."""
    if visible_len(cell) <= width:
        return cell
    match = _PAINTED.fullmatch(cell)
    if match:
        return f"{match['start']}{cut(match['text'], width)}\033[0m"
    return strip_ansi(cell)[: max(width - 1, 0)] + "…"


def _pad(cell: str, width: int, right: bool) -> str:
    fill = " " * (width - visible_len(cell))
    return fill + cell if right else cell + fill


def fmt_accuracy(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
