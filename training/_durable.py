"""fsync off the training thread: one background thread per process, jobs in submission order.

The per-epoch writes of the Keras callbacks are made visible at once by the training thread
(atomic renames, an appended line): a killed process leaves them all on disk, in the order
they were made. What only a machine crash could undo, the page cache not yet written to the
device, is fsync's job, and fsync waits for the device: the callbacks hand their file
descriptors to sync() and go on training. Jobs run one at a time in submission order, so a
backup is synced before the epoch line that follows it. An error (EIO from fsync) is raised
by the next wait() on the training thread. Pending jobs finish before the interpreter exits:
the executor joins its thread at shutdown, and an atexit handler waits for them too, for an
exit that runs the atexit handlers but not the interpreter's shutdown (training/_warm.py's
os._exit). A forked child starts with none.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from training.files import fsync_dir

_executor: ThreadPoolExecutor | None = None
_last: Future[None] | None = None


def submit(job: Callable[[], None]) -> Future[None]:
    """Run `job` on the background thread after every job submitted before it."""
    global _executor, _last
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tweakops-fsync")
    _last = _executor.submit(job)
    return _last


def sync(fds: Iterable[int], directories: Iterable[Path] = ()) -> Future[None]:
    """fsync and close `fds`, then fsync `directories` (their renames), in the background.

    The descriptors belong to the job from now on: it closes them even when fsync fails."""
    owned, folders = list(fds), list(directories)
    return submit(lambda: _sync_now(owned, folders))


def last() -> Future[None] | None:
    """The last job submitted: wait for it to wait for every job before it too."""
    return _last


def wait(job: Future[None] | None = None) -> None:
    """Block until `job` (default: the last one submitted) is done; raise what it raised,
    once: a failed last job is forgotten after it is raised, not raised by every fit()."""
    global _last
    job = _last if job is None else job
    if job is None:
        return
    try:
        job.result()
    except BaseException:
        if job is _last:
            _last = None
        raise


def _sync_now(fds: list[int], directories: list[Path]) -> None:
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    for folder in directories:
        fsync_dir(folder)


def _wait_at_exit() -> None:
    """Wait for the pending jobs; an error is one line on stderr (the process ends anyway)."""
    try:
        wait()
    except Exception as exc:
        print(f"tweakops: a checkpoint could not be synced to disk: {exc}", file=sys.stderr)


def _forget_after_fork() -> None:
    """A forked child has no background thread: start afresh (its parent's jobs are its own)."""
    global _executor, _last
    _executor, _last = None, None


atexit.register(_wait_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
