"""Per-trial wall time of the docker runtime over the local runtime, on the sklearn example.

    python bench/runtime_overhead.py [--trials N] [--image IMAGE]

Runs examples/iris-sklearn N times with each runtime (alternating, after one untimed warm-up
each) through the same TrialSpec/Runtime interface tweakops uses: a fresh trial folder per
trial (a copy of the example as src/, output/, params.json {}), the default resource limits,
and start + wait + remove timed as one trial. The peer is the local runtime, measured in the
same run. The goal (issue #3) is a docker overhead under +2 s per trial.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import ROOT, spec_in
from tweakops.errors import TweakopsError
from tweakops.runtime import Runtime, TrialSpec, get_runtime

EXAMPLE = ROOT / "examples" / "iris-sklearn"
GOAL_SECONDS = 2.0


def default_image() -> str:
    """The built sklearn image (never builds here); a message saying how to get one if not."""
    try:
        from tweakops.images.build import resolve_image
    except ModuleNotFoundError:
        raise SystemExit(
            "error: tweakops.images.build is not there yet to find the sklearn image; "
            "pass --image IMAGE (any image with python3, scikit-learn and the training/ harness)"
        ) from None
    try:
        return resolve_image("sklearn", build=False)
    except TweakopsError as exc:
        raise SystemExit(f"error: {exc} (or pass --image IMAGE)") from None


def trial_spec(folder: Path, name: str, image: str | None) -> TrialSpec:
    """A trial folder laid out like tweakops's, and the spec that runs train.py in it."""
    shutil.copytree(EXAMPLE, folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "src" / "accuracy.txt").unlink(missing_ok=True)
    (folder / "output").mkdir()
    (folder / "params.json").write_text("{}\n")
    return spec_in(folder, name, image, {"tweakops.bench": "runtime_overhead"})


def timed_trial(runtime: Runtime, spec: TrialSpec) -> float:
    """Seconds for start + wait + remove of one trial; exits with its log if it failed."""
    began = time.perf_counter()
    handle = runtime.start(spec)
    try:
        status = runtime.wait(handle, timeout=600)
    finally:
        runtime.remove(handle)
    seconds = time.perf_counter() - began
    metric = spec.output_dir / "accuracy.txt"
    if not status.ok or not metric.exists():
        tail = "".join(spec.log_path.read_text(errors="replace").splitlines(True)[-15:])
        raise SystemExit(f"error: {runtime.name} trial {spec.name}: {status.describe()}\n{tail}")
    return seconds


def measure(trials: int, image: str, scratch: Path) -> dict[str, list[float]]:
    """Wall seconds per trial for each runtime, alternating local and docker."""
    runtimes = {"local": get_runtime("local"), "docker": get_runtime("docker")}
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    stamp = time.strftime("%H%M%S")
    for number in range(trials + 1):  # number 0 is the warm-up of each runtime
        for name, runtime in runtimes.items():
            spec_image = image if name == "docker" else None
            folder = scratch / f"{name}-{number}"
            spec = trial_spec(folder, f"bench-{stamp}-{name}-{number}", spec_image)
            seconds = timed_trial(runtime, spec)
            if number:
                times[name].append(seconds)
    return times


def report(times: dict[str, list[float]], image: str) -> str:
    """The table, the ratio and the overhead per trial."""
    local, docker = times["local"], times["docker"]
    lines = [
        f"runtime overhead: {EXAMPLE.relative_to(ROOT)}, {len(local)} trials per runtime "
        f"(+1 warm-up each), docker image {image}",
        "peer: local runtime, measured in the same run",
        "",
        f"{'runtime':<8} {'median s':>9} {'min s':>7}",
    ]
    for name, values in times.items():
        lines.append(f"{name:<8} {statistics.median(values):>9.2f} {min(values):>7.2f}")
    ratio = statistics.median(docker) / statistics.median(local)
    overhead = statistics.median(docker) - statistics.median(local)
    verdict = "met" if overhead < GOAL_SECONDS else "NOT met"
    lines += [
        "",
        f"docker/local (median): {ratio:.2f}x",
        f"overhead per trial (median): {overhead:+.2f} s (min: "
        f"{min(docker) - min(local):+.2f} s); goal < +{GOAL_SECONDS:.0f} s: {verdict}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="timed trials per runtime")
    parser.add_argument("--image", help="docker image (default: the built sklearn image)")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be 1 or more but got {args.trials}")
    try:
        image = args.image or default_image()
        with tempfile.TemporaryDirectory(prefix="tweakops-bench-") as scratch:
            times = measure(args.trials, image, Path(scratch))
    except TweakopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(times, image))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
