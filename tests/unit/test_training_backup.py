"""The Keras backup's files (training/_backup.py), the background fsync (training/_durable.py)
and append_epoch(): no TensorFlow here, the weights are made-up bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from training import _durable, read_epochs
from training._backup import (
    META,
    NEXT_WEIGHTS,
    PREVIOUS,
    WEIGHTS,
    commit,
    has_state,
    make_latest_whole,
    next_weights,
    use_previous,
    whole,
)
from training.epochs import append_epoch

ROOT = Path(__file__).resolve().parents[2]


def save(folder: Path, epoch: int) -> None:
    """What the Backup callback does for an epoch, with bytes for weights."""
    next_weights(folder).write_bytes(f"weights of epoch {epoch}".encode() * 100)
    for fd in commit(folder, epoch):
        os.close(fd)


def weights_of(folder: Path, suffix: str = "") -> bytes:
    return (folder / f"{WEIGHTS}{suffix}").read_bytes()


def test_commit_keeps_the_latest_and_the_previous_state(tmp_path: Path) -> None:
    assert not has_state(tmp_path)
    for epoch in (1, 2, 3):
        save(tmp_path, epoch)
    assert whole(tmp_path) == 3 and whole(tmp_path, PREVIOUS) == 2
    assert weights_of(tmp_path).startswith(b"weights of epoch 3")
    assert weights_of(tmp_path, PREVIOUS).startswith(b"weights of epoch 2")
    meta = json.loads((tmp_path / META).read_text())
    assert meta["epoch"] == 3 and meta["batch"] == 0  # what Keras's own restore reads
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [WEIGHTS, META, WEIGHTS + PREVIOUS, META + PREVIOUS]
    )


def test_a_torn_file_of_the_latest_state_makes_the_previous_one_the_latest(
    tmp_path: Path,
) -> None:
    for epoch in (1, 2):
        save(tmp_path, epoch)
    (tmp_path / WEIGHTS).write_bytes(weights_of(tmp_path)[:10])
    assert whole(tmp_path) is None
    assert make_latest_whole(tmp_path)
    assert whole(tmp_path) == 1 and whole(tmp_path, PREVIOUS) == 1
    (tmp_path / META).write_text('{"epo')
    assert whole(tmp_path) is None and make_latest_whole(tmp_path) and whole(tmp_path) == 1


def test_weights_torn_in_place_to_the_same_size_are_not_whole(tmp_path: Path) -> None:
    save(tmp_path, 1)
    data = bytearray(weights_of(tmp_path))
    data[5] ^= 0xFF
    (tmp_path / WEIGHTS).write_bytes(bytes(data))
    assert whole(tmp_path) is None


@pytest.mark.parametrize("renames_done", [0, 1, 2, 3])
def test_a_kill_between_the_renames_of_commit_leaves_a_whole_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renames_done: int
) -> None:
    """commit() links the latest pair to the previous names, then renames the new pair in:
    wherever a kill stops it, the newest whole state is epoch 2 or (all done) epoch 3."""
    for epoch in (1, 2):
        save(tmp_path, epoch)
    calls = {"n": 0}
    real_replace = os.replace

    def replace_then_die(src: object, dst: object) -> None:
        if calls["n"] == renames_done:  # 1, 2: the hard links'; 3: the new weights'
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace_then_die)
    next_weights(tmp_path).write_bytes(b"weights of epoch 3" * 100)
    with pytest.raises(KeyboardInterrupt):
        commit(tmp_path, 3)
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads((tmp_path / META).read_text())["epoch"] in (1, 2)  # never missing
    assert make_latest_whole(tmp_path)
    assert whole(tmp_path) == 2
    assert not (tmp_path / NEXT_WEIGHTS).exists()  # the stray new file is gone


def test_a_kill_after_the_last_rename_leaves_the_new_state(tmp_path: Path) -> None:
    for epoch in (1, 2, 3):
        save(tmp_path, epoch)
    assert make_latest_whole(tmp_path) and whole(tmp_path) == 3


def test_nothing_whole_is_reported_and_keras_own_metadata_is_accepted(tmp_path: Path) -> None:
    save(tmp_path, 1)
    save(tmp_path, 2)
    for path in tmp_path.iterdir():
        path.write_bytes(b"")
    assert has_state(tmp_path) and not make_latest_whole(tmp_path)
    assert not use_previous(tmp_path)
    (tmp_path / META).write_text('{"epoch": 4, "batch": 0}')  # Keras's own: no CRC
    (tmp_path / WEIGHTS).write_bytes(b"h5")
    assert whole(tmp_path) == 4


def test_a_refused_hard_link_falls_back_to_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    for epoch in (1, 2):
        save(tmp_path, epoch)
    assert whole(tmp_path) == 2 and whole(tmp_path, PREVIOUS) == 1


# --- the background fsync ---------------------------------------------------------------


def test_jobs_run_in_order_and_wait_covers_every_earlier_job() -> None:
    done: list[int] = []
    gate = threading.Event()

    def first() -> None:
        gate.wait(5)
        done.append(1)

    _durable.submit(first)
    before = _durable.last()
    _durable.submit(lambda: done.append(2))
    assert done == []
    gate.set()
    _durable.wait(before)
    assert done[:1] == [1]
    _durable.wait()
    assert done == [1, 2]


def test_an_fsync_error_is_raised_by_the_next_wait(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    os.close(fd)  # a closed descriptor: fsync fails with EBADF
    _durable.sync([fd])
    with pytest.raises(OSError):
        _durable.wait()
    _durable.wait()  # raised once, not by every later wait (the next fit)


@pytest.mark.parametrize("ending", ["", "import atexit, os; atexit._run_exitfuncs(); os._exit(0)"])
def test_pending_jobs_finish_before_the_process_exits(tmp_path: Path, ending: str) -> None:
    """A normal exit, and the warm interpreter's quick one (atexit handlers, then os._exit)."""
    marker = tmp_path / "synced"
    script = (
        "import time, pathlib\n"
        "from training import _durable\n"
        f"_durable.submit(lambda: (time.sleep(0.5), pathlib.Path({str(marker)!r}).touch()))\n"
        f"{ending}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_append_epoch_is_visible_before_its_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path))
    fd = append_epoch(1, {"loss": 0.5})
    try:
        assert [r["epoch"] for r in read_epochs(tmp_path)] == [1]
        assert float((tmp_path / "heartbeat").read_text()) == read_epochs(tmp_path)[0]["time"]
    finally:
        os.close(fd)
    with (tmp_path / "epochs.jsonl").open("a") as handle:
        handle.write('{"epoch": 2, "lo')  # torn by a kill
    os.close(append_epoch(2, {"loss": 0.4}))
    assert [r["epoch"] for r in read_epochs(tmp_path)] == [1, 2]
    assert (tmp_path / "epochs.jsonl").read_text().count("\n") == 2
