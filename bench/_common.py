"""What the benches share: the checkout on sys.path, progress lines, `tweakops` subprocesses,
trial specs, git repos to run, and the way a bench prints its report or one error line.

A bench run as a script (`python bench/recovery.py`) has bench/ as sys.path[0]; it puts the
checkout first before importing this module, which then drops bench/ from sys.path so that
a bench module is only ever imported as `bench.<name>`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [
    str(ROOT),
    *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench")),
]

from tweakops.config import Resources  # noqa: E402
from tweakops.errors import TweakopsError  # noqa: E402
from tweakops.runtime import TrialSpec  # noqa: E402

_STARTED = time.monotonic()


class BenchError(Exception):
    """The bench could not measure: a run failed, a kill point never came, a tuner failed."""


def say(message: str) -> None:
    """One progress line on stderr (the report goes to stdout)."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def ratio(ours: float | None, peer: float | None) -> str:
    """ "1.23x", or why there is no ratio."""
    if ours is None or peer is None:
        return "n/a"
    if peer == 0:
        return "n/a (both 0)" if ours == 0 else "n/a (peer 0)"
    return f"{ours / peer:.2f}x"


def met_word(met: bool) -> str:
    return "met" if met else "NOT met"


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return "(no log)"


def spec_in(folder: Path, name: str, image: str | None, labels: dict[str, str]) -> TrialSpec:
    """The spec tweakops would build for a trial folder (src/, output/, params.json)."""
    resources = Resources()
    return TrialSpec(
        name=name,
        command=("python", "train.py"),
        workdir=folder / "src",
        output_dir=folder / "output",
        log_path=folder / "log.txt",
        env={"TWEAKOPS_PARAMS": str(folder / "params.json")},
        image=image,
        labels=labels,
        memory_limit=resources.memory,
        cpus=resources.cpus,
    )


def commit_all(folder: Path, message: str) -> Path:
    """Make `folder` a git repo with one commit of every file in it (by the bench)."""
    import git  # gitpython, a tweakops dependency

    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    repo = git.Repo.init(folder)
    repo.index.add(files)
    bench = git.Actor("tweakops bench", "bench@example.org")
    repo.index.commit(message, author=bench, committer=bench)
    repo.close()
    return folder


def bench_env(home: Path) -> dict[str, str]:
    """This environment for `tweakops` subprocesses, with the temp run store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEAKOPS_")}
    env["TWEAKOPS_HOME"] = str(home)
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (tweakops cleans its trial up like on Ctrl-C), then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def status_snapshot(run_id: str, env: Mapping[str, str]) -> dict[str, Any]:
    """`tweakops --json status --run RUN_ID`: the run, its stages, trials and events."""
    status = subprocess.run(
        [sys.executable, "-m", "tweakops", "--json", "status", "--run", run_id],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(status.stdout))


def run_bench(measure: Callable[[], str]) -> int:
    """Run `measure` with this checkout on subprocesses' PYTHONPATH; print its report, or
    one `error:` line (exit 1; 130 on Ctrl-C)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    try:
        text = measure()
    except (BenchError, TweakopsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    say("done")
    print(text)
    return 0
