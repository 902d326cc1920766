"""read_metric: what a trial's accuracy.txt may hold, where it is looked for, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import read_metric, write_metric
from training.metric import MetricError


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    return out, work


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0.93", 0.93),
        ("0.93\n", 0.93),
        ("  0.5 \n\n", 0.5),
        ("84.3", 0.843),
        ("93%", 0.93),
        ("93 %\n", 0.93),
        ("1", 1.0),
        ("0", 0.0),
        ("100", 1.0),
        ("9.5e-1", 0.95),
    ],
)
def test_accepts_a_fraction_or_a_percentage(
    dirs: tuple[Path, Path], content: str, expected: float
) -> None:
    out, work = dirs
    (out / "accuracy.txt").write_text(content)
    assert read_metric(out, work) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("abc", "not a single number"),
        ("", "it is empty"),
        (" \n", "it is empty"),
        ("0.5 0.6", "not a single number"),
        ("0.5\n0.6", "not a single number"),
        ("-1", "out of range"),
        ("150", "out of range"),
        ("150%", "out of range"),
        ("nan", "not a single number"),
        ("inf", "not a single number"),
        ("1e999", "not a finite number"),
    ],
)
def test_rejects_anything_but_one_number_in_range(
    dirs: tuple[Path, Path], content: str, why: str
) -> None:
    out, work = dirs
    (out / "accuracy.txt").write_text(content)
    shown = repr(content.encode()[:40])
    with pytest.raises(MetricError, match=why) as info:
        read_metric(out, work)
    message = str(info.value)
    assert shown in message
    assert "expected one number between 0 and 1, or a percentage up to 100" in message


def test_rejection_quotes_only_the_first_40_bytes(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    (out / "accuracy.txt").write_bytes(b"Traceback (most recent call last): " + b"x" * 500)
    with pytest.raises(MetricError) as info:
        read_metric(out, work)
    assert repr(b"Traceback (most recent call last): xxxxx") in str(info.value)
    assert "x" * 41 not in str(info.value)


def test_rejects_bytes_that_are_not_text(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    (out / "accuracy.txt").write_bytes(b"\xff\xfe0.9")
    with pytest.raises(MetricError, match="not UTF-8"):
        read_metric(out, work)


def test_output_dir_is_preferred_over_workdir(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    (out / "accuracy.txt").write_text("0.91")
    (work / "accuracy.txt").write_text("0.42")
    assert read_metric(out, work) == pytest.approx(0.91)


def test_workdir_is_used_when_output_dir_has_none(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    (work / "accuracy.txt").write_text("87.5\n")
    assert read_metric(out, work) == pytest.approx(0.875)


def test_missing_file_names_both_folders_and_the_fix(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    with pytest.raises(MetricError, match=r"no accuracy\.txt was written in") as info:
        read_metric(out, work)
    message = str(info.value)
    assert str(out) in message and str(work) in message
    assert "training.write_metric(acc)" in message


def test_other_metric_names_are_read_from_their_own_file(dirs: tuple[Path, Path]) -> None:
    out, work = dirs
    (out / "f1.txt").write_text("0.7")
    assert read_metric(out, work, name="f1") == pytest.approx(0.7)
    with pytest.raises(MetricError, match=r"no auc\.txt was written"):
        read_metric(out, work, name="auc")


def test_write_metric_round_trips_through_read_metric(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, work = dirs
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(out))
    path = write_metric(0.9375)
    assert path == out / "accuracy.txt"
    assert path.read_text() == "0.9375\n"
    assert read_metric(out, work) == 0.9375
    assert [p.name for p in out.iterdir()] == ["accuracy.txt"]  # no temp file left behind


def test_write_metric_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWEAKOPS_OUTPUT", raising=False)
    monkeypatch.chdir(tmp_path)
    write_metric(0.5)
    assert (tmp_path / "accuracy.txt").read_text() == "0.5\n"
