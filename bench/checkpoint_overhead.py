"""What the per-epoch checkpoint and epoch record cost a Keras trial, against a plain fit.

    python bench/checkpoint_overhead.py [--epochs 20] [--repeats 5] [--seed 0]

In this process, examples/digits-cnn is fitted exactly as its train.py does (its load_data(),
training.keras_cnn with the defaults, keras seed SEED, validation_split 0.1, batch 64; verbose
0), `repeats` times with `training.keras_callbacks()` (TWEAKOPS_OUTPUT: a fresh temp folder
per fit, so that nothing resumes) and `repeats` times with no callbacks, alternating. A tiny
timing callback, last in the list, stamps the end of every epoch (after the other callbacks
ran): a fit's seconds per epoch are (end of the last epoch - end of epoch 1) / (epochs - 1),
so epoch 1 (tracing) is left out and every epoch's writes are in, the occasional ones too
(a best model saved only when val_accuracy improves). The two are compared by their medians
over the repeats. What a fit spends after its last epoch (waiting for writes still under way,
for instance) is reported apart, as "at train end". The peer is the plain fit, measured in the
same run. Goal (issue #18): checkpoint + epoch record ≤ 10% of a plain epoch.

On a busy machine the fits' own times swing by more than the checkpoint costs, so three
more figures come with the medians: the median of the paired differences (each fit with the
callbacks minus the plain fit just before it); the time spent inside the callbacks' own
on_epoch_begin/on_epoch_end per epoch, measured directly (epochs 2..N; it leaves out what
the callbacks cost indirectly, such as their background fsync thread); and the CPU time of
this process per epoch (all its threads: the training's, the fsync thread), which other
processes on the machine disturb far less than wall time.

The 1-minute load average is sampled before every fit: on a shared machine, rerun when it is
far above the number of CPUs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import ROOT, BenchError, met_word, ratio, run_bench, say

EXAMPLE = ROOT / "examples" / "digits-cnn"
GOAL_SHARE = 0.10
BATCH_SIZE = 64
VALIDATION_SPLIT = 0.1
OUTPUT_ENV = "TWEAKOPS_OUTPUT"  # training/_paths.py
PARAMS_ENV = "TWEAKOPS_PARAMS"  # training/_params.py: unset, every knob is its default


@dataclass(frozen=True)
class Fit:
    """One timed fit: seconds per epoch (epochs 2..N), after the last epoch, and inside the
    callbacks' epoch calls per epoch (epochs 2..N; 0 without callbacks)."""

    s_per_epoch: float
    end_s: float
    load_1m: float
    in_callbacks_s: float = 0.0
    cpu_s_per_epoch: float = 0.0


@dataclass(frozen=True)
class EpochOverhead:
    """Median seconds per epoch of `repeats` fits with keras_callbacks() and without."""

    epochs: int
    repeats: int
    plain_s_per_epoch: float
    tweakops_s_per_epoch: float
    overhead_s: float  # tweakops - plain, per epoch
    share: float  # overhead_s / plain_s_per_epoch
    plain_end_s: float  # after the last epoch (median)
    tweakops_end_s: float
    load_1m: float  # mean of the 1-minute load average sampled before each fit
    load_1m_max: float
    paired_overhead_s: float  # median of (fit with callbacks - the plain fit before it)
    in_callbacks_s: float  # median time per epoch inside the callbacks' epoch calls
    plain_cpu_s_per_epoch: float  # median CPU time of this process per epoch
    tweakops_cpu_s_per_epoch: float

    @property
    def met(self) -> bool:
        return self.share <= GOAL_SHARE

    @classmethod
    def of(cls, epochs: int, plain: list[Fit], tweakops: list[Fit]) -> EpochOverhead:
        base = statistics.median(f.s_per_epoch for f in plain)
        ours = statistics.median(f.s_per_epoch for f in tweakops)
        loads = [f.load_1m for f in plain + tweakops]
        return cls(
            epochs=epochs,
            repeats=len(plain),
            plain_s_per_epoch=base,
            tweakops_s_per_epoch=ours,
            overhead_s=ours - base,
            share=(ours - base) / base,
            plain_end_s=statistics.median(f.end_s for f in plain),
            tweakops_end_s=statistics.median(f.end_s for f in tweakops),
            load_1m=statistics.fmean(loads),
            load_1m_max=max(loads),
            paired_overhead_s=statistics.median(
                t.s_per_epoch - p.s_per_epoch for p, t in zip(plain, tweakops, strict=True)
            ),
            in_callbacks_s=statistics.median(f.in_callbacks_s for f in tweakops),
            plain_cpu_s_per_epoch=statistics.median(f.cpu_s_per_epoch for f in plain),
            tweakops_cpu_s_per_epoch=statistics.median(f.cpu_s_per_epoch for f in tweakops),
        )


def epoch_overhead(epochs: int = 20, repeats: int = 5, seed: int = 0) -> EpochOverhead:
    """Fit the digits CNN `repeats` times with keras_callbacks() and without, alternating."""
    if epochs < 3 or repeats < 1:
        raise BenchError(f"need epochs ≥ 3 and repeats ≥ 1, got {epochs} and {repeats}")
    with _output_folder():  # train.py reads its params when it is loaded
        data = _load_example().load_data()
    plain: list[Fit] = []
    tweakops: list[Fit] = []
    for number in range(1, repeats + 1):
        for name, runs in (("plain", plain), ("tweakops", tweakops)):
            fit = _timed_fit(data, epochs, seed, with_callbacks=name == "tweakops")
            runs.append(fit)
            say(
                f"{name} {number}/{repeats}: {fit.s_per_epoch * 1000:.1f} ms per epoch, "
                f"{fit.end_s * 1000:.1f} ms at train end (load 1m {fit.load_1m:.2f})"
            )
    return EpochOverhead.of(epochs, plain, tweakops)


def _load_example() -> ModuleType:
    """examples/digits-cnn/train.py as a module (its main() is not run)."""
    spec = importlib.util.spec_from_file_location("digits_cnn_train", EXAMPLE / "train.py")
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {EXAMPLE / 'train.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed_fit(data: Any, epochs: int, seed: int, with_callbacks: bool) -> Fit:
    """One fit as train.py's; keras_callbacks() writing to a fresh temp folder if asked."""
    import keras

    import training

    x_train, _, y_train, _ = data
    load = os.getloadavg()[0]
    with _output_folder() as folder:
        keras.utils.set_random_seed(seed)
        model = training.keras_cnn(input_shape=(8, 8, 1), classes=10)
        callbacks = training.keras_callbacks() if with_callbacks else []
        inside = [_time_epoch_calls(callback) for callback in callbacks]
        stamps: list[tuple[float, float]] = []
        model.fit(
            x_train,
            y_train,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            validation_split=VALIDATION_SPLIT,
            callbacks=[*callbacks, _stamper(stamps)],
            verbose=0,
        )
        returned = time.perf_counter()
        if with_callbacks and not (folder / "checkpoints" / "backup").is_dir():
            raise BenchError(f"keras_callbacks() wrote no backup in {folder}")
    if len(stamps) != epochs:
        raise BenchError(f"the timing callback saw {len(stamps)} epochs of {epochs}")
    (first, first_cpu), (last, last_cpu) = stamps[0], stamps[-1]
    return Fit(
        s_per_epoch=(last - first) / (epochs - 1),
        end_s=returned - last,
        load_1m=load,
        in_callbacks_s=sum(sum(times[1:]) for times in inside) / (epochs - 1),
        cpu_s_per_epoch=(last_cpu - first_cpu) / (epochs - 1),
    )


def _time_epoch_calls(callback: Any) -> list[float]:
    """Wrap the callback's on_epoch_begin/on_epoch_end (on the instance); the returned list
    gets the seconds each epoch spent in them."""
    times: list[float] = []
    for name in ("on_epoch_begin", "on_epoch_end"):
        setattr(callback, name, _timed(getattr(callback, name), times, name == "on_epoch_end"))
    return times


def _timed(method: Any, times: list[float], ends_epoch: bool) -> Any:
    pending = [0.0]

    def call(epoch: int, logs: dict[str, Any] | None = None) -> None:
        began = time.perf_counter()
        try:
            method(epoch, logs)
        finally:
            pending[0] += time.perf_counter() - began
            if ends_epoch:
                times.append(pending[0])
                pending[0] = 0.0

    return call


def _stamper(stamps: list[tuple[float, float]]) -> Any:
    """A callback appending (perf_counter(), process_time()) at the end of every epoch."""
    import keras

    base: Any = keras.callbacks.Callback

    class Stamp(base):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            stamps.append((time.perf_counter(), time.process_time()))

    return Stamp()


@contextmanager
def _output_folder() -> Iterator[Path]:
    """A fresh TWEAKOPS_OUTPUT and no TWEAKOPS_PARAMS for one fit; both are put back after."""
    before = {name: os.environ.pop(name, None) for name in (OUTPUT_ENV, PARAMS_ENV)}
    with tempfile.TemporaryDirectory(prefix="tweakops-bench-ckpt-") as scratch:
        os.environ[OUTPUT_ENV] = scratch
        try:
            yield Path(scratch)
        finally:
            os.environ.pop(OUTPUT_ENV, None)
            os.environ.update({k: v for k, v in before.items() if v is not None})


def report(result: EpochOverhead) -> str:
    """The table, the ratio and the verdict."""
    ms = 1000.0
    cpu_more = result.tweakops_cpu_s_per_epoch - result.plain_cpu_s_per_epoch
    rows = (
        ("plain fit", result.plain_s_per_epoch, result.plain_end_s),
        ("keras_callbacks()", result.tweakops_s_per_epoch, result.tweakops_end_s),
    )
    lines = [
        f"checkpoint overhead: {EXAMPLE.relative_to(ROOT)}, {result.epochs} epochs, "
        f"{result.repeats} fits each (alternating), epoch 1 left out",
        "peer: the same fit with no callbacks, measured in the same run",
        "",
        f"{'fit':<18} {'ms per epoch':>12} {'ms at train end':>16}",
        *(f"{name:<18} {per * ms:>12.1f} {end * ms:>16.1f}" for name, per, end in rows),
        "",
        f"with/without (median): {ratio(result.tweakops_s_per_epoch, result.plain_s_per_epoch)}",
        f"checkpoint + epoch record: {result.overhead_s * ms:.1f} ms per epoch = "
        f"{result.share * 100:.1f}% of a plain epoch (goal ≤ {GOAL_SHARE * 100:.0f}%): "
        f"{met_word(result.met)}",
        f"  paired (median of with - the plain fit before it): "
        f"{result.paired_overhead_s * ms:.1f} ms per epoch = "
        f"{result.paired_overhead_s / result.plain_s_per_epoch * 100:.1f}%",
        f"  inside the callbacks' epoch calls (measured directly): "
        f"{result.in_callbacks_s * ms:.1f} ms per epoch = "
        f"{result.in_callbacks_s / result.plain_s_per_epoch * 100:.1f}%",
        f"  CPU time of this process (all threads): {cpu_more * ms:+.1f} ms per epoch "
        f"({result.plain_cpu_s_per_epoch * ms:.1f} → {result.tweakops_cpu_s_per_epoch * ms:.1f})",
        f"load 1m: {result.load_1m:.2f} mean, {result.load_1m_max:.2f} max, "
        f"on {os.cpu_count()} CPUs",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="per fit, epoch 1 not timed")
    parser.add_argument("--repeats", type=int, default=5, help="fits with and without each")
    parser.add_argument("--seed", type=int, default=0, help="keras seed of every fit")
    args = parser.parse_args(argv)
    if args.epochs < 3 or args.repeats < 1:
        parser.error("--epochs must be 3 or more and --repeats 1 or more")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    say(f"load 1m {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return run_bench(lambda: report(epoch_overhead(args.epochs, args.repeats, args.seed)))


if __name__ == "__main__":
    raise SystemExit(main())
