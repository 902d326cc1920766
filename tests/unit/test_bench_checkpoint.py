"""bench/checkpoint_overhead.py's pure part: medians, the share and the report.

No timing thresholds here (house rule): only the arithmetic on made-up fits.
"""

from __future__ import annotations

import pytest

from bench.checkpoint_overhead import EpochOverhead, Fit, report


def test_overhead_compares_the_medians_of_the_fits() -> None:
    plain = [Fit(0.20, 0.001, 1.0), Fit(0.25, 0.002, 1.5), Fit(0.90, 0.001, 2.0)]
    ours = [Fit(0.21, 0.010, 1.0, 0.004), Fit(0.23, 0.020, 3.0, 0.002), Fit(0.22, 0.03, 1.5, 0.1)]
    result = EpochOverhead.of(20, plain, ours)
    assert result.plain_s_per_epoch == 0.25 and result.tweakops_s_per_epoch == 0.22
    assert result.overhead_s == pytest.approx(-0.03)
    assert result.share == pytest.approx(-0.12)
    assert result.paired_overhead_s == pytest.approx(-0.02)  # of 0.01, -0.02, -0.68
    assert result.in_callbacks_s == 0.004
    assert result.tweakops_end_s == 0.020 and result.plain_end_s == 0.001
    assert result.load_1m == pytest.approx(10.0 / 6) and result.load_1m_max == 3.0
    assert result.repeats == 3 and result.met


def test_report_states_the_share_against_the_goal() -> None:
    plain, ours = Fit(0.2, 0.0, 0.5, cpu_s_per_epoch=0.12), Fit(0.3, 0.05, 0.7, 0.01, 0.125)
    result = EpochOverhead.of(20, [plain], [ours])
    text = report(result)
    assert "checkpoint + epoch record: 100.0 ms per epoch = 50.0% of a plain epoch" in text
    assert "(goal ≤ 10%): NOT met" in text
    assert "paired (median of with - the plain fit before it): 100.0 ms per epoch = 50.0%" in text
    assert "measured directly): 10.0 ms per epoch = 5.0%" in text
    assert "(all threads): +5.0 ms per epoch (120.0 → 125.0)" in text
    assert "1.50x" in text and "load 1m: 0.60 mean, 0.70 max" in text
