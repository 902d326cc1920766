"""Recovery from killed trials: tweakops's watchdog against a plain restart, in one run.

    python bench/recovery.py [--runtime docker|local] [--faults 5] [--seed 0] [--epochs 20]
                             [--epoch-seconds 0.5] [--backoff 0.2] [--backoff-max 10]

Three measurements of examples/iris-sklearn (its train.py checkpoints after every epoch and
logs each finished epoch to epochs.jsonl, with time.time() and its pid):

1. tweakops: a temp git repo (the example with its `epochs` and `epoch_seconds` defaults set
   from the flags, a tweakops.yaml whose low threshold ends the run after trial 0 and whose
   watchdog allows every fault) run by `tweakops run REPO --runtime R` in a subprocess with a
   temp TWEAKOPS_HOME. `--faults` kills hit trial 0 at seeded random points: `docker kill`
   of the trial container (Docker SDK) or SIGKILL of the trial process (local).
2. an undisturbed run of the same train.py on the same runtime: the accuracy to compare with.
3. the named peer, with the same faults. docker: Docker's own restart policy (on-failure) on
   one container with the options tweakops gives a trial container (same image, /trial mount,
   user, limits, docker-init) running train.py; each fault is a SIGKILL of the container's
   main process from the host, because `docker kill` counts as a manual stop and Docker does
   not restart it (checked in the same run). local: a shell loop `until python train.py;
   do :; done` in one trial folder. Either peer's train.py resumes from its own checkpoints.

Per fault, from epochs.jsonl: the recovery time, from the kill (time.time() right after it
returned) to the first epoch logged by the restarted process (so it includes one epoch of
training), and the epochs redone (finished epochs logged again). Goals (issue #5): recovery
under 5 s, at most 1 epoch redone per fault.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import (
    ROOT,
    BenchError,
    bench_env,
    commit_all,
    met_word,
    ratio,
    run_bench,
    say,
    spec_in,
    status_snapshot,
    stop,
    tail,
)
from monitor import RestartPolicy
from training import read_epochs
from tweakops.errors import TweakopsError
from tweakops.runtime import TrialSpec, get_runtime

EXAMPLE = ROOT / "examples" / "iris-sklearn"
GOAL_SECONDS = 5.0
GOAL_REDONE = 1.0
POLL_SECONDS = 0.01
CHECK_SECONDS = 0.5  # how often the kill loop asks whether the training still runs
WAIT_SECONDS = 180.0  # for any one thing: an epoch, a kill point, the end of a run
PROBE_SECONDS = 2.0  # Docker restarts an on-failure container after 100 ms at first
BENCH_LABELS = {"tweakops.bench": "recovery"}
# The lines of train.py whose defaults trial 0 (which runs with no params) uses.
DEFAULT_LINES = {
    "epochs": 'EPOCHS = training.param("epochs", 20)',
    "epoch_seconds": 'EPOCH_SECONDS = training.param("epoch_seconds", 0.0)',
}
SHELL_LOOP = 'until "$0" train.py; do :; done'

Record = Mapping[str, Any]


# ---- the pure part: the schedule, and what epochs.jsonl says about each fault --------------


@dataclass(frozen=True)
class Fault:
    """Kill while `epoch` trains, `offset` epoch-sleeps after the epoch before it was logged."""

    epoch: int
    offset: float  # a fraction of --epoch-seconds

    def describe(self) -> str:
        return f"epoch {self.epoch} +{self.offset:.2f}"


def fault_schedule(faults: int, epochs: int, seed: int) -> list[Fault]:
    """`faults` distinct epochs among 2 .. epochs-1 (each run still logs one epoch first and
    has one left after the last fault), in order, each with an offset in [0.1, 0.9]."""
    if not 1 <= faults <= epochs - 2:
        raise ValueError(
            f"--faults must be from 1 to --epochs - 2 ({epochs - 2}) but got {faults}: "
            "each fault needs an epoch of its own"
        )
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(2, epochs), faults))
    return [Fault(epoch, round(rng.uniform(0.1, 0.9), 2)) for epoch in chosen]


@dataclass(frozen=True)
class Recovery:
    """One fault as epochs.jsonl tells it."""

    fault: int  # from 1
    death: float  # time.time() right after the kill returned
    killed_in: int  # the epoch in progress: one after the last epoch logged before the kill
    resumed_at: int | None  # the first epoch the restarted process logged
    seconds: float | None  # death → that epoch's line (None: nothing logged after the kill)
    redone: int  # epochs logged before the kill that were logged again after it


def segments(records: Sequence[Record], deaths: Sequence[float]) -> list[list[Record]]:
    """The records of each process, split at the deaths: len(deaths) + 1 lists, by time.

    Split by time, not by pid: in a container the trial has the same pid every restart.
    """
    ordered = sorted(records, key=lambda record: float(record["time"]))
    bounds = [-math.inf, *deaths, math.inf]
    return [
        [r for r in ordered if bounds[i] < float(r["time"]) <= bounds[i + 1]]
        for i in range(len(bounds) - 1)
    ]


def recoveries(records: Sequence[Record], deaths: Sequence[float]) -> list[Recovery]:
    """Recovery time and epochs redone of each fault."""
    parts = segments(records, deaths)
    logged: set[int] = set()
    result = []
    for number, death in enumerate(deaths, 1):
        logged |= {int(r["epoch"]) for r in parts[number - 1]}
        after = parts[number]
        first = after[0] if after else None
        result.append(
            Recovery(
                fault=number,
                death=death,
                killed_in=max(logged, default=0) + 1,
                resumed_at=int(first["epoch"]) if first is not None else None,
                seconds=float(first["time"]) - death if first is not None else None,
                redone=len({int(r["epoch"]) for r in after} & logged),
            )
        )
    return result


def epoch_seconds(records: Sequence[Record], deaths: Sequence[float]) -> float | None:
    """Median time between consecutive epochs of one process (never across a kill)."""
    gaps = [
        float(b["time"]) - float(a["time"])
        for part in segments(records, deaths)
        for a, b in itertools.pairwise(part)
    ]
    return statistics.median(gaps) if gaps else None


@dataclass(frozen=True)
class Restart:
    """The supervisor's own record of one restart (a tweakops trial_restarted event)."""

    time: float
    attempt: int  # the attempt that ended: 1 for the first start
    cause: str
    delay: float  # the backoff the watchdog waited before this restart


def match_restarts(
    deaths: Sequence[float], restarts: Sequence[Restart]
) -> tuple[list[Restart | None], list[Restart]]:
    """The first restart after each kill (and before the next one); the restarts left over
    had another cause than the bench (an engine restart stops every container, exit 143)."""
    ordered = sorted(restarts, key=lambda restart: restart.time)
    bounds = [*deaths, math.inf]
    matched = [
        next((r for r in ordered if bounds[i] < r.time <= bounds[i + 1]), None)
        for i in range(len(deaths))
    ]
    return matched, [r for r in ordered if r not in matched]


@dataclass(frozen=True)
class Measured:
    """One faulted training: its epoch log, kill times, final accuracy and what it says."""

    name: str
    records: tuple[Record, ...]
    deaths: tuple[float, ...]
    accuracy: float | None
    restarts: int  # as the supervisor itself counted them
    notes: tuple[str, ...] = ()
    logged: tuple[Restart, ...] = ()  # the supervisor's own restart records, if it keeps any

    def unplanned(self) -> int:
        """Restarts the bench did not cause: more restarts than faults, or unmatched records."""
        if self.logged:
            return len(match_restarts(self.deaths, self.logged)[1])
        return max(0, self.restarts - len(self.deaths))

    @property
    def recoveries(self) -> list[Recovery]:
        return recoveries(self.records, self.deaths)

    def times(self) -> list[float]:
        return [r.seconds for r in self.recoveries if r.seconds is not None]

    def median(self) -> float | None:
        times = self.times()
        return statistics.median(times) if times else None

    def worst(self) -> float | None:
        """The longest recovery; None when one never came (nothing logged after a kill)."""
        times = self.times()
        return max(times) if times and len(times) == len(self.deaths) else None

    def redone(self) -> int:
        return sum(r.redone for r in self.recoveries)

    def per_fault(self) -> float | None:
        return self.redone() / len(self.deaths) if self.deaths else None


@dataclass(frozen=True)
class Setup:
    runtime: str
    faults: int
    seed: int
    epochs: int
    epoch_seconds: float
    policy: RestartPolicy
    schedule: tuple[Fault, ...] = field(default_factory=tuple)


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fault_table(measured: Measured, schedule: Sequence[Fault]) -> list[str]:
    """One line per fault: where it hit, where the restart resumed, how long it took.

    With the supervisor's own records (tweakops's trial_restarted events and its backoff),
    the recovery splits into: noticed (the kill → the restart event), the backoff, and the
    rest (starting the new attempt, the script's startup and one epoch of training).
    """
    matched = match_restarts(measured.deaths, measured.logged)[0] if measured.logged else []
    head = f"{'fault':>5} {'planned':>14} {'killed in':>9} {'resumed at':>10} {'recovery s':>10}"
    if matched:
        head += f" {'= noticed':>9} {'+ backoff':>9} {'+ start+epoch':>13}"
    lines = [head + f" {'redone':>6}"]
    for recovery, fault in zip(measured.recoveries, schedule, strict=False):
        resumed = "—" if recovery.resumed_at is None else str(recovery.resumed_at)
        line = (
            f"{recovery.fault:>5} {fault.describe():>14} {recovery.killed_in:>9} {resumed:>10} "
            f"{_num(recovery.seconds):>10}"
        )
        restart = matched[recovery.fault - 1] if matched else None
        if restart is not None:
            noticed = restart.time - recovery.death
            rest = None if recovery.seconds is None else recovery.seconds - noticed - restart.delay
            line += f" {noticed:>9.2f} {restart.delay:>9.2f} {_num(rest):>13}"
        elif matched:
            line += f" {'—':>9} {'—':>9} {'—':>13}"
        lines.append(line + f" {recovery.redone:>6}")
    return lines


def unplanned_lines(measured: Measured) -> list[str]:
    """A warning for each restart the bench did not cause: the numbers are disturbed."""
    if not measured.unplanned():
        return []
    if measured.logged:
        extras = match_restarts(measured.deaths, measured.logged)[1]
        first = measured.deaths[0] if measured.deaths else 0.0
        what = ", ".join(f"{r.cause} at {r.time - first:+.1f} s from fault 1" for r in extras)
    else:
        what = f"{measured.restarts} restarts for {len(measured.deaths)} faults"
    return [
        f"  WARNING: {measured.unplanned()} restart(s) the bench did not cause ({what}); "
        "e.g. a Docker engine restart stops every container (exit 143). Later restarts wait "
        "longer (backoff); rerun for an undisturbed measurement."
    ]


def _same(accuracy: float | None, undisturbed: float | None) -> str:
    if accuracy is None or undisturbed is None:
        return "unknown"
    return "same" if accuracy == undisturbed else f"DIFFERS by {accuracy - undisturbed:+.4f}"


def report(
    setup: Setup, ours: Measured, peer: Measured, undisturbed: float | None, heading: list[str]
) -> str:
    """The per-fault tables, then tweakops against the peer and the goals."""
    lines = [
        f"recovery (issue #5): {EXAMPLE.relative_to(ROOT)}, {setup.epochs} epochs of "
        f"{setup.epoch_seconds:g} s, {setup.faults} faults (seed {setup.seed}), "
        f"{setup.runtime} runtime",
        *heading,
        "",
    ]
    for measured in (ours, peer):
        lines += [f"{measured.name}: {len(measured.deaths)} faults, {measured.restarts} restarts"]
        lines += [f"  {note}" for note in measured.notes]
        lines += unplanned_lines(measured)
        lines += [*fault_table(measured, setup.schedule), ""]
    ours_epoch = epoch_seconds(ours.records, ours.deaths)
    peer_epoch = epoch_seconds(peer.records, peer.deaths)
    lines.append(
        f"one epoch (median, between kills): tweakops {_num(ours_epoch)} s, peer "
        f"{_num(peer_epoch)} s; every recovery time includes one epoch of training"
    )
    lines.append("")
    median, worst, per_fault = ours.median(), ours.worst(), ours.per_fault()

    def under_goal(value: float | None) -> str:
        return f"< {GOAL_SECONDS:g} s: {met_word(value is not None and value < GOAL_SECONDS)}"

    rows = [
        ("recovery median s", median, peer.median(), under_goal(median)),
        ("recovery max s", worst, peer.worst(), under_goal(worst)),
        (
            "redone epochs/fault",
            per_fault,
            peer.per_fault(),
            f"≤ {GOAL_REDONE:g}: {met_word(per_fault is not None and per_fault <= GOAL_REDONE)}",
        ),
    ]
    lines.append(f"{'':<22} {'tweakops':>9} {'peer':>9} {'tweakops/peer':>14}  goal")
    for label, mine, theirs, goal in rows:
        lines.append(
            f"{label:<22} {_num(mine):>9} {_num(theirs):>9} {ratio(mine, theirs):>14}  {goal}"
        )
    lines.append(
        f"{'redone epochs, total':<22} {ours.redone():>9} {peer.redone():>9} "
        f"{ratio(ours.redone(), peer.redone()):>14}  "
        f"(of {setup.epochs}: {ours.redone() / setup.epochs:.0%} vs "
        f"{peer.redone() / setup.epochs:.0%})"
    )
    lines.append(
        f"{'final accuracy':<22} {_num(ours.accuracy, 4):>9} {_num(peer.accuracy, 4):>9} "
        f"{'undisturbed':>14}  {_num(undisturbed, 4)} (tweakops: "
        f"{_same(ours.accuracy, undisturbed)}, peer: {_same(peer.accuracy, undisturbed)})"
    )
    return "\n".join(lines)


# ---- running things -------------------------------------------------------------------------


def make_source(folder: Path, epochs: int, seconds: float) -> Path:
    """The example with trial 0's defaults (`epochs`, `epoch_seconds`) set for the bench."""
    ignore = shutil.ignore_patterns("__pycache__", "accuracy.txt", "epochs.jsonl", "checkpoints")
    shutil.copytree(EXAMPLE, folder, ignore=ignore)
    script = folder / "train.py"
    text = script.read_text()
    for name, line in DEFAULT_LINES.items():
        if text.count(line) != 1:
            raise BenchError(
                f"{script.relative_to(folder)} of {EXAMPLE} no longer has the line {line!r}; "
                "update DEFAULT_LINES in bench/recovery.py"
            )
        value = epochs if name == "epochs" else float(seconds)
        text = text.replace(line, f"{line.split(',')[0]}, {value!r})")
    script.write_text(text)
    return folder


def make_repo(folder: Path, setup: Setup) -> Path:
    """A committed git repo: the bench's source and a tweakops.yaml that ends after trial 0."""
    make_source(folder, setup.epochs, setup.epoch_seconds)
    policy = setup.policy
    (folder / "tweakops.yaml").write_text(
        "# bench/recovery.py: trial 0 (the defaults, ~0.76) passes the threshold; no tuning.\n"
        "entrypoint: train.py\n"
        "metric: accuracy\n"
        "threshold: 0.05\n"
        "max_trials: 1\n"
        "time_budget: 900\n"
        f"watchdog: {{max_restarts: {policy.max_restarts}, backoff: {policy.backoff_initial}, "
        f"backoff_max: {policy.backoff_max}}}\n"
    )
    return commit_all(folder, "bench/recovery.py")


def trial_folder(folder: Path, source: Path, params: dict[str, Any]) -> Path:
    """A trial folder like tweakops makes: src/ (a copy), output/, params.json."""
    shutil.copytree(source, folder / "src", ignore=shutil.ignore_patterns(".git", "__pycache__"))
    (folder / "output").mkdir()
    (folder / "params.json").write_text(json.dumps(params) + "\n")
    return folder


def bench_spec(folder: Path, name: str, image: str | None) -> TrialSpec:
    """The spec tweakops would build for the trial folder (bench labels, default limits)."""
    return spec_in(folder, name, image, BENCH_LABELS)


def read_accuracy(output: Path) -> float | None:
    try:
        return float((output / "accuracy.txt").read_text())
    except (OSError, ValueError):
        return None


def inject(
    name: str,
    output: Path,
    setup: Setup,
    kill: Callable[[Sequence[Record]], str],
    running: Callable[[], bool],
) -> list[float]:
    """Kill the training at each point of the schedule; the time.time() of each kill.

    Fault n waits until the process started after fault n-1 has logged an epoch (so each
    fault hits a recovered process) and the epoch before the planned one, then the offset.
    """
    deaths: list[float] = []
    for number, fault in enumerate(setup.schedule, 1):
        since = deaths[-1] if deaths else -math.inf
        deadline = checked = time.monotonic()
        deadline += WAIT_SECONDS
        while True:
            current = [r for r in read_epochs(output) if float(r["time"]) > since]
            if current and max(int(r["epoch"]) for r in current) >= fault.epoch - 1:
                break
            now = time.monotonic()
            if now >= checked + CHECK_SECONDS:
                checked = now
                if not running():
                    raise BenchError(f"{name}: the training ended before fault {number}")
            if now >= deadline:
                raise BenchError(f"{name}: epoch {fault.epoch - 1} never came for fault {number}")
            time.sleep(POLL_SECONDS)
        time.sleep(fault.offset * setup.epoch_seconds)
        what = kill(current)
        deaths.append(time.time())
        say(f"{name}: fault {number}/{len(setup.schedule)} ({fault.describe()}): {what}")
    return deaths


def kill_pid(records: Sequence[Record]) -> str:
    """SIGKILL the process that logged the last epoch (a python running train.py)."""
    pid = int(records[-1]["pid"])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        cmdline = b"train.py"  # no /proc: trust the log
    if b"train.py" not in cmdline:
        raise BenchError(f"pid {pid} from epochs.jsonl is not train.py any more: {cmdline!r}")
    os.kill(pid, signal.SIGKILL)
    return f"SIGKILL pid {pid}"


def wait_for_run(home: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The id of the run the `tweakops run` subprocess created in `home`."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        runs = sorted(p.name for p in (home / "runs").glob("*") if p.is_dir())
        if runs:
            return runs[0]
        if process.poll() is not None:
            raise BenchError(f"`tweakops run` ended before it created a run:\n{tail(log)}")
        time.sleep(0.05)
    raise BenchError(f"`tweakops run` created no run in {WAIT_SECONDS:.0f} s:\n{tail(log)}")


def run_tweakops(setup: Setup, scratch: Path) -> tuple[Measured, str | None, Path]:
    """`tweakops run` of the bench repo with the faults; (measured, its image, its source)."""
    repo = make_repo(scratch / "repo", setup)
    home, log = scratch / "home", scratch / "tweakops-run.log"
    env = bench_env(home)
    argv = [sys.executable, "-m", "tweakops", "run", str(repo), "--runtime", setup.runtime]
    say(f"tweakops: `tweakops run REPO --runtime {setup.runtime}` (log: {log})")
    client: Any = None
    if setup.runtime == "docker":
        from docker.client import DockerClient  # the Docker SDK, tweakops[docker]

        client = engine(DockerClient.from_env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    run_id = None
    try:
        run_id = wait_for_run(home, process, log)
        output = home / "runs" / run_id / "trials" / "000" / "output"
        say(f"tweakops: run {run_id}")
        kill = kill_pid
        if client is not None:
            name = f"tweakops-{run_id}-t0"

            def kill_container(records: Sequence[Record]) -> str:
                engine(lambda: client.containers.get(name).kill())
                return f"docker kill {name}"

            kill = kill_container
        deaths = inject("tweakops", output, setup, kill, lambda: process.poll() is None)
        code = process.wait(WAIT_SECONDS)
    except BaseException:
        stop(process)
        raise
    finally:
        if client is not None and run_id is not None:
            remove_containers(client, {"label": f"tweakops.run={run_id}"})
    if code != 0:
        raise BenchError(f"`tweakops run` exited {code} (0 = threshold reached):\n{tail(log)}")
    snapshot = status_snapshot(run_id, env)
    trial = snapshot["trials"][0]
    restarted = sorted(
        (e for e in snapshot["events"] if e["kind"] == "trial_restarted"),
        key=lambda event: float(event["time"]),
    )
    causes = sorted({str(e["data"].get("cause")) for e in restarted})
    image = next(
        (s["result"].get("image") for s in snapshot["stages"] if s["name"] == "train"), None
    )
    logged = tuple(
        Restart(
            float(e["time"]),
            int(e["data"].get("attempt", 0)),
            str(e["data"].get("cause")),
            float(e["data"].get("delay", 0.0)),
        )
        for e in restarted
    )
    measured = Measured(
        name="tweakops",
        records=tuple(read_epochs(output)),
        deaths=tuple(deaths),
        accuracy=trial.get("accuracy"),
        restarts=len(restarted),
        notes=(
            f"run {run_id}: {len(restarted)} trial_restarted events (cause: "
            f"{', '.join(causes) or 'none'}), trial 0 restarts {trial.get('restarts')}, "
            f"status {snapshot['run']['status']}",
            "noticed: the kill → its trial_restarted event; backoff: the watchdog's delay "
            "before that restart (from the event; it starts again after an attempt that "
            "finished an epoch)",
        ),
        logged=logged,
    )
    return measured, image, repo


def run_undisturbed(runtime_name: str, image: str | None, source: Path, scratch: Path) -> float:
    """The same train.py on the same runtime with no fault (and no epoch sleep): its accuracy."""
    folder = trial_folder(scratch / "undisturbed", source, {"epoch_seconds": 0.0})
    spec = bench_spec(folder, f"tweakops-bench-recovery-{os.getpid()}-undisturbed", image)
    say(f"undisturbed: one {runtime_name} trial, no faults")
    runtime = get_runtime(runtime_name)
    handle = runtime.start(spec)
    try:
        status = runtime.wait(handle, WAIT_SECONDS)
    finally:
        runtime.remove(handle)
    accuracy = read_accuracy(spec.output_dir)
    if not status.ok or accuracy is None:
        raise BenchError(f"undisturbed run: {status.describe()}\n{tail(spec.log_path)}")
    return accuracy


def run_shell_peer(setup: Setup, source: Path, scratch: Path) -> Measured:
    """Peer for the local runtime: `until python train.py; do :; done`, same faults."""
    folder = trial_folder(scratch / "peer", source, {})
    spec = bench_spec(folder, "peer", None)
    env = {
        **os.environ,
        **spec.env,
        "TWEAKOPS_OUTPUT": str(spec.output_dir),
        "PYTHONUNBUFFERED": "1",
    }
    say(f"peer: sh -c '{SHELL_LOOP}' in one trial folder")
    with spec.log_path.open("ab") as log:
        process = subprocess.Popen(
            ["sh", "-c", SHELL_LOOP, sys.executable],
            cwd=spec.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deaths = inject("peer", spec.output_dir, setup, kill_pid, lambda: process.poll() is None)
        code = process.wait(WAIT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    records = read_epochs(spec.output_dir)
    if code != 0:
        raise BenchError(f"peer shell loop exited {code}:\n{tail(spec.log_path)}")
    return Measured(
        name="peer",
        records=tuple(records),
        deaths=tuple(deaths),
        accuracy=read_accuracy(spec.output_dir),
        restarts=len({r["pid"] for r in records}) - 1,
        notes=(f"sh -c '{SHELL_LOOP}' python: restarts at once, no backoff",),
    )


# ---- docker ----------------------------------------------------------------------------------


def engine(action: Callable[[], Any], patience: float = 60.0) -> Any:
    """Run a Docker SDK call, waiting out an engine that is briefly away (a restart)."""
    import requests
    from docker.errors import APIError, DockerException, NotFound

    deadline = time.monotonic() + patience
    while True:
        try:
            return action()
        except (NotFound, APIError):
            raise
        except (requests.exceptions.RequestException, DockerException) as exc:
            if time.monotonic() >= deadline:
                raise
            say(f"docker engine unreachable ({str(exc).splitlines()[0][:80]}); retrying")
            time.sleep(1.0)


def remove_containers(client: Any, filters: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):
        for container in client.containers.list(all=True, filters=filters):
            with contextlib.suppress(Exception):
                container.remove(force=True)


@dataclass(frozen=True)
class KillProbe:
    """What Docker did to an on-failure container after `docker kill`."""

    restart_count: int
    status: str
    exit_code: int

    def describe(self) -> str:
        return (
            f"`docker kill` of an on-failure container: {PROBE_SECONDS:g} s later RestartCount "
            f"{self.restart_count}, status {self.status} (exit {self.exit_code})"
        )

    @property
    def restarted(self) -> bool:
        return self.restart_count > 0 or self.status != "exited"


def probe_docker_kill(client: Any, image: str, user: str) -> KillProbe:
    """Does Docker's restart policy restart a container stopped by `docker kill`?"""
    say("peer: checking whether Docker restarts an on-failure container after `docker kill`")
    container = engine(
        lambda: client.containers.create(
            image,
            ["python", "-c", "import time; time.sleep(120)"],
            name=f"tweakops-bench-recovery-{os.getpid()}-probe",
            labels=BENCH_LABELS,
            network_mode="none",
            user=user,
            init=True,
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        )
    )
    try:
        container.start()
        container.kill()
        time.sleep(PROBE_SECONDS)
        container.reload()
        state = container.attrs["State"]
        return KillProbe(int(container.attrs["RestartCount"]), state["Status"], state["ExitCode"])
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def run_docker_peer(
    setup: Setup, image: str, source: Path, scratch: Path
) -> tuple[Measured, KillProbe]:
    """Peer for the docker runtime: Docker's on-failure restart policy, same faults."""
    from tweakops.runtime._trial_folder import hand_over
    from tweakops.runtime._trial_folder import trial_folder as mounted_folder
    from tweakops.runtime.docker_backend import DockerRuntime

    runtime = DockerRuntime()
    client = runtime.client
    probe = probe_docker_kill(client, image, runtime.user)
    say(f"peer: {probe.describe()}")
    folder = trial_folder(scratch / "peer", source, {})
    spec = bench_spec(folder, f"tweakops-bench-recovery-{os.getpid()}-peer", image)
    trial = mounted_folder(spec)
    hand_over(runtime.user, trial)
    options = runtime._container_options(spec, trial)  # exactly a tweakops trial's options
    retries = setup.faults + 2
    options["restart_policy"] = {"Name": "on-failure", "MaximumRetryCount": retries}
    say(f"peer: container {spec.name} with restart policy on-failure:{retries}")
    container = engine(lambda: client.containers.create(**options))

    def state() -> dict[str, Any]:
        engine(container.reload)
        return dict(container.attrs["State"], RestartCount=container.attrs["RestartCount"])

    def ended() -> bool:
        now = state()
        done = now["Status"] == "exited" and now["ExitCode"] == 0
        return done or (now["Status"] == "exited" and now["RestartCount"] >= retries)

    def kill_main_pid(records: Sequence[Record]) -> str:
        pid = int(state()["Pid"])
        if pid <= 1:
            raise BenchError(f"peer container has no main process to kill (pid {pid})")
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILL main pid {pid} (docker-init)"

    try:
        engine(container.start)
        deaths = inject("peer", spec.output_dir, setup, kill_main_pid, lambda: not ended())
        deadline = time.monotonic() + WAIT_SECONDS
        while not ended():
            if time.monotonic() > deadline:
                raise BenchError(f"peer container still runs after {WAIT_SECONDS:.0f} s")
            time.sleep(0.2)
        final = state()
        if final["ExitCode"] != 0:
            logs = engine(lambda: container.logs(tail=15)).decode(errors="replace")
            raise BenchError(f"peer container exited {final['ExitCode']}:\n{logs}")
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    measured = Measured(
        name="peer",
        records=tuple(read_epochs(spec.output_dir)),
        deaths=tuple(deaths),
        accuracy=read_accuracy(spec.output_dir),
        restarts=int(final["RestartCount"]),
        notes=(
            f"Docker restart policy on-failure:{retries} (its own delay: 100 ms, doubling, reset "
            "after 10 s of running); RestartCount from the engine",
        ),
    )
    return measured, probe


# ---- main ------------------------------------------------------------------------------------


def measure(setup: Setup, scratch: Path) -> str:
    ours, image, repo = run_tweakops(setup, scratch)
    say(f"tweakops: done, accuracy {_num(ours.accuracy, 4)}, {ours.restarts} restarts")
    if setup.runtime == "docker" and not image:
        raise BenchError("the run's train stage names no image")
    undisturbed = run_undisturbed(setup.runtime, image, repo, scratch)
    say(f"undisturbed: accuracy {undisturbed:.4f}")
    if setup.runtime == "docker":
        assert image is not None
        peer, probe = run_docker_peer(setup, image, repo, scratch)
        heading = [
            f"image {image}",
            "tweakops: `tweakops run --runtime docker`; fault = `docker kill` of the trial "
            "container (Docker SDK)",
            "peer: Docker's restart policy (on-failure) on a container with the same image, "
            "mount, user, limits and docker-init running train.py; fault = SIGKILL of the "
            "container's main pid (docker-init) from the host, not `docker kill`:",
            f"  checked in this run: {probe.describe()}: "
            + (
                "Docker does NOT restart it (a manual stop)"
                if not probe.restarted
                else "Docker DID restart it (unexpected: `docker kill` would do as the fault)"
            ),
        ]
    else:
        peer = run_shell_peer(setup, repo, scratch)
        heading = [
            "tweakops: `tweakops run --runtime local`; fault = SIGKILL of the trial process",
            f"peer: a shell restart loop, sh -c '{SHELL_LOOP}', in one trial folder; "
            "fault = SIGKILL of the python process",
        ]
    say(f"peer: done, accuracy {_num(peer.accuracy, 4)}, {peer.restarts} restarts")
    policy = setup.policy
    heading += [
        f"watchdog: max_restarts {policy.max_restarts}, backoff {policy.backoff_initial:g} s "
        f"x{policy.backoff_factor:g} up to {policy.backoff_max:g} s",
        "faults (same for both): " + ", ".join(f.describe() for f in setup.schedule),
        "both train.py copies resume from their own per-epoch checkpoints",
    ]
    return report(setup, ours, peer, undisturbed, heading)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=("docker", "local"), default="docker")
    parser.add_argument("--faults", type=int, default=5, help="kills per training")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of train.py")
    parser.add_argument(
        "--epoch-seconds", type=float, default=0.5, help="train.py's sleep per epoch"
    )
    parser.add_argument("--backoff", type=float, default=0.2, help="watchdog.backoff (s)")
    parser.add_argument("--backoff-max", type=float, default=10.0, help="watchdog.backoff_max")
    args = parser.parse_args(argv)
    if args.epoch_seconds <= 0:
        parser.error(f"--epoch-seconds must be above 0 but got {args.epoch_seconds}")
    try:
        schedule = fault_schedule(args.faults, args.epochs, args.seed)
        policy = RestartPolicy(
            max_restarts=args.faults + 2,
            backoff_initial=args.backoff,
            backoff_max=args.backoff_max,
        )
    except (ValueError, TweakopsError) as exc:
        parser.error(str(exc))
    setup = Setup(
        args.runtime,
        args.faults,
        args.seed,
        args.epochs,
        args.epoch_seconds,
        policy,
        tuple(schedule),
    )

    def in_scratch() -> str:
        with tempfile.TemporaryDirectory(prefix="tweakops-bench-recovery-") as scratch:
            return measure(setup, Path(scratch))

    return run_bench(in_scratch)


if __name__ == "__main__":
    raise SystemExit(main())
