"""monitor.run_lease: one watchdog per run, held, renewed, refused, taken over, released."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import LeaseHeld, holder_gone, owner_id, run_lease
from tweakops.context import RunContext, run_stage
from tweakops.records import LeaseRecord
from tweakops.report.console import Console
from tweakops.store import RunStore

HOST = socket.gethostname()
ELSEWHERE = "another-host.invalid"


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "home")


@pytest.fixture
def run_id(store: RunStore) -> str:
    return store.create_run("/src/repo").id


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process of this host that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a live process of this host (not this one)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def held_by(
    store: RunStore, run_id: str, host: str, pid: int, expires_in: float = 60.0
) -> LeaseRecord:
    """Put another process's lease in the store, as that process would have."""
    other = LeaseRecord(run_id, f"{host}:{pid}:0ther", host, pid, time.time() + expires_in)
    assert store.claim_lease(other, lambda _holder: False) == other
    return other


def take(store: RunStore, run_id: str) -> None:
    """Try to take the run's lease and give it back at once."""
    with run_lease(store, run_id):
        pass


def until(condition: object, timeout: float = 10.0) -> bool:
    """Poll `condition()` (a generous wait, never a measured duration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_lease_is_ours_inside_the_block_and_gone_after(store: RunStore, run_id: str) -> None:
    assert store.lease(run_id) is None
    with run_lease(store, run_id) as lease:
        stored = store.lease(run_id)
        assert stored == lease
        assert (stored.owner, stored.host, stored.pid) == (owner_id(), HOST, os.getpid())
        assert stored.owner.startswith(f"{HOST}:{os.getpid()}:")
        assert stored.expires > time.time()
    assert store.lease(run_id) is None


def test_the_lease_is_reentrant_in_one_process(store: RunStore, run_id: str) -> None:
    with run_lease(store, run_id):
        same_home = RunStore(store.home)  # another store object of the same run store
        with run_lease(same_home, run_id), run_lease(store, run_id):
            assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]
        assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]
    assert store.lease(run_id) is None


def test_a_live_holder_on_another_host_refuses_with_its_pid_and_host(
    store: RunStore, run_id: str
) -> None:
    other = held_by(store, run_id, ELSEWHERE, 4242)
    entered = False
    with pytest.raises(LeaseHeld) as refused, run_lease(store, run_id):
        entered = True
    assert not entered
    assert refused.value.holder == other
    message = str(refused.value)
    assert f"run {run_id} is being worked on by pid 4242 on {ELSEWHERE}" in message
    assert "tweakops watch --all" in message
    assert store.lease(run_id) == other  # the refusal took nothing and released nothing


def test_a_live_process_of_this_host_refuses(store: RunStore, run_id: str, live_pid: int) -> None:
    other = held_by(store, run_id, HOST, live_pid)
    with pytest.raises(LeaseHeld, match=rf"pid {live_pid} on {HOST}"):
        take(store, run_id)
    assert store.lease(run_id) == other


def test_an_expired_lease_is_taken_over(store: RunStore, run_id: str) -> None:
    held_by(store, run_id, ELSEWHERE, 4242, expires_in=-1.0)
    with run_lease(store, run_id):
        assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]
    assert store.lease(run_id) is None


def test_a_dead_holder_on_this_host_is_taken_over_before_expiry(
    store: RunStore, run_id: str, dead_pid: int
) -> None:
    held_by(store, run_id, HOST, dead_pid, expires_in=3600.0)
    with run_lease(store, run_id):
        assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]
    assert store.lease(run_id) is None


def test_a_pid_on_another_host_is_never_judged_from_here(
    store: RunStore, run_id: str, dead_pid: int
) -> None:
    """The same pid number is dead here, but it belongs to another machine: wait for expiry."""
    other = held_by(store, run_id, ELSEWHERE, dead_pid, expires_in=3600.0)
    with pytest.raises(LeaseHeld):
        take(store, run_id)
    assert store.lease(run_id) == other


def test_holder_gone_judges_expiry_then_liveness_on_this_host(
    run_id: str, dead_pid: int, live_pid: int
) -> None:
    now = time.time()

    def lease(host: str, pid: int, expires: float) -> LeaseRecord:
        return LeaseRecord(run_id, f"{host}:{pid}:x", host, pid, expires)

    assert holder_gone(lease(HOST, os.getpid(), now - 1), now)  # expired, though alive
    assert holder_gone(lease(HOST, dead_pid, now + 60), now)
    assert not holder_gone(lease(HOST, live_pid, now + 60), now)
    assert not holder_gone(lease(ELSEWHERE, dead_pid, now + 60), now)
    assert holder_gone(lease(ELSEWHERE, dead_pid, now + 60), now + 61)


def test_the_lease_is_released_when_the_block_raises(store: RunStore, run_id: str) -> None:
    with pytest.raises(RuntimeError, match="trial exploded"), run_lease(store, run_id):
        raise RuntimeError("trial exploded")
    assert store.lease(run_id) is None
    other = LeaseRecord(run_id, f"{ELSEWHERE}:1:x", ELSEWHERE, 1, time.time() + 60)
    assert store.claim_lease(other, lambda _holder: False) == other  # free for anyone


def test_the_lease_is_released_on_ctrl_c_inside_a_nested_block(
    store: RunStore, run_id: str
) -> None:
    with pytest.raises(KeyboardInterrupt), run_lease(store, run_id), run_lease(store, run_id):
        raise KeyboardInterrupt
    assert store.lease(run_id) is None
    with run_lease(store, run_id):  # nothing of the old block is left in this process
        assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]


def test_a_refused_process_can_take_the_lease_once_the_holder_releases_it(
    store: RunStore, run_id: str
) -> None:
    other = held_by(store, run_id, ELSEWHERE, 4242)
    with pytest.raises(LeaseHeld):
        take(store, run_id)
    store.release_lease(run_id, other.owner)
    with run_lease(store, run_id):
        assert store.lease(run_id).owner == owner_id()  # type: ignore[union-attr]


def test_renewal_keeps_the_expiry_moving_past_the_first_one(store: RunStore, run_id: str) -> None:
    seconds = 1.2  # renewed every 0.2 s
    with run_lease(store, run_id, seconds=seconds) as lease:
        first = lease.expires
        assert until(lambda: time.time() > first + 0.2)  # the first expiry has passed...
        renewed = store.lease(run_id)
        assert renewed is not None and renewed.owner == owner_id()  # ...and it is still ours
        assert renewed.expires > first
        assert until(lambda: store.lease(run_id).expires > renewed.expires)  # type: ignore[union-attr]
    assert store.lease(run_id) is None
    time.sleep(0.5)  # a renewer that outlived the block would claim it again
    assert store.lease(run_id) is None


def test_a_stage_is_refused_before_it_is_recorded_as_running(store: RunStore, run_id: str) -> None:
    other = held_by(store, run_id, ELSEWHERE, 4242)
    ctx = RunContext(store, store.get_run(run_id), Console(quiet=True), "local")
    called: list[str] = []

    def body(_ctx: RunContext) -> Done:
        called.append("train")
        return Done()

    with pytest.raises(LeaseHeld, match="pid 4242"):
        run_stage(ctx, "train", body)
    assert called == []
    assert store.get_stage(run_id, "train").status == "pending"
    assert store.events(run_id) == []
    assert store.lease(run_id) == other


def test_the_watch_stage_runs_without_taking_the_lease(store: RunStore, run_id: str) -> None:
    """The sweep decides itself whether to take it: a held run is only looked at."""
    other = held_by(store, run_id, ELSEWHERE, 4242)
    ctx = RunContext(store, store.get_run(run_id), Console(quiet=True), "local")
    seen: list[LeaseRecord | None] = []

    def body(_ctx: RunContext) -> Done:
        seen.append(store.lease(run_id))
        return Done()

    run_stage(ctx, "watch", body)
    assert seen == [other]
    assert store.get_stage(run_id, "watch").status == "succeeded"
    assert store.lease(run_id) == other


class Done:
    """The smallest stage result."""

    def to_dict(self) -> dict[str, object]:
        return {}

    def summary(self) -> str:
        return "done"
