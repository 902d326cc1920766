"""A pushed commit run on this machine when no Jenkins takes it: `tweakops run` detached from
the hook, its output in HOME/hook-logs, runs of one repository one after another."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tweakops.jenkins.hooks import HookSettings

# Runs of one repository share its clone in the run store: the detached process takes a lock
# per bare repository, then becomes `tweakops run` (exec keeps the lock until the run ends).
_ONE_AT_A_TIME = """\
import fcntl, os, sys
lock = open(sys.argv[1], "a")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("# waiting for the previous run of this repository to end", flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)
os.set_inheritable(lock.fileno(), True)
os.execv(sys.argv[2], sys.argv[2:])
"""


def start_local_run(settings: HookSettings, bare_repo: Path, branch: str, sha: str) -> Path:
    """`tweakops run BARE --ref SHA`, detached, output in HOME/hook-logs; return the log.

    Runs of the same repository go one after another (they share its clone in the store).
    """
    home = Path(settings.home)
    logs = home / "hook-logs"
    logs.mkdir(parents=True, exist_ok=True)
    bare = bare_repo.resolve()
    command = [
        settings.python, "-m", "tweakops", "--home", str(home), "run", str(bare), "--ref", sha,
    ]  # fmt: skip
    digest = hashlib.sha1(str(bare).encode(), usedforsecurity=False).hexdigest()[:12]
    lock = logs / f".{bare.name}-{digest}.lock"
    log = _new_log(logs, sha)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"# tweakops hook: push of {printable(branch)}@{sha} at {time.ctime()}\n")
        out.write(f"# {shlex.join(command)}\n")
        out.flush()
        child = subprocess.Popen(
            [settings.python, "-c", _ONE_AT_A_TIME, str(lock), *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
            env={**clean_env(), "TWEAKOPS_HOME": str(home)},
            start_new_session=True,  # outlives the hook; git push returns at once
        )
        out.write(f"# pid {child.pid} (`kill -- -{child.pid}` stops the run)\n")
    return log


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """ENV (default os.environ) without git's GIT_* variables, which a hook inherits."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not k.startswith("GIT_")}


def _new_log(logs: Path, sha: str) -> Path:
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{sha[:12]}"
    for n in range(1, 100):
        log = logs / (f"{stem}.log" if n == 1 else f"{stem}-{n}.log")
        with contextlib.suppress(FileExistsError):
            log.touch(exist_ok=False)
            return log
    raise OSError(f"too many logs named {stem}-*.log in {logs}")


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
