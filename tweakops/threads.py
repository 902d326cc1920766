"""Threads that leave Ctrl-C and Jenkins' SIGTERM to the main thread.

Linux hands a process's SIGINT or SIGTERM to any thread that does not block it, and Python
runs the handler only in the main thread, the next time that thread runs Python code. When
the kernel picks a worker (a log copy reading a container's output) while the main thread
waits in a blocking call (a container's wait), nothing wakes the main thread: the process
neither stops nor removes its container (seen in tests/integration/test_docker_backend.py's
Ctrl-C test: both threads in a socket read 30 s after the SIGINT). Every thread tweakops
starts is started with both signals blocked, so the kernel hands them to the main thread,
whose blocking call returns EINTR and raises.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

MAIN_THREAD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def main_signals_blocked() -> Iterator[None]:
    """Threads started inside (directly, or by a pool's submit) never take SIGINT or SIGTERM:
    a new thread inherits its creator's signal mask. A signal that comes meanwhile waits and
    reaches the main thread on the way out."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start(thread: threading.Thread) -> None:
    """thread.start(), the thread blocking SIGINT and SIGTERM from its first instruction."""
    with main_signals_blocked():
        thread.start()
