"""Reading the heartbeat a training script leaves in its output folder."""

from __future__ import annotations

import os
from pathlib import Path

from monitor import HEARTBEAT_FILE, read_heartbeat


def test_heartbeat_is_the_time_written_in_the_file(tmp_path: Path) -> None:
    (tmp_path / HEARTBEAT_FILE).write_text("1700000000.25\n")
    assert read_heartbeat(tmp_path) == 1700000000.25


def test_unreadable_heartbeat_falls_back_to_the_file_mtime(tmp_path: Path) -> None:
    beat = tmp_path / HEARTBEAT_FILE
    beat.write_text("")  # torn write
    os.utime(beat, (1234.0, 1234.0))
    assert read_heartbeat(tmp_path) == 1234.0


def test_no_heartbeat_file_means_unknown(tmp_path: Path) -> None:
    assert read_heartbeat(tmp_path) is None
    assert read_heartbeat(tmp_path / "no-such-folder") is None
