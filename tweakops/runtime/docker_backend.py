"""A trial in a Docker container (Docker SDK, high-level models) against a real engine.

Each attempt is one container, never reused: created fresh and started detached, or, with
prewarm(), a spare created the same way while the previous trial trained (_docker_warm):
- only the trial folder (spec.workdir.parent: src/, output/, params.json, the log) is mounted,
  read-write at /trial; the working directory and TWEAKOPS_OUTPUT point inside it, and env
  values naming host paths in the trial folder are rewritten to their /trial paths;
- network_mode "none", every capability dropped, no-new-privileges, a pids limit, memory
  limit = memory+swap limit (no swap, so an OOM is a real OOM-kill), CPU quota from spec.cpus;
- never root: a root host process runs containers as 1000:1000 (the images' `trainer` user)
  and first chowns the trial folder to it (symlinks themselves, never their targets) so the
  trial can write; any other host user runs containers as its own uid:gid;
- init=True (docker-init as PID 1): signals reach the trial, a trial that SIGKILLs itself
  really dies (PID 1 ignores signals it has no handler for), zombies are reaped;
- the root filesystem stays writable (frameworks write caches under HOME), not read-only.
Output is streamed into spec.log_path (appended) by a daemon thread per attempt; wait() joins
it, so the log is complete when wait() returns. SDK and transport errors become our errors
(RuntimeUnavailable, TrialFailed) or ExitStatus fields at this boundary.

The container's create options live in _docker_container, the log copying in _docker_logs,
the warm spares in _docker_warm; this module is the runtime itself: starting, waiting, state
and engine events.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from docker.client import DockerClient
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from tweakops.errors import RuntimeUnavailable, TrialFailed
from tweakops.runtime import docker_engine
from tweakops.runtime._base import Capacity, ExitStatus, Handle, Runtime, State, TrialSpec
from tweakops.runtime._docker_container import (
    NAME_LABEL,
    PIDS_LIMIT,
    create_container,
    first_line,
    quick_exit,
)
from tweakops.runtime._docker_container import TRANSPORT_ERRORS as _TRANSPORT_ERRORS
from tweakops.runtime._docker_logs import LOG_HEAD_BYTES, LOG_TAIL_BYTES, copy_logs
from tweakops.runtime._docker_warm import WarmSpares
from tweakops.runtime._trial_folder import default_user, hand_over, open_log, trial_folder
from tweakops.vocabulary import ProcessState, TrialVerdict

__all__ = ["LOG_HEAD_BYTES", "LOG_TAIL_BYTES", "NAME_LABEL", "PIDS_LIMIT", "DockerRuntime"]

log = logging.getLogger(__name__)

_RUN_LABEL = "tweakops.run"  # set on every trial container (tweakops.trials.trial_spec)
_EXIT_EVENTS = ("die", "oom", "destroy")
LOG_JOIN_SECONDS = 10.0  # how long a timed-out wait gives a killed container to stop
_DRAIN_POLL_SECONDS = 5.0
_STALE_WAIT_SECONDS = 5.0  # a just-killed container with our name may take a moment to stop
_LIVE_STATES = frozenset({"running", "paused", "restarting"})  # "created": never started


class DockerRuntime(Runtime):
    """Runs each attempt as a container with no network, as non-root, with limits; thread-safe."""

    name: ClassVar[str] = "docker"

    def __init__(self, client: DockerClient | None = None, user: str | None = None) -> None:
        """Connect and ping; RuntimeUnavailable (saying how to start one) if no engine answers."""
        self._client = docker_engine.connect(client, max_pool_size=64)
        self._user = user or default_user()
        self._pumps: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._spares = WarmSpares(self._client, self._user)
        weakref.finalize(self, self._spares.close)  # a spare never outlives its runtime

    @property
    def client(self) -> DockerClient:
        """The Docker SDK client this runtime talks through."""
        return self._client

    @property
    def user(self) -> str:
        """The "uid:gid" every container runs as."""
        return self._user

    def prewarm(self, modules: Sequence[str], python: str = "python") -> None:
        """Keep spare containers (keep_spares(): one per trial at once) with `modules` imported
        for the next `python X.py` trials: each, made with a trial's sandbox while it trains,
        becomes the next trial like it, one container per attempt still (_docker_warm.py).
        Needs the image's training/_warm.py."""
        self._spares.configure(modules, python)

    def keep_spares(self, count: int) -> None:
        self._spares.keep(count)

    def close(self) -> None:
        """Remove the waiting spares (also done when this runtime is collected or we exit)."""
        self._spares.close()

    def start(self, spec: TrialSpec) -> Handle:
        """Start the trial's container, or hand it to a warm spare; stream its output into
        spec.log_path."""
        if not spec.image:
            raise RuntimeUnavailable(
                f"trial {spec.name!r} has no image and the docker runtime needs one: "
                "name it with `image:` in tweakops.yaml or build one with `tweakops images build`"
            )
        trial = trial_folder(spec)
        spec.output_dir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._clear_name(spec.name)
        except _TRANSPORT_ERRORS as exc:
            raise RuntimeUnavailable(
                f"cannot clear an old container named {spec.name!r}: {first_line(exc)}"
            ) from exc
        warm = self._spares.runs(spec)
        handle = self._start_warm(spec, trial) if warm else None
        if handle is None:  # through the harness too when it is there: it ends sooner
            handle = self._start_cold(spec, trial, quick_exit(spec) if warm else spec)
        if warm:
            try:
                self._spares.refill(spec, trial, handle.id)
            except BaseException:  # Ctrl-C right here: the caller gets no handle, so no container
                with contextlib.suppress(Exception):
                    self.remove(handle)
                raise
        return handle

    def _start_cold(self, spec: TrialSpec, trial: Path, runs: TrialSpec) -> Handle:
        """A new container for the attempt, running `runs` (spec, or spec through the harness)."""
        hand_over(self._user, trial)  # no container of this trial runs now
        log_file = open_log(spec.log_path)
        try:
            container = create_container(self._client, runs, trial, self._user)
        except BaseException:
            log_file.close()
            # A signal (Jenkins' abort) can land after the engine made the container but
            # before its reply arrived: remove it by name, the caller never gets a handle.
            with contextlib.suppress(NotFound, *_TRANSPORT_ERRORS):
                self._client.containers.get(spec.name).remove(force=True)
            raise
        try:
            container.start()
            self._pump_logs(container, log_file)
        except BaseException as exc:  # Ctrl-C included: the caller never gets a handle
            log_file.close()
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                container.remove(force=True)
            if not isinstance(exc, _TRANSPORT_ERRORS):
                raise
            raise TrialFailed(
                f"cannot start trial {spec.name!r} in {spec.image}: {first_line(exc)}; check "
                f"the entrypoint command {' '.join(spec.command)!r}",
                verdict=TrialVerdict.CODE_ERROR,
            ) from exc
        return Handle(self.name, str(container.id))

    def _start_warm(self, spec: TrialSpec, trial: Path) -> Handle | None:
        """The attempt in the waiting spare; None when there is none or the hand-over failed
        (the spare is gone then, the trial's files are where they were)."""
        spare = self._spares.take(spec, trial)
        if spare is None:
            return None
        try:
            log_file = open_log(spec.log_path)
        except BaseException:
            self._spares.drop(spare, trial)
            raise
        try:
            self._spares.launch(spare, spec, trial)
            self._pump_logs(spare.container, log_file)
        except BaseException as exc:
            log_file.close()
            self._spares.drop(spare, trial)
            if not isinstance(exc, (*_TRANSPORT_ERRORS, OSError)):
                raise
            log.warning("warm start of %s failed (%s): starting it cold", spec.name, exc)
            return None
        return Handle(self.name, str(spare.container.id))

    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        """Block until it stops; kill it after `timeout` s; container or engine gone: missing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        container = self._get_quietly(handle)
        if container is None:
            return ExitStatus(code=None, missing=True)
        for _ in range(3):  # a dropped connection with the engine still up is retried
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return self._time_out(handle, container)
            try:
                container.wait(timeout=left)
                break
            except NotFound:
                return ExitStatus(code=None, missing=True)
            except _TRANSPORT_ERRORS:
                if deadline is not None and time.monotonic() >= deadline - 0.05:
                    return self._time_out(handle, container)
                if not self._engine_answers():
                    return ExitStatus(code=None, missing=True)
        else:
            return ExitStatus(code=None, missing=True)
        self._join_pump(handle.id)
        return self._final_status(container)

    def status(self, handle: Handle) -> State:
        """RUNNING, EXITED (result known) or MISSING (removed, or the engine is gone)."""
        try:
            container = self._get(handle)
            if container is None:
                return ProcessState.MISSING
            state = container.status
        except _TRANSPORT_ERRORS:
            return ProcessState.MISSING
        if state in _LIVE_STATES:
            return ProcessState.RUNNING
        ended = state in ("exited", "dead")  # Docker's words; "removing", "created": gone
        return ProcessState.EXITED if ended else ProcessState.MISSING

    def kill(self, handle: Handle) -> None:
        """SIGKILL the container (docker-init passes it on); nothing happens if it is gone."""
        self._on_container(handle, "kill", lambda container: container.kill())

    def remove(self, handle: Handle) -> None:
        """Force-remove the container (killing it if running) and finish its log; idempotent."""
        self._on_container(handle, "remove", lambda container: container.remove(force=True))
        self._join_pump(handle.id)

    def adopt(self, handle: Handle, spec: TrialSpec) -> Handle:
        """Follow a container started by an earlier tweakops process: its output from now on."""
        container = self._get_quietly(handle)
        with self._lock:
            pumping = handle.id in self._pumps
        if container is not None and not pumping:
            log_file = open_log(spec.log_path)
            self._pump_logs(container, log_file, since=int(time.time()))
        return handle

    def ready(self) -> bool:
        """True when the engine answers a ping."""
        return self._engine_answers()

    def wait_for_exits(self, timeout: float) -> list[dict[str, str]]:
        """Follow the engine's events for up to `timeout` s: labels of tweakops containers that
        died, were OOM-killed or were removed (a warm spare's too: it only wakes the caller's
        sweep, which reads the run store, never labels). An unreachable engine: sleeping."""
        since = time.time()
        filters = {"type": "container", "label": [_RUN_LABEL], "event": list(_EXIT_EVENTS)}
        try:
            events = self._client.events(
                since=since, until=since + timeout, filters=filters, decode=True
            )
            exits = []
            for event in events:
                attributes = event.get("Actor", {}).get("Attributes", {})
                exits.append({k: str(v) for k, v in attributes.items() if k.startswith("tweakops")})
                break  # one exit is reason enough to look; the caller sweeps everything
            events.close()
            return exits
        except _TRANSPORT_ERRORS as exc:
            log.warning("no engine events (%s); polling instead", first_line(exc))
            time.sleep(max(0.0, since + timeout - time.time()))
            return []

    def capacity(self) -> Capacity:
        """The engine's CPUs and memory (`docker info`): trials run there, not here."""
        try:
            info = self._client.info()
        except _TRANSPORT_ERRORS:
            return super().capacity()
        return Capacity(int(info.get("NCPU") or 1), int(info.get("MemTotal") or 0) or None)

    def inspect_container(self, handle: Handle) -> dict[str, Any]:
        """The engine's `docker inspect` document of the attempt's container."""
        container = self._get(handle)
        if container is None:
            raise RuntimeUnavailable(f"container {handle.id} is gone; nothing to inspect")
        return dict(container.attrs)

    # ---- helpers ------------------------------------------------------------------------

    def _clear_name(self, name: str) -> None:
        """Remove a finished container left with this name (an earlier attempt, a crash)."""
        try:
            stale = self._client.containers.get(name)
            if stale.status in _LIVE_STATES:
                with contextlib.suppress(*_TRANSPORT_ERRORS):
                    stale.wait(timeout=_STALE_WAIT_SECONDS)  # e.g. just killed by resume
                stale.reload()
                if stale.status in _LIVE_STATES:
                    raise TrialFailed(
                        f"a container named {name!r} is still running ({stale.short_id}): "
                        f"another tweakops process owns this trial; stop it with "
                        f"`docker rm -f {name}` if it is an orphan",
                        verdict=TrialVerdict.INFRASTRUCTURE,
                    )
            stale.remove(force=True)
        except NotFound:
            return

    def _pump_logs(
        self, container: Container, log_file: BinaryIO, since: int | None = None
    ) -> None:
        """Append the container's stdout+stderr to the open log from a daemon thread."""
        pump = threading.Thread(
            target=copy_logs,
            args=(container, log_file, since),
            name=f"logs-{container.short_id}",
        )
        pump.daemon = True
        with self._lock:
            self._pumps[str(container.id)] = pump
        pump.start()

    def _join_pump(self, container_id: str) -> None:
        """Let the log thread copy everything the container wrote: its stream ends when the
        container has stopped and the engine has sent the last byte, however long that takes;
        only an engine that stops answering ends the wait early."""
        with self._lock:
            pump = self._pumps.get(container_id)
        if pump is None:
            return
        pump.join(_DRAIN_POLL_SECONDS)
        while pump.is_alive() and self._engine_answers():
            pump.join(_DRAIN_POLL_SECONDS)
        if not pump.is_alive():
            with self._lock:
                self._pumps.pop(container_id, None)

    def _time_out(self, handle: Handle, container: Container) -> ExitStatus:
        """The wait budget ran out: kill, then report timed_out unless it ended by itself."""
        self.kill(handle)
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            container.wait(timeout=LOG_JOIN_SECONDS)
        self._join_pump(handle.id)
        ended = self._final_status(container)
        if ended.missing or ended.oom_killed or ended.code in (None, 137):
            return ExitStatus(code=ended.code, oom_killed=ended.oom_killed, timed_out=True)
        return ended  # it finished by itself just as the budget ran out

    def _final_status(self, container: Container) -> ExitStatus:
        """ExitCode and OOMKilled of a stopped container; removed or unreachable → missing."""
        try:
            container.reload()
        except _TRANSPORT_ERRORS:
            return ExitStatus(code=None, missing=True)
        state = container.attrs.get("State", {})
        if state.get("Status") not in ("exited", "dead"):  # "removing": `docker rm -f`
            return ExitStatus(code=None, missing=True)
        code = state.get("ExitCode")
        oom = bool(state.get("OOMKilled")) and code != 0  # a child OOM-killed, trial went on
        return ExitStatus(code=code, oom_killed=oom)

    def _get(self, handle: Handle) -> Container | None:
        """The handle's container, None when it no longer exists."""
        self._check_owner(handle)
        try:
            return self._client.containers.get(handle.id)
        except NotFound:
            return None

    def _on_container(
        self, handle: Handle, verb: str, action: Callable[[Container], object]
    ) -> None:
        """Apply `action`: gone, stopped or engine away is fine, a refusal is RuntimeUnavailable."""
        try:
            container = self._get(handle)
            if container is not None:
                action(container)
        except NotFound:
            return
        except APIError as exc:
            if exc.status_code == 409:  # not running any more / removal already in progress
                return
            raise RuntimeUnavailable(
                f"the Docker engine refused to {verb} container {handle.id}: {first_line(exc)}"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            log.warning("cannot %s container %s: %s", verb, handle.id, first_line(exc))

    def _get_quietly(self, handle: Handle) -> Container | None:
        """Like _get, but an unreachable engine is logged and counts as gone."""
        try:
            return self._get(handle)
        except _TRANSPORT_ERRORS as exc:
            log.warning("cannot reach the Docker engine for %s: %s", handle, first_line(exc))
            return None

    def _engine_answers(self) -> bool:
        try:
            return bool(self._client.ping())
        except _TRANSPORT_ERRORS:
            return False
