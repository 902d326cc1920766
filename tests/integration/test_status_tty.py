"""`tweakops status` / `runs` on a real terminal (a pseudo-terminal) colour; through a pipe not."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ANSI = re.compile(r"\033\[[0-9;]*m")
GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"


def terminal_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's interactive shell: no CI, no NO_COLOR, a real TERM."""
    unset = ("CI", "NO_COLOR", "TWEAKOPS_RUN_ID", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return {**env, "TWEAKOPS_HOME": str(home), "TERM": "xterm-256color", **extra}


def on_a_tty(home: Path, *args: str, columns: int = 400, **env: str) -> tuple[int, str]:
    """Run `python -m tweakops ARGS` with stdout on a new pseudo-terminal `columns` wide;
    (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tweakops", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=terminal_env(home, **env),
            cwd=home.parent,
        )
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    proc.communicate(timeout=60)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


def through_a_pipe(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tweakops", *args],
        env=terminal_env(home, **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.parent,
    )


@pytest.fixture
def finished_run(make_repo, cli, home: Path) -> str:
    """A real run of the iris example that reached its threshold; its run id."""
    result = cli("run", str(make_repo("iris-sklearn")))
    assert result.returncode == 0, result.stderr[-2000:]
    return re.findall(r"\(run (\S+);", result.stdout)[-1]


def test_status_and_runs_are_coloured_on_a_terminal_and_plain_through_a_pipe(
    finished_run: str, home: Path
) -> None:
    code, shown = on_a_tty(home, "status", "--run", finished_run)
    assert code == 0
    assert f"status: {GREEN}reached{RESET}" in shown
    assert f"{GREEN}succeeded{RESET}" in shown  # the stages and trials
    assert re.search(rf"{re.escape(BOLD)}[01]\.\d{{4}}{re.escape(RESET)}", shown)  # best
    assert RED not in shown

    piped = through_a_pipe(home, "status", "--run", finished_run)
    assert piped.returncode == 0, piped.stderr
    assert "\033[" not in piped.stdout
    assert ANSI.sub("", shown) == piped.stdout  # same table, same widths, only colour added

    code, listed = on_a_tty(home, "runs")
    assert code == 0 and f"{GREEN}reached{RESET}" in listed
    plain_runs = through_a_pipe(home, "runs").stdout
    assert "\033[" not in plain_runs and ANSI.sub("", listed) == plain_runs


def test_no_color_ci_and_never_keep_a_terminal_plain_and_always_colours_a_pipe(
    finished_run: str, home: Path
) -> None:
    for env, args in [
        ({"NO_COLOR": "1"}, ()),
        ({"CI": "true"}, ()),
        ({"TERM": "dumb"}, ()),
        ({}, ("--color", "never")),
    ]:
        code, shown = on_a_tty(home, "status", *args, **env)
        assert code == 0 and "status: reached" in shown
        assert "\033[" not in shown, (env, args)

    forced = through_a_pipe(home, "status", "--color", "always", CI="true")  # e.g. `| less -R`
    assert f"status: {GREEN}reached{RESET}" in forced.stdout
    assert "\033[" not in through_a_pipe(home, "--json", "status", "--color", "always").stdout


def test_on_a_narrow_terminal_long_cells_are_cut_so_no_line_wraps(
    finished_run: str, home: Path
) -> None:
    code, shown = on_a_tty(home, "status", "--run", finished_run, columns=80)
    assert code == 0
    # the tables, below the run's lines (those keep their paths whole and may wrap)
    lines = ANSI.sub("", shown).split("\n\n", 1)[1].splitlines()
    assert max(len(line) for line in lines) <= 80
    piped = through_a_pipe(home, "status", "--run", finished_run).stdout
    full = piped.split("\n\n", 1)[1].splitlines()
    assert max(len(line) for line in full) > 80  # the inspect summary and the params are long
    inspect = next(line for line in lines if line.startswith("inspect "))
    assert inspect.endswith("…") and len(inspect) == 80
    [cut_line] = [f for f in full if f.startswith("inspect ")]
    assert cut_line.startswith(inspect.removesuffix("…"))
