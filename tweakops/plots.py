"""The accuracy plot: metric per trial, best so far, and the threshold line."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from tweakops.files import atomic_write
from tweakops.records import TrialRecord

PLOT_FILE = "accuracy.png"  # in the run folder: rewritten after every finished trial


def accuracy_plot(trials: Sequence[TrialRecord], threshold: float, metric: str, path: Path) -> Path:
    """Write a PNG of the trials' metric with the best-so-far line and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    scored = [(t.number, t.accuracy) for t in trials if t.accuracy is not None]
    failed = [t.number for t in trials if t.status == "failed"]
    stopped = [t.number for t in trials if t.status in ("pruned", "cancelled")]
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=100)
    if scored:
        numbers, values = zip(*scored, strict=True)
        best: list[float] = []
        for value in values:
            best.append(max(value, best[-1]) if best else value)
        axes.plot(numbers, values, "o", color="#4477aa", label=f"{metric} per trial")
        axes.step(numbers, best, where="post", color="#228833", label="best so far")
    if failed:
        axes.plot(failed, [0.0] * len(failed), "x", color="#cc3311", label="failed trial")
    if stopped:
        axes.plot(stopped, [0.0] * len(stopped), "v", color="#999999", label="pruned/cancelled")
    axes.axhline(threshold, color="#ee7733", linestyle="--", label=f"threshold {threshold}")
    axes.set_xlabel("trial (0 = the defaults)")
    axes.set_ylabel(metric)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write(path, buffer.getvalue())
