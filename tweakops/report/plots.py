"""The plots of a run: metric per trial (best so far, threshold) and the best trial's epochs."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweakops.files import atomic_write
from tweakops.records import TrialRecord
from tweakops.vocabulary import TrialStatus

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_FILE = "accuracy.png"  # in the run folder: rewritten after every finished trial
THRESHOLD_COLOR = "#ee7733"
BEST_COLOR = "#228833"
# Paul Tol's bright scheme without the two colours above: one per metric of the epoch plot.
METRIC_COLORS = ("#4477aa", "#aa3377", "#66ccee", "#ccbb44", "#ee6677", "#bbbbbb")
_NOT_METRICS = frozenset({"epoch", "time", "pid"})  # what training.log_epoch adds itself


def accuracy_png(trials: Sequence[TrialRecord], threshold: float, metric: str) -> bytes:
    """A PNG of the trials' metric with the best-so-far line and the threshold."""
    scored = [(t.number, t.accuracy) for t in trials if t.accuracy is not None]
    failed = [t.number for t in trials if t.status == TrialStatus.FAILED]
    stopped = [t.number for t in trials if t.status in (TrialStatus.PRUNED, TrialStatus.CANCELLED)]
    figure, axes = _pyplot().subplots(figsize=(7, 3.6), dpi=100)
    if scored:
        numbers, values = zip(*scored, strict=True)
        best: list[float] = []
        for value in values:
            best.append(max(value, best[-1]) if best else value)
        axes.plot(numbers, values, "o", color="#4477aa", label=f"{metric} per trial")
        axes.step(numbers, best, where="post", color=BEST_COLOR, label="best so far")
    if failed:
        axes.plot(failed, [0.0] * len(failed), "x", color="#cc3311", label="failed trial")
    if stopped:
        axes.plot(stopped, [0.0] * len(stopped), "v", color="#999999", label="pruned/cancelled")
    axes.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", label=f"threshold {threshold}")
    axes.set_xlabel("trial (0 = the defaults)")
    axes.xaxis.set_major_locator(_integer_ticks())
    axes.set_xlim(-0.5, max((t.number for t in trials), default=0) + 0.5)
    axes.set_ylabel(metric)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def accuracy_plot(trials: Sequence[TrialRecord], threshold: float, metric: str, path: Path) -> Path:
    """Write accuracy_png() to `path` atomically."""
    return atomic_write(path, accuracy_png(trials, threshold, metric))


def epoch_series(epochs: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each numeric metric as (epoch, value) points; an epoch logged twice (a restart) keeps
    its last value, and a missing or non-finite value leaves a gap."""
    latest: dict[str, dict[int, float]] = {}
    for record in epochs:
        for name, value in record.items():
            if name in _NOT_METRICS or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and value == value:  # NaN != NaN
                latest.setdefault(name, {})[int(record["epoch"])] = float(value)
    return {name: sorted(points.items()) for name, points in latest.items()}


def epoch_png(epochs: Sequence[Mapping[str, Any]], threshold: float | None = None) -> bytes | None:
    """A PNG of every metric per epoch: the 0-1 ones (accuracy, val_accuracy…) on the left,
    losses and other scales on the right; None when no epoch has a number to plot."""
    series = epoch_series(epochs)
    if not series:
        return None
    unit = {n: p for n, p in series.items() if "loss" not in n and _within_0_1(p)}
    other = {n: p for n, p in series.items() if n not in unit}
    colors = _colors_by_base_name([*unit, *other])
    panels = [p for p in (unit, other) if p]
    figure, axes = _pyplot().subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), dpi=100)
    for ax, panel in zip([axes] if len(panels) == 1 else list(axes), panels, strict=True):
        _epoch_panel(ax, panel, colors)
        if panel is unit:
            ax.set_ylim(0, 1.02)
            ax.set_ylabel("accuracy (0–1)")
            if threshold is not None:
                label = f"threshold {threshold}"
                ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", label=label)
        else:
            ax.set_ylabel("loss" if all("loss" in n for n in panel) else "value")
        ax.legend(loc="best", fontsize=8)
    return _png(figure)


def _epoch_panel(
    axes: Axes, panel: Mapping[str, list[tuple[int, float]]], colors: Mapping[str, str]
) -> None:
    """One line per metric: the validation twin of a metric dashed, in the same colour."""
    for name, points in panel.items():
        xs, ys = zip(*points, strict=True)
        axes.plot(
            xs,
            ys,
            color=colors[name],
            linestyle="--" if name.startswith("val_") else "-",
            marker="o" if len(points) <= 25 else None,
            markersize=3,
            label=name,
        )
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(_integer_ticks())
    axes.grid(alpha=0.3)


def _integer_ticks() -> Any:
    """Ticks on whole numbers only: there is no trial 0.5, nor an epoch 2.5."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _within_0_1(points: Sequence[tuple[int, float]]) -> bool:
    return all(0.0 <= value <= 1.0 for _, value in points)


def _colors_by_base_name(names: Sequence[str]) -> dict[str, str]:
    """`accuracy` and `val_accuracy` share a colour; each other base name takes the next."""
    bases = list(dict.fromkeys(name.removeprefix("val_") for name in names))
    by_base = {base: METRIC_COLORS[i % len(METRIC_COLORS)] for i, base in enumerate(bases)}
    return {name: by_base[name.removeprefix("val_")] for name in names}


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: no display needed, imported only when plotting."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    _pyplot().close(figure)
    return buffer.getvalue()
