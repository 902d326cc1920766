"""One watchdog per run: a lease in the run store, renewed while held, taken over when dead.

The process that runs a run's trials (`tweakops run`, `train`, `tune`, a resuming `watch`)
holds the run's lease. Another watchdog (Jenkins' periodic job, an inline `watch --follow`)
acts on the run only when the lease is free, expired, or held by a dead process on this
host, so two processes never start a container for the same trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from tweakops.errors import TweakopsError
from tweakops.pids import pid_alive
from tweakops.records import LeaseRecord

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # a holder that stops renewing loses the lease after this long
_TOKEN = secrets.token_hex(4)  # tells apart two processes that reuse one pid
_held: dict[tuple[str, str], int] = {}  # (home, run_id) -> nesting depth in this process
_held_lock = threading.Lock()


class LeaseStore(Protocol):
    """What a lease needs of a run store (RunStore is one)."""

    @property
    def home(self) -> Path: ...

    def claim_lease(
        self, wanted: LeaseRecord, may_take: Callable[[LeaseRecord], bool]
    ) -> LeaseRecord: ...

    def release_lease(self, run_id: str, owner: str) -> None: ...


class LeaseHeld(TweakopsError):
    """Another live process is acting on the run."""

    def __init__(self, holder: LeaseRecord) -> None:
        super().__init__(
            f"run {holder.run_id} is being worked on by {holder.describe()} (lease until "
            f"{time.strftime('%H:%M:%S', time.localtime(holder.expires))}); wait for it to "
            "finish, or stop that process and run `tweakops watch --all`"
        )
        self.holder = holder


def owner_id() -> str:
    """This process's lease owner id: "<host>:<pid>:<token>"."""
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}"


def holder_gone(holder: LeaseRecord, now: float | None = None) -> bool:
    """Expired, or held by a process of this host that no longer exists."""
    if holder.expires < (time.time() if now is None else now):
        return True
    return holder.host == socket.gethostname() and not pid_alive(holder.pid)


@contextlib.contextmanager
def run_lease(
    store: LeaseStore, run_id: str, seconds: float = LEASE_SECONDS
) -> Iterator[LeaseRecord]:
    """Hold the run's lease for the block (re-entrant in one process), renewing it meanwhile.

    Raises LeaseHeld at once when a live process holds it.
    """
    key = (str(store.home), run_id)
    owner = owner_id()
    with _held_lock:
        depth = _held.get(key, 0)
    if depth:
        with _held_lock:
            _held[key] += 1
        try:
            lease = _claim(store, run_id, owner, seconds)
            if lease.owner != owner:  # taken over while we were stopped past its expiry
                raise LeaseHeld(lease)
            yield lease
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    lease = _claim(store, run_id, owner, seconds)
    if lease.owner != owner:
        raise LeaseHeld(lease)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew,
        args=(store, run_id, owner, seconds, stop),
        daemon=True,
        name=f"lease-{run_id}",
    )
    with _held_lock:
        _held[key] = 1
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        with _held_lock:
            _held.pop(key, None)
        with contextlib.suppress(TweakopsError, OSError):
            store.release_lease(run_id, owner)


def _claim(store: LeaseStore, run_id: str, owner: str, seconds: float) -> LeaseRecord:
    host, pid = socket.gethostname(), os.getpid()
    wanted = LeaseRecord(run_id, owner, host, pid, time.time() + seconds)
    return store.claim_lease(wanted, holder_gone)


def _renew(
    store: LeaseStore, run_id: str, owner: str, seconds: float, stop: threading.Event
) -> None:
    while not stop.wait(seconds / 6):
        try:
            holder = _claim(store, run_id, owner, seconds)
        except Exception as exc:  # a busy database: try again at the next tick
            log.warning("cannot renew the lease of run %s: %s", run_id, exc)
            continue
        if holder.owner != owner:
            log.warning("run %s: the lease was taken by %s", run_id, holder.describe())
