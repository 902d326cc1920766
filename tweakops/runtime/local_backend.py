"""A trial as a subprocess of this Python environment: the runtime for machines with no engine.

What the local runtime does not do, on purpose:
- memory_limit and cpus are ignored: RLIMIT_AS breaks frameworks that reserve large
  virtual address spaces (TensorFlow, BLAS), and preexec_fn is unsafe with threads.
- image and labels are ignored: the trial runs in the current environment.
- oom_killed stays False: without a cgroup the kernel OOM killer's SIGKILL looks like any
  other, so an OOM is reported as "killed by SIGKILL" (classified as infrastructure).
Handles are pids of session leaders, so kill() reaches the whole process group. A pid this
instance did not start (another tweakops process started it) is watched through /proc and
never reaped here; like every pid it could in theory be reused once the trial is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import training._warm as warm_module
from tweakops.errors import TrialFailed
from tweakops.pids import pid_alive
from tweakops.redact import is_secret_name
from tweakops.runtime._base import ExitStatus, Handle, Runtime, State, TrialSpec
from tweakops.runtime._reaper import kill_descendants
from tweakops.runtime._trial_folder import open_log
from tweakops.vocabulary import ProcessState, TrialVerdict

PYTHON_ALIASES: frozenset[str] = frozenset({"python", "python3"})
REAPER = (sys.executable, str(Path(__file__).with_name("_reaper.py")))  # the trial's parent
WARM = str(Path(warm_module.__file__).resolve())  # the spare interpreter, run by path
# The environment a local trial gets (trial_environment): what Python, BLAS, the frameworks,
# the locale and the terminal need. Everything else of tweakops' environment stays out.
PASSED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR",
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS",
        "PYTHONIOENCODING", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH",
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE", "NUMEXPR_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL",
        "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
        "KERAS_BACKEND", "KERAS_HOME", "CUDA_VISIBLE_DEVICES", "MPLBACKEND", "MPLCONFIGDIR",
        "XDG_CACHE_HOME", "NO_COLOR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    }
)  # fmt: skip
PASSED_PREFIXES = ("LC_",)
_KILL_GRACE = 10.0  # seconds to wait for a SIGKILLed process we cannot reap to vanish


class LocalRuntime(Runtime):
    """Runs each attempt with subprocess.Popen in its own session; thread-safe."""

    name: ClassVar[str] = "local"

    def __init__(self, poll_interval: float = 0.05) -> None:
        self._poll_interval = poll_interval
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._warm: tuple[str, ...] = ()  # modules a spare interpreter imports ahead of time
        self._warm_python = sys.executable  # the interpreter the spare runs
        self._spare: subprocess.Popen[bytes] | None = None

    def prewarm(self, modules: Sequence[str], python: str = "python") -> None:
        """Keep one interpreter with `modules` imported, ready for the next `python X.py`.

        A Keras trial then starts without its 5-10 s TensorFlow import: the spare imports
        while the previous trial trains (see training/_warm.py). `python` is the
        trials' interpreter (a venv's, for a repository with requirements of its own).
        """
        executable = _executable(python)
        with self._lock:
            stale = self._spare if executable != self._warm_python else None
            if stale is not None:
                self._spare = None
            self._warm, self._warm_python = tuple(modules), executable
        if stale is not None:
            _kill_group(stale.pid)
            stale.wait()
        self._refill()

    def close(self) -> None:
        """Stop keeping a spare interpreter: the one waiting ends (it also ends with us)."""
        with self._lock:
            spare, self._spare, self._warm = self._spare, None, ()
        if spare is not None:
            _kill_group(spare.pid)
            spare.wait()

    def start(self, spec: TrialSpec) -> Handle:
        """Start the command in spec.workdir, appending stdout and stderr to spec.log_path."""
        workdir, output = spec.workdir.resolve(), spec.output_dir.resolve()
        output.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [*REAPER, _executable(spec.command[0]), *spec.command[1:]]
        env = trial_environment(
            {**spec.env, "TWEAKOPS_OUTPUT": str(output), "PYTHONUNBUFFERED": "1"}
        )
        program = _executable(spec.command[0])
        if shutil.which(program, path=env.get("PATH")) is None:
            raise TrialFailed(
                f"cannot start trial {spec.name!r}: {program!r} is not a program on PATH; check "
                f"the entrypoint command {' '.join(spec.command)!r}",
                verdict=TrialVerdict.CODE_ERROR,
            )
        warm = self._hand_over(spec, workdir, env) if self._warm_runs(spec.command) else None
        if warm is not None:
            with self._lock:
                self._children[warm.pid] = warm
            self._refill()
            return Handle(self.name, str(warm.pid))
        try:
            with open_log(spec.log_path) as log:
                child = subprocess.Popen(
                    argv,
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise TrialFailed(
                f"cannot start trial {spec.name!r}: {exc}; check the entrypoint command "
                f"{' '.join(spec.command)!r} and that {workdir} exists",
                verdict=TrialVerdict.CODE_ERROR,
            ) from exc
        with self._lock:
            self._children[child.pid] = child
        return Handle(self.name, str(child.pid))

    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        """Reap our own child; for a foreign pid, poll until it is gone (result unknown)."""
        pid = self._pid(handle)
        child = self._child(pid)
        if child is None:
            return self._wait_foreign(handle, pid, timeout)
        try:
            return _exit_status(child.wait(timeout))
        except subprocess.TimeoutExpired:
            self.kill(handle)
            code = child.wait()
        if code == -signal.SIGKILL:
            return ExitStatus(code=None, signal=signal.SIGKILL, timed_out=True)
        return _exit_status(code)  # it ended by itself just as the budget ran out

    def status(self, handle: Handle) -> State:
        """Own child: RUNNING or EXITED; foreign pid: RUNNING or MISSING."""
        pid = self._pid(handle)
        child = self._child(pid)
        if child is not None:
            return ProcessState.RUNNING if child.poll() is None else ProcessState.EXITED
        return ProcessState.RUNNING if pid_alive(pid) else ProcessState.MISSING

    def kill(self, handle: Handle) -> None:
        """SIGKILL the attempt's process group; nothing happens if it is already gone."""
        pid = self._pid(handle)
        if self._child(pid) is not None:
            _kill_group(pid)  # our children lead their own session, so pgid == pid
        elif pid_alive(pid):
            _kill_foreign(pid)

    def remove(self, handle: Handle) -> None:
        """Kill what is left of the group (like `docker rm -f`), reap and forget the child."""
        pid = self._pid(handle)
        child = self._child(pid)
        if child is None:
            return
        _kill_group(pid)
        child.wait()
        with self._lock:
            self._children.pop(pid, None)

    def _hand_over(
        self, spec: TrialSpec, workdir: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes] | None:
        """Give the trial to the spare interpreter, if one is alive; None to start cold."""
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return None
        job = {
            "argv": list(spec.command[1:]),
            "cwd": str(workdir),
            "env": env,
            "log": str(spec.log_path.resolve()),
        }
        try:
            spare.stdin.write(json.dumps(job).encode() + b"\n")
            spare.stdin.close()
        except OSError:  # it died meanwhile: start cold
            _kill_group(spare.pid)
            spare.wait()
            return None
        return spare

    def _warm_runs(self, command: tuple[str, ...]) -> bool:
        """`python X.py ...` with the spare's interpreter: what a spare can run."""
        is_script = len(command) >= 2 and command[1].endswith(".py")
        return is_script and _executable(command[0]) == self._warm_python

    def _refill(self) -> None:
        """Start a new spare interpreter when modules are to be warmed and none is waiting."""
        with self._lock:
            if not self._warm or (self._spare is not None and self._spare.poll() is None):
                return
            self._spare = subprocess.Popen(
                [*REAPER, self._warm_python, "-u", WARM, *self._warm],
                env=trial_environment({}),  # what /proc/<pid>/environ will show: no secret
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _child(self, pid: int) -> subprocess.Popen[bytes] | None:
        with self._lock:
            return self._children.get(pid)

    def _pid(self, handle: Handle) -> int:
        """The pid in a local handle; refuses ids that would signal a whole group or init."""
        self._check_owner(handle)
        try:
            pid = int(handle.id)
        except ValueError:
            raise ValueError(f"a local handle's id must be a pid but got {handle}") from None
        if pid <= 1:
            raise ValueError(f"a local handle's pid must be above 1 but got {handle}")
        return pid

    def _wait_foreign(self, handle: Handle, pid: int, timeout: float | None) -> ExitStatus:
        """Poll a pid we cannot reap until it is gone; kill it when the timeout passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid_alive(pid):
            if deadline is not None and time.monotonic() >= deadline:
                self.kill(handle)
                _await_gone(pid, _KILL_GRACE, self._poll_interval)
                return ExitStatus(code=None, signal=signal.SIGKILL, timed_out=True)
            time.sleep(self._poll_interval)
        return ExitStatus(code=None, missing=True)


def _executable(program: str) -> str:
    """Run "python" as the interpreter running tweakops, so trials see the same packages."""
    return sys.executable if program in PYTHON_ALIASES else program


def _exit_status(returncode: int) -> ExitStatus:
    """Popen's returncode (negative for a signal) as an ExitStatus."""
    if returncode < 0:
        return ExitStatus(code=None, signal=-returncode)
    return ExitStatus(code=returncode)


def _await_gone(pid: int, limit: float, interval: float) -> None:
    """Sleep until the pid is gone or `limit` seconds passed."""
    deadline = time.monotonic() + limit
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(interval)


def _kill_group(pgid: int) -> None:
    """SIGKILL an attempt: every process below its reaper (whatever its session or group: a
    subreaper's orphans stay below it), then the group it leads."""
    if pgid == os.getpgrp():
        return
    kill_descendants(pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_foreign(pid: int) -> None:
    """SIGKILL a pid we did not start: everything below it, its group if it leads one."""
    kill_descendants(pid)
    try:
        if os.getpgid(pid) == pid:
            _kill_group(pid)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def trial_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """What a local trial's process gets: an allow-list of this environment (what Python,
    the frameworks and the locale need; never a secret-named variable) and `extra` (the
    trial's TWEAKOPS_* variables and the names listed under `env:` in tweakops.yaml)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if (name in PASSED_NAMES or name.startswith(PASSED_PREFIXES)) and not is_secret_name(name)
    }
    return {**kept, **extra}
