"""User-facing output through rich: colour on a terminal, plain text in CI logs and pipes.

One colour decision (`use_color`), one table renderer (`render_table` / `make_table`), one
way to show a status word (`status_text`), and one format each for an accuracy, seconds
and a trial's params. Everything is rendered by rich with an explicit colour system and
width, so rich's own guesses (its environment variables, Jupyter) never change the output.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console as RichConsole
from rich.console import ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.status import Status
from rich.style import Style
from rich.table import Table
from rich.text import Text

from tweakops.redact import redact
from tweakops.vocabulary import RunStatus, StageStatus, TrialStatus

COLOR_CHOICES: tuple[str, ...] = ("auto", "always", "never")
# How `status` and `runs` colour a status word (rich styles); a word not listed stays plain.
STATUS_COLORS: dict[str, str] = {
    RunStatus.REACHED: "green",
    StageStatus.SUCCEEDED: "green",  # of trials too
    RunStatus.FAILED: "red",  # of stages and trials too
    RunStatus.NOT_REACHED: "red",
    RunStatus.RUNNING: "yellow",
    TrialStatus.PRUNED: "dim",
    TrialStatus.CANCELLED: "dim",
    StageStatus.SKIPPED: "dim",
}
DASH = "—"  # an unknown number
# Wide enough that rich never wraps or crops: cutting is decided here, for the last column.
_UNBOUNDED = 100_000

Cell = str | Text


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


def rich_console(
    file: TextIO, color: bool, width: int = _UNBOUNDED, live: bool = False
) -> RichConsole:
    """A rich console on `file` that colours exactly when `color` (standard ANSI colours),
    and draws spinners only when `live` (an interactive terminal)."""
    return RichConsole(
        file=file,
        color_system="standard" if color else None,
        force_terminal=color,
        force_jupyter=False,
        force_interactive=live,
        no_color=False,  # the decision is use_color's: --color always beats NO_COLOR
        width=width,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def render(renderables: Iterable[RenderableType], color: bool = False) -> str:
    """`renderables` one below the other as text, ANSI colours only when `color`; a
    table's lines are right-stripped (its padding never ends a line)."""
    lines: list[str] = []
    for renderable in renderables:
        buffer = io.StringIO()
        rich_console(buffer, color).print(renderable)
        text = buffer.getvalue().removesuffix("\n")
        if isinstance(renderable, Table):
            text = "\n".join(line.rstrip() for line in text.splitlines())
        lines.append(text)
    return "\n".join(lines)


def styled(text: str, style: str, enabled: bool = True) -> Text:
    """`text` in a rich `style` ("bold", "green"…), or plain when not `enabled`."""
    return Text.styled(text, style) if enabled and style else Text(text)


def status_text(word: str, enabled: bool = True) -> Text:
    """A status word in its colour (STATUS_COLORS); unknown words stay plain."""
    return styled(word, STATUS_COLORS.get(word, ""), enabled)


def clip(text: str, width: int) -> str:
    """`text` shortened to `width` characters ending in …, as rich cuts a table cell."""
    cut = Text(text)
    cut.truncate(width, overflow="ellipsis")
    return cut.plain


class _HeaderRule:
    """A header cell's underline: dashes as wide as its column, never widening it."""

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        yield Segment("-" * options.max_width)

    def __rich_measure__(self, console: RichConsole, options: ConsoleOptions) -> Measurement:
        return Measurement(1, 1)


def make_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    right: Collection[int] = (),
    color: bool = False,
    width: int | None = None,
) -> Table:
    """The one table of tweakops' terminal output, as a rich Table.

    Columns are two spaces apart and padded to their widest cell; a dashed rule under the
    header (bold when `color`); `right` lists the right-aligned columns (numbers). With
    `width` (a terminal's), cells of the last column are cut with … so no line wraps; the
    last header always stays whole.
    """
    cells = [[_cell(c) for c in row] for row in rows]
    natural = [len(h) for h in headers]
    for row in cells:
        natural = [max(w, c.cell_len) for w, c in zip(natural, row, strict=True)]
    last = natural[-1]
    if width is not None:
        room = width - sum(natural[:-1]) - 2 * (len(natural) - 1)
        last = max(min(last, room), len(headers[-1]), 1)
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
    for i in range(len(headers)):
        table.add_column(
            justify="right" if i in right else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=last if i == len(headers) - 1 else None,
        )
    table.add_row(*(styled(h, "bold", color) for h in headers))
    table.add_row(*(_HeaderRule() for _ in headers))
    for row in cells:
        table.add_row(*row)
    return table


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    right: Collection[int] = (),
    color: bool = False,
    width: int | None = None,
) -> str:
    """make_table's table as text; plain unless `color` (then styled cells keep their style)."""
    return render([make_table(headers, rows, right, color, width)], color)


def _cell(value: Cell) -> Text:
    """A cell as rich text; a str is taken literally (no markup: `[64, 32]` stays)."""
    return value if isinstance(value, Text) else Text(value)


def fmt_accuracy(value: float | None) -> str:
    """An accuracy (any metric) as tweakops shows it: 4 decimals, 0.9844; — when unknown."""
    return DASH if value is None else f"{value:.4f}"


def fmt_seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def fmt_params(params: Mapping[str, Any], sep: str = " ") -> str:
    """A trial's params sorted by name, `lr=0.003 epochs=40`: floats with 4 significant
    digits, everything else as str."""
    return sep.join(f"{k}={_param_value(v)}" for k, v in sorted(params.items()))


def _param_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class _Line:
    """Text written as is, in its styles: no wrapping, tab expansion or control stripping
    (rich's Text would do all three to a progress line)."""

    def __init__(self, pieces: Sequence[tuple[str, str | None]]) -> None:
        self.pieces = pieces

    def __rich_console__(self, console: RichConsole, options: ConsoleOptions) -> RenderResult:
        for text, style in self.pieces:
            yield Segment(text, Style.parse(style) if style else None)
        yield Segment.line()


def _columns(stream: TextIO) -> int:
    """The width of the terminal `stream` itself is (stderr's, not stdout's)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return terminal_width(stream) or _UNBOUNDED


class Activity:
    """What a running spinner says (Console.activity); does nothing without a spinner."""

    def __init__(self, status: Status | None) -> None:
        self._status = status

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(redact(text))


class Console:
    """Progress lines for people, through rich; tables come back as text (status prints
    them to stdout) and JSON goes straight to stdout elsewhere."""

    def __init__(
        self, stream: TextIO | None = None, color: bool | None = None, quiet: bool = False
    ):
        self.stream = stream or sys.stderr
        self.color = use_color(self.stream) if color is None else color
        self.quiet = quiet
        # a spinner only where colour was decided by a real terminal (never into a log)
        self.live = self.color and use_color(self.stream) and not quiet
        # a spinner is cut to the terminal (a wrapped one could not be erased); lines are not
        width = _columns(self.stream) if self.live else _UNBOUNDED
        self._out = rich_console(self.stream, self.color, width, live=self.live)

    def say(self, text: str = "") -> None:
        """One line, redacted, as given: never wrapped or cut (a terminal wraps it, a log
        keeps it), tabs and control characters left alone."""
        self._line(text)

    def _line(self, *parts: str | tuple[str, str]) -> None:
        """One line of parts, each redacted; a (text, style) part is styled when colouring."""
        if self.quiet:
            return
        pieces = [(redact(p), None) if isinstance(p, str) else (redact(p[0]), p[1]) for p in parts]
        self._out.print(_Line(pieces))

    def stage_start(self, name: str, detail: str = "") -> None:
        self._line((f"==> {name}", "bold"), f"  {detail}" if detail else "")

    def stage_done(self, name: str, seconds: float, summary: str) -> None:
        self._line("    ", ("ok", "green"), f" {name} ({seconds:.1f} s): {summary}")

    def stage_failed(self, name: str, message: str) -> None:
        self._line("    ", ("FAILED", "red"), f" {name}: {message}")

    def warn(self, text: str) -> None:
        self._line((f"warning: {text}", "yellow"))

    @contextlib.contextmanager
    def activity(self, text: str) -> Iterator[Activity]:
        """A transient spinner saying `text` while the block runs, on an interactive terminal
        only; elsewhere nothing is drawn (the block's own lines say what happens)."""
        if not self.live:
            yield Activity(None)
            return
        with self._out.status(redact(text), spinner="dots") as status:
            yield Activity(status)

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Cell]], right: Collection[int] = ()
    ) -> str:
        """Render a fixed-width table (returned, so status can print it to stdout)."""
        return render_table(headers, rows, right=right, color=self.color)
