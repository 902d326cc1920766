"""A warm interpreter: imports the framework first, then becomes one trial.

    python -u /path/to/training/_warm.py [--job-file FILE --owner FILE] MODULE...
    python /path/to/training/_warm.py --now SCRIPT ARG...   # a cold trial: no wait, no job

Run by path with only the standard library, never as `-m training._warm`: nothing of the
harness is imported, so a repository's own `training.py` is not shadowed (as autorun.py).
It imports the modules (TensorFlow/Keras take 5-10 s), then waits for its job, a JSON object
{"argv": ["train.py", ...], "cwd": ..., "env": {...}} (plus "log" on stdin), and becomes that
trial: the trial's cwd, environment and argv, the script run as __main__, its folder first on
sys.path; it exits like the script would, minus the interpreter's slow teardown. With --now
it is a cold trial that exits the same way: `python SCRIPT ARG...` in the cwd and environment
it was started with (the docker runtime's trials that found no spare, trial 0 for one).

Two ways to get the job:
- stdin (the local runtime): one JSON line; the output goes to job["log"] and the environment
  is job["env"] alone. EOF (the tweakops process went away) ends it without running anything.
- --job-file (the docker runtime: a spare container): the host writes FILE atomically (temp
  file + rename) and this polls for it; the output stays on the container's stdout/stderr,
  silenced until the job comes (imports print), and job["env"] is laid over the environment
  the container started with, as Docker lays a container's variables over its image's. The
  host holds an exclusive flock on the --owner file while it may still send a job: once that
  lock is free and no job came, its tweakops process is gone and this ends.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import fcntl
import gc
import importlib
import importlib.machinery
import io
import json
import os
import runpy
import stat
import sys
import time
import traceback
import types
from types import TracebackType
from typing import Any

JOB_FILE = ".tweakops-job.json"  # in the spare's folder (/trial in a container)
OWNER_FILE = ".tweakops-owner"  # the host's flock: the spare's owner is alive
POLL_SECONDS = 0.02  # how often a spare looks for its job file
OWNER_SECONDS = 1.0  # how often it asks whether its owner is still there
_OPTIONS = ("--job-file", "--owner")
NOW = "--now"  # run the script that follows at once, as a cold trial


def main(argv: list[str]) -> int:
    if argv[:1] == [NOW] and len(argv) >= 2:
        _drop_own_folder()
        sys.argv = argv[1:]
        sys.path.insert(0, os.path.dirname(os.path.realpath(sys.argv[0])))  # as `python X.py`
        return _run(sys.argv[0])
    options, modules = _parse(argv)
    job_file, owner = options.get("--job-file"), options.get("--owner")
    _drop_own_folder()
    base_env = dict(os.environ) if job_file else {}
    quiet = _silence() if job_file else None
    for name in modules:
        with contextlib.suppress(Exception):  # the script imports it again and says why
            importlib.import_module(name)
    if job_file:
        raw = _await_job(job_file, owner)
        if owner is not None:
            with contextlib.suppress(OSError):  # the trial never sees it either
                os.unlink(owner)
        if quiet is not None:
            _restore(quiet)
    else:
        raw = sys.stdin.readline().encode()
    if not raw:
        return 0
    job = json.loads(raw)
    if not job_file and not _output_to(job["log"]):
        return 1
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update({**base_env, **job["env"]})
    sys.argv = list(job["argv"])
    sys.path.insert(0, os.path.dirname(os.path.realpath(sys.argv[0])))  # as `python X.py`
    return _run(sys.argv[0])


def _drop_own_folder() -> None:
    """Run by path, sys.path[0] is training/: its modules (metric, files...) must not shadow
    anything the framework imports. (With -P/PYTHONSAFEPATH it is not there at all.)"""
    own = os.path.dirname(os.path.realpath(__file__))
    if sys.path and sys.path[0] and os.path.realpath(sys.path[0]) == own:
        del sys.path[0]


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """The leading `--option VALUE` pairs, then the modules to import."""
    options: dict[str, str] = {}
    while len(argv) >= 2 and argv[0] in _OPTIONS:
        options[argv[0]] = argv[1]
        argv = argv[2:]
    return options, argv


def _silence() -> tuple[int, int]:
    """Point stdout and stderr at /dev/null (what imports print is not the trial's output);
    the original descriptors, to restore."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    return saved


def _restore(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((1, 2), saved, strict=True):
        os.dup2(fd, target)
        os.close(fd)


def _await_job(path: str, owner: str | None) -> bytes:
    """The job file's bytes once the host wrote it (it is removed: the trial never sees it);
    empty when the owner let go without sending one."""
    checked = time.monotonic()
    while True:
        job = _take(path)
        if job is not None:
            return job
        if owner is not None and time.monotonic() - checked >= OWNER_SECONDS:
            checked = time.monotonic()
            if not owner_alive(owner):
                return _take(path) or b""  # the host writes the job before it lets go
        time.sleep(POLL_SECONDS)


def _take(path: str) -> bytes | None:
    try:
        with open(path, "rb") as job:
            data = job.read()
    except FileNotFoundError:
        return None
    with contextlib.suppress(OSError):
        os.unlink(path)
    return data


def owner_alive(path: str) -> bool:
    """Whether a process still holds the exclusive flock on `path` (the spare's owner)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # no flock here: keep waiting, the host removes the spare itself
    finally:
        os.close(fd)
    return False


def _output_to(log_path: str) -> bool:
    """stdout and stderr appended to the log: never a link or a FIFO planted in the folder."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    log = os.open(log_path, flags, 0o644)
    if not stat.S_ISREG(os.fstat(log).st_mode):
        return False
    os.set_blocking(log, True)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return True


def _run(script: str) -> int:
    """Run the script as __main__ and exit as the interpreter would have."""
    try:
        _run_main(script)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, _script_frames(exc.__traceback__))
        code = 1
    _quick_exit(code)
    return code


def _run_main(script: str) -> None:
    """Run the script as `python SCRIPT` would: a new __main__ module, __file__ absolute,
    sys.argv as it is, no __future__ flag of this file."""
    path = os.path.abspath(script)
    if not os.path.isfile(path):  # a folder or a zip with a __main__.py
        runpy.run_path(path, run_name="__main__")
        return
    with io.open_code(path) as source:
        code = compile(source.read(), path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__dict__.update(__builtins__=builtins, __cached__=None)
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _script_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the script's first frame on, as `python X.py` would print it."""
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__
        or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")  # a folder's __main__
    ):
        tb = tb.tb_next
    return tb


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with: None → 0, an int, else the text printed → 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _quick_exit(code: int) -> None:
    """Exit without the interpreter's teardown (about 1 s of TensorFlow finalisers), but only
    after what a normal exit guarantees the trial: its atexit handlers run and every open
    Python file object flushed, so an unclosed accuracy.txt still reaches the disk."""
    atexit._run_exitfuncs()
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            with contextlib.suppress(Exception):
                if not obj.closed and obj.writable():
                    obj.flush()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def job_text(argv: list[str], cwd: str, env: dict[str, str], **extra: Any) -> str:
    """The job a warm interpreter runs, as the host writes it (one line of JSON)."""
    return json.dumps({"argv": argv, "cwd": cwd, "env": env, **extra})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
