"""The console's tables and colour decision: aligned on visible text, colour only where wanted.

Cells are strings or rich Text (`styled`, `status_text`); what is pinned is the text the
tables print, with and without the ANSI codes of their colours."""

from __future__ import annotations

import io
import re

import pytest
from rich.text import Text

from tweakops.report.console import (
    Console,
    clip,
    render,
    render_table,
    status_text,
    styled,
    terminal_width,
    use_color,
)

ANSI = re.compile(r"\033\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def shown(cell: Text) -> str:
    """A styled cell as a colour terminal gets it."""
    return render([cell], color=True)


HEADERS = ["trial", "status", "accuracy", "params"]
ROWS = [
    ["0", "succeeded", "0.7556", "(defaults)"],
    ["12", "failed", "—", "lr=0.01"],
    ["3", "pruned", "0.9911", "lr=0.003 epochs=40"],
]


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def coloured_rows() -> list[list[str | Text]]:
    return [
        [styled(n, "bold"), status_text(status), styled(acc, "bold"), params]
        for n, status, acc, params in ROWS
    ]


def test_plain_table_pads_columns_to_the_widest_cell_and_right_aligns_numbers() -> None:
    table = render_table(HEADERS, ROWS, right={0, 2})
    assert table.splitlines() == [
        "trial  status     accuracy  params",
        "-----  ---------  --------  ------------------",
        "    0  succeeded    0.7556  (defaults)",
        "   12  failed            —  lr=0.01",
        "    3  pruned       0.9911  lr=0.003 epochs=40",
    ]


def test_plain_table_without_right_columns_keeps_the_left_aligned_layout() -> None:
    table = render_table(["a", "bb"], [["xyz", "1"], ["", "22"]])
    assert table.splitlines() == ["a    bb", "---  --", "xyz  1", "     22"]


def test_colour_codes_take_no_room_so_the_stripped_table_equals_the_plain_one() -> None:
    plain = render_table(HEADERS, ROWS, right={0, 2})
    coloured = render_table(HEADERS, coloured_rows(), right={0, 2}, color=True)

    assert ANSI.search(coloured)
    assert coloured != plain
    assert strip_ansi(coloured) == plain


def test_coloured_cells_line_up_on_screen_in_every_row() -> None:
    coloured = render_table(HEADERS, coloured_rows(), right={0, 2}, color=True)
    lines = [strip_ansi(line) for line in coloured.splitlines()]
    # the accuracy column ends at the same screen column in the header and every row
    ends = {line.index("accuracy") + len("accuracy") for line in lines[:1]}
    for line in lines[2:]:
        match = re.search(r"(0\.\d{4}|—)(?=  )", line)
        assert match is not None, line
        ends.add(match.end())
    assert len(ends) == 1
    # a right-aligned number is preceded, not followed, by its padding
    assert "\033[1m12\033[0m" in coloured.splitlines()[3]
    assert coloured.splitlines()[2].startswith("    \033[1m0\033[0m  ")


def test_status_words_get_their_colours_and_unknown_words_stay_plain() -> None:
    assert shown(status_text("reached")) == "\033[32mreached\033[0m"
    assert shown(status_text("succeeded")) == "\033[32msucceeded\033[0m"
    assert shown(status_text("failed")) == "\033[31mfailed\033[0m"
    assert shown(status_text("not_reached")) == "\033[31mnot_reached\033[0m"
    assert shown(status_text("running")) == "\033[33mrunning\033[0m"
    for word in ("pruned", "cancelled", "skipped"):
        assert shown(status_text(word)) == f"\033[2m{word}\033[0m"
    assert shown(status_text("pending")) == "pending"
    assert shown(status_text("failed", enabled=False)) == "failed"


def test_a_styled_cell_is_plain_text_without_colour() -> None:
    assert render([status_text("not_reached")]) == "not_reached"
    assert render([styled("0.9911", "bold")], color=False) == "0.9911"
    assert render_table(["a"], [[styled("—", "bold")]], color=False).splitlines()[-1] == "—"


def test_header_is_bold_only_with_colour() -> None:
    assert render_table(["a"], [["x"]], color=True).startswith("\033[1ma\033[0m")
    assert not ANSI.search(render_table(["a"], [["x"]]))


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (True, {"TERM": "xterm-256color"}, True),
        (True, {}, True),
        (False, {"TERM": "xterm-256color"}, False),
        (True, {"TERM": "xterm", "NO_COLOR": "1"}, False),
        (True, {"TERM": "xterm", "NO_COLOR": "0"}, False),  # any value, as no-color.org says
        (True, {"TERM": "xterm", "NO_COLOR": ""}, True),  # empty counts as unset
        (True, {"TERM": "xterm", "CI": "true"}, False),
        (True, {"TERM": "dumb"}, False),
    ],
    ids=["tty", "tty-no-term", "pipe", "no-color", "no-color-0", "no-color-empty", "ci", "dumb"],
)
def test_auto_colours_only_a_terminal_that_wants_it(
    tty: bool, env: dict[str, str], expected: bool
) -> None:
    assert use_color(FakeStream(tty), "auto", env) is expected


@pytest.mark.parametrize("tty", [True, False])
def test_always_and_never_win_over_the_terminal_and_the_environment(tty: bool) -> None:
    env = {"NO_COLOR": "1", "CI": "true", "TERM": "dumb"}
    assert use_color(FakeStream(tty), "always", env) is True
    assert use_color(FakeStream(tty), "never", {"TERM": "xterm"}) is False


def test_auto_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "yes")
    assert use_color(FakeStream(True)) is False
    monkeypatch.delenv("NO_COLOR")
    assert use_color(FakeStream(True)) is True


def test_unknown_colour_choice_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="color must be one of auto, always, never but got 'yes'"):
        use_color(FakeStream(True), "yes")


def test_console_uses_the_same_decision_for_its_progress_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "dumb")
    dumb = Console(FakeStream(True))
    assert dumb.color is False
    monkeypatch.setenv("TERM", "xterm")
    stream = FakeStream(True)
    console = Console(stream)
    console.stage_done("train", 1.25, "trial 0: 0.7556")
    assert stream.getvalue() == "    \033[32mok\033[0m train (1.2 s): trial 0: 0.7556\n"
    assert console.table(["n"], [["1"]], right={0}).startswith("\033[1mn\033[0m")


def test_a_width_cuts_the_last_column_so_every_line_fits() -> None:
    full = render_table(HEADERS, ROWS)
    narrow = render_table(HEADERS, ROWS, width=35)
    assert max(len(line) for line in full.splitlines()) > 35
    assert max(len(line) for line in narrow.splitlines()) <= 35
    assert narrow.splitlines()[-1].endswith("  lr=0.0…")  # 35 - 28 for the others
    assert narrow.splitlines()[:2] == [line[:35].rstrip() for line in full.splitlines()[:2]]
    assert render_table(HEADERS, ROWS, width=500) == full  # room enough: nothing cut


def test_a_width_too_narrow_for_the_other_columns_keeps_the_header_of_the_last() -> None:
    lines = render_table(HEADERS, ROWS, width=10).splitlines()
    assert lines[0].endswith("params") and lines[1].endswith("------")


def test_a_cut_cell_keeps_its_colour() -> None:
    rows = [["0", styled("lr=0.003 epochs=40", "bold")]]
    table = render_table(["n", "params"], rows, color=True, width=9)
    assert table.splitlines()[-1] == "0  \033[1mlr=0.…\033[0m"
    mixed = [["0", Text.assemble(("a", "red"), "bcdefg")]]
    assert strip_ansi(render_table(["n", "p"], mixed, color=True, width=7)).endswith("  abc…")


def test_clip_cuts_like_a_table_cell() -> None:
    assert clip("lr=0.003 epochs=40", 6) == "lr=0.…"
    assert clip("short", 6) == "short"


def test_a_string_cell_is_taken_literally() -> None:
    assert render_table(["p"], [["units=[64, 32] [bold]x[/bold]"]]).splitlines()[-1] == (
        "units=[64, 32] [bold]x[/bold]"
    )


@pytest.mark.parametrize("tty", [True, False])
def test_terminal_width_only_for_a_terminal(tty: bool) -> None:
    width = terminal_width(FakeStream(tty))
    assert (width is not None and width > 0) if tty else width is None


@pytest.mark.parametrize(
    ("tty", "env", "color"),
    [(True, {"CI": "true"}, None), (True, {"NO_COLOR": "1"}, None), (False, {}, True)],
    ids=["ci", "no-color", "always-into-a-pipe"],
)
def test_an_activity_draws_no_spinner_into_a_log(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], color: bool | None
) -> None:
    for name in ("CI", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = FakeStream(tty)
    console = Console(stream, color=color)
    with console.activity("building x") as activity:
        activity.update("Step 2/3")
        console.say("  Step 1/3 : FROM base")
    assert strip_ansi(stream.getvalue()) == "  Step 1/3 : FROM base\n"
    assert "building" not in stream.getvalue() and "\r" not in stream.getvalue()


def test_progress_lines_are_written_as_given_never_wrapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    stream = FakeStream(True)
    line = "      trial 3 epoch 2: accuracy=0.9844\t" + "w" * 300 + " [bold]x[/bold]"
    Console(stream).say(line)
    assert stream.getvalue() == line + "\n"
