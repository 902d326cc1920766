"""Per-trial start-up of a Keras trial: docker cold and warm, local warm, and in one process.

    python bench/warm_start.py [--trials N] [--epochs E] [--image IMAGE]
                               [--modes docker-cold docker-warm local-warm in-process]

examples/digits-cnn (its defaults but `epochs`), one trial at a time, each in a fresh trial
folder laid out like tweakops's (src/, output/, params.json) and started through the same
TrialSpec/Runtime interface tweakops uses, with the default resource limits. **Start-up** =
the trial's first epoch record (`time` in epochs.jsonl) − the moment runtime.start() was
called − one epoch (the median gap between its records): process or container start, the
imports, data, model build and tracing. Modes:
- docker-cold: a new container per trial (DockerRuntime without prewarm);
- docker-warm: DockerRuntime.prewarm(("keras",)); each trial becomes the spare container
  made (and importing) while the previous trial trained;
- local-warm: the same with the local runtime's spare interpreter;
- in-process, the peer: one Python process imports keras once and runs train.py N times
  (runpy), as Keras Tuner runs its trials.
The warm modes run one untimed trial first: it starts cold and makes the first spare. The
goal (issue 18): docker-warm's median start-up ≤ 1.2× the in-process one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import ROOT, BenchError, ratio, run_bench, say, spec_in, tail
from training import read_epochs
from tweakops.runtime import LocalRuntime, Runtime, TrialSpec

EXAMPLE = ROOT / "examples" / "digits-cnn"
MODES = ("docker-cold", "docker-warm", "local-warm", "in-process")
GOAL = 1.2
PEER = """
import json, os, runpy, sys, time
import keras  # once: every trial after it finds it imported
for folder in json.loads(sys.argv[1]):
    os.environ["TWEAKOPS_OUTPUT"] = folder + "/output"
    os.environ["TWEAKOPS_PARAMS"] = folder + "/params.json"
    os.chdir(folder + "/src")
    sys.argv = ["train.py"]
    began = time.time()
    runpy.run_path("train.py", run_name="__main__")
    print(json.dumps({"folder": folder, "began": began, "ended": time.time()}), flush=True)
"""


def trial_folder(folder: Path, epochs: int) -> Path:
    shutil.copytree(EXAMPLE, folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "output").mkdir()
    (folder / "params.json").write_text(json.dumps({"epochs": epochs}) + "\n")
    return folder


@dataclass(frozen=True)
class Timing:
    """One trial: its start-up, its median epoch, and its whole wall time."""

    startup: float
    epoch: float
    wall: float


def timing(output: Path, began: float, ended: float) -> Timing:
    """Start-up = first epoch record - began - one epoch (the median gap between records)."""
    times = [float(r["time"]) for r in read_epochs(output)]
    if len(times) < 2:
        raise BenchError(f"{output}: fewer than 2 epoch records, no start-up to measure")
    epoch = statistics.median(b - a for a, b in itertools.pairwise(times))
    return Timing(times[0] - began - epoch, epoch, ended - began)


def timed(runtime: Runtime, spec: TrialSpec) -> Timing:
    """One trial through the runtime, start to wait's end."""
    began = time.time()
    handle = runtime.start(spec)
    try:
        status = runtime.wait(handle, timeout=600)
        ended = time.time()
    finally:
        runtime.remove(handle)
    if not status.ok:
        raise BenchError(f"{spec.name}: {status.describe()}\n{tail(spec.log_path)}")
    return timing(spec.output_dir, began, ended)


def through_runtime(
    runtime: Runtime, warm: bool, image: str | None, scratch: Path, trials: int, epochs: int
) -> list[Timing]:
    """Trials one at a time (a warm runtime's first, cold, left out)."""
    if warm:
        runtime.prewarm(("keras",))
    stamp = time.strftime("%H%M%S")
    timings = []
    try:
        for number in range(trials + int(warm)):
            folder = trial_folder(scratch / "trials" / f"{number:03d}", epochs)
            labels = {"tweakops.run": f"bench-{stamp}", "tweakops.trial": str(number)}
            spec = spec_in(folder, f"bench-warm-{stamp}-t{number}", image, labels)
            value = timed(runtime, spec)
            say(f"  trial {number}: start-up {value.startup:.2f} s, {value.wall:.2f} s in all")
            if number or not warm:
                timings.append(value)
    finally:
        runtime.close()
    return timings


def in_process(scratch: Path, trials: int, epochs: int) -> list[Timing]:
    folders = [str(trial_folder(scratch / f"{n:03d}", epochs)) for n in range(trials + 1)]
    done = subprocess.run(
        [sys.executable, "-c", PEER, json.dumps(folders)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"the in-process peer failed:\n{done.stderr[-2000:]}")
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    values = [timing(Path(r["folder"]) / "output", r["began"], r["ended"]) for r in runs]
    for number, value in enumerate(values):
        say(f"  trial {number}: start-up {value.startup:.2f} s, {value.wall:.2f} s in all")
    return values[1:]  # the first one's process just imported: like the warm modes' first


def measure(modes: list[str], trials: int, epochs: int, image: str | None) -> str:
    results: dict[str, list[Timing]] = {}
    with tempfile.TemporaryDirectory(prefix="tweakops-bench-") as scratch:
        for mode in modes:
            say(f"{mode}: {trials} trials of {epochs} epochs")
            where = Path(scratch) / mode
            if mode == "in-process":
                results[mode] = in_process(where, trials, epochs)
            elif mode.startswith("docker"):
                from tweakops.runtime.docker_backend import DockerRuntime

                image = image or _keras_image()
                warm = mode == "docker-warm"
                runtime: Runtime = DockerRuntime()
                results[mode] = through_runtime(runtime, warm, image, where, trials, epochs)
            else:
                results[mode] = through_runtime(LocalRuntime(), True, None, where, trials, epochs)
    return report(results, trials, epochs, image)


def _keras_image() -> str:
    from tweakops.images.build import resolve_image

    return resolve_image("keras", build=False)


def report(results: dict[str, list[Timing]], trials: int, epochs: int, image: str | None) -> str:
    def med(mode: str, part: str) -> float:
        return statistics.median(getattr(t, part) for t in results[mode])

    peer = med("in-process", "startup") if "in-process" in results else None
    lines = [
        f"per-trial start-up: {EXAMPLE.relative_to(ROOT)}, {epochs} epochs, {trials} timed "
        f"trials per mode, docker image {image or '-'}",
        "start-up = first epoch record - runtime.start() - one epoch; trial = start to end",
        "",
        f"{'mode':<12} {'start-up s':>10} {'min':>5} {'max':>5} {'/ in-proc':>9} "
        f"{'epoch s':>7} {'trial s':>7}  start-ups",
    ]
    for mode, timings in results.items():
        startups = [t.startup for t in timings]
        lines.append(
            f"{mode:<12} {med(mode, 'startup'):>10.2f} {min(startups):>5.2f} "
            f"{max(startups):>5.2f} {ratio(med(mode, 'startup'), peer):>9} "
            f"{med(mode, 'epoch'):>7.2f} {med(mode, 'wall'):>7.2f}  "
            + " ".join(f"{v:.2f}" for v in startups)
        )
    if peer is not None and "docker-warm" in results:
        warm = med("docker-warm", "startup")
        verdict = "met" if warm <= GOAL * peer else "NOT met"
        lines += ["", f"goal: docker-warm <= {GOAL}x in-process ({GOAL * peer:.2f} s): {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="timed trials per mode")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per trial (>= 2)")
    parser.add_argument("--image", help="the keras image (default: the built one)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)
    if args.trials < 1 or args.epochs < 2:
        parser.error("--trials must be 1 or more and --epochs 2 or more")
    return run_bench(lambda: measure(args.modes, args.trials, args.epochs, args.image))


if __name__ == "__main__":
    raise SystemExit(main())
