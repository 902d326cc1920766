"""tweakops/threads.py: worker threads leave SIGINT and SIGTERM to the main thread."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tweakops import threads

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = {signal.SIGINT, signal.SIGTERM}


def _mask_in(start: Callable[[threading.Thread], None]) -> set[signal.Signals]:
    """The signals a thread started by `start` blocks."""
    seen: list[set[signal.Signals]] = []
    thread = threading.Thread(target=lambda: seen.append(_blocked()))
    start(thread)
    thread.join()
    return seen[0]


def _blocked() -> set[signal.Signals]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_a_started_thread_blocks_both_signals_and_the_callers_mask_is_unchanged() -> None:
    before = _blocked()
    assert _mask_in(threads.start) >= BLOCKED
    assert not BLOCKED & _mask_in(threading.Thread.start)  # a plain thread takes them
    assert _blocked() == before


def test_a_pools_threads_made_inside_the_block_never_take_them() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        with threads.main_signals_blocked():
            future = pool.submit(_blocked)
        assert future.result() >= BLOCKED
    assert not BLOCKED & _blocked()


BOTH_BLOCKED_IN_A_READ = """
import socket, sys, threading
from tweakops import threads
worker_pair, main_pair = socket.socketpair(), socket.socketpair()
threads.start(threading.Thread(target=worker_pair[0].recv, args=(1,), daemon=True))
print("reading", flush=True)
try:
    main_pair[0].recv(1)  # like a container's wait: nothing ever comes
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_reaches_a_main_thread_blocked_in_a_read_while_a_worker_reads_too() -> None:
    for _ in range(5):  # the kernel's choice of thread: every time, the main one
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(BOTH_BLOCKED_IN_A_READ)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline() == "reading\n"
        time.sleep(0.05)  # both threads in their read
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
        assert (process.returncode, out) == (130, "interrupted\n")
