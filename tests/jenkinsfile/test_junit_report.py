"""tweakops.jenkins.junit.write_junit: a real run store in tmp_path, read back as JUnit XML."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tweakops.jenkins.junit import write_junit
from tweakops.records import STAGES, TrialRecord
from tweakops.store import RunStore

T0 = 1_700_000_000.0


def _store(home: Path) -> tuple[RunStore, str]:
    store = RunStore(home)
    run = store.create_run("/repos/iris", {"threshold": "0.95"})
    store.update_run(run.id, sha="f7a04a7401bcd9f37a0152847ae5ea05e902d596")
    return store, run.id


def _succeed(store: RunStore, run_id: str, name: str, start: float, seconds: float) -> None:
    store.set_stage(
        run_id,
        name,
        status="succeeded",
        started=start,
        ended=start + seconds,
        result={"summary": f"{name} ok"},
    )


def _trial(store: RunStore, run_id: str, number: int, accuracy: float | None, status: str) -> None:
    folder = store.run_dir(run_id) / "trials" / f"{number:03d}"
    store.save_trial(
        TrialRecord(
            run_id=run_id,
            number=number,
            params={} if number == 0 else {"epochs": 40 + number},
            status=status,
            accuracy=accuracy,
            started=T0 + 10 * number,
            ended=T0 + 10 * number + 2.5,
            verdict="ok" if status == "succeeded" else "code_error",
            folder=str(folder),
        )
    )


def _read(path: Path) -> tuple[ET.Element, dict[str, ET.Element], dict[str, str]]:
    suite = ET.parse(path).getroot()
    cases = {case.get("name", ""): case for case in suite.iter("testcase")}
    props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
    return suite, cases, props


def test_reached_run_passes_every_case(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path / "home")
    for i, name in enumerate(STAGES):
        _succeed(store, run_id, name, T0 + i * 10, 1.5 + i)
    _trial(store, run_id, 0, 0.7556, "succeeded")
    _trial(store, run_id, 1, 0.9811, "succeeded")
    _trial(store, run_id, 2, None, "failed")
    model_dir = store.run_dir(run_id) / "trials" / "001" / "output"
    store.set_stage(run_id, "tune", result={"model_dir": str(model_dir), "summary": "reached"})
    verdict = "threshold 0.95 reached: 0.9811 at trial 1 after 3 trial(s)"
    store.update_run(run_id, status="reached", verdict=verdict)

    path = write_junit(store, run_id, tmp_path / "out" / "junit.xml")

    assert path == tmp_path / "out" / "junit.xml"
    suite, cases, props = _read(path)
    assert suite.tag == "testsuite"
    assert suite.get("name") == "tweakops"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "0", "0")
    assert list(cases) == [*STAGES, "threshold"]
    for i, name in enumerate(STAGES):
        assert cases[name].get("classname") == "tweakops.stages"
        assert cases[name].get("time") == f"{1.5 + i:.3f}"
        assert cases[name].find("failure") is None
        assert cases[name].find("skipped") is None
    threshold = cases["threshold"]
    assert threshold.get("classname") == "tweakops.threshold"
    assert threshold.find("failure") is None
    assert verdict in (threshold.findtext("system-out") or "")
    assert float(suite.get("time", "0")) == pytest.approx(sum(1.5 + i for i in range(6)))
    assert props["run_id"] == run_id
    assert props["status"] == "reached"
    assert props["sha"].startswith("f7a04a7401")
    assert props["best_trial"] == "1"
    assert props["best_model"] == "trials/001/output"
    # Scripts find the best model by this exact text.
    assert '<property name="best_model" value="trials/001/output"' in path.read_text()
    assert not [p for p in path.parent.iterdir() if p.name != "junit.xml"]  # no temp left


def test_threshold_not_reached_fails_with_the_verdict(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path / "home")
    for i, name in enumerate(STAGES):
        _succeed(store, run_id, name, T0 + i, 1.0)
    _trial(store, run_id, 0, 0.61, "succeeded")
    _trial(store, run_id, 1, 0.72, "succeeded")
    verdict = "max_trials 2 spent: best 0.7200 < threshold 0.95"
    store.update_run(run_id, status="not_reached", verdict=verdict)

    suite, cases, props = _read(write_junit(store, run_id, tmp_path / "junit.xml"))

    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "1", "0")
    failure = cases["threshold"].find("failure")
    assert failure is not None
    assert failure.get("message") == verdict
    assert failure.get("type") == "ThresholdNotReached"
    assert all(cases[name].find("failure") is None for name in STAGES)
    # No tune result: the best trial's output folder is the model.
    assert props["best_model"] == "trials/001/output"


def test_failed_stage_is_a_failure_and_the_rest_skipped(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path / "home")
    _succeed(store, run_id, "pull", T0, 0.2)
    _succeed(store, run_id, "inspect", T0 + 1, 0.1)
    error = 'entrypoint train.py exited 1: ValueError: bad <input> & "quotes"\nline two'
    store.set_stage(run_id, "train", status="failed", started=T0 + 2, ended=T0 + 5.25, error=error)
    store.set_stage(run_id, "tune", status="skipped", error="skipped: train failed")
    _succeed(store, run_id, "notify", T0 + 6, 0.4)
    # watch stays pending; the run is left "running" with no verdict, as when stages run
    # one by one under Jenkins.

    suite, cases, props = _read(write_junit(store, run_id, tmp_path / "junit.xml"))

    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "2", "2")
    train_failure = cases["train"].find("failure")
    assert train_failure is not None
    assert train_failure.get("message") == error
    assert train_failure.text == error
    assert cases["train"].get("time") == "3.250"
    tune_skipped = cases["tune"].find("skipped")
    assert tune_skipped is not None
    assert tune_skipped.get("message") == "skipped: train failed"
    watch_skipped = cases["watch"].find("skipped")
    assert watch_skipped is not None
    assert watch_skipped.get("message") == "not run"
    assert cases["watch"].get("time") == "0.000"
    threshold = cases["threshold"].find("failure")
    assert threshold is not None
    assert threshold.get("message", "").startswith("threshold not checked: train failed: ")
    assert "best_model" not in props
    assert "best_trial" not in props


def test_overwrites_an_earlier_report(tmp_path: Path) -> None:
    store, run_id = _store(tmp_path / "home")
    path = tmp_path / "junit.xml"
    path.write_text("stale")
    write_junit(store, run_id, path)
    suite, cases, _ = _read(path)
    assert suite.get("skipped") == "6"  # a fresh run: every stage pending
    assert cases["threshold"].find("failure") is not None


def test_status_junit_option_writes_the_report(
    home: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    store, run_id = _store(home)
    for i, name in enumerate(STAGES):
        _succeed(store, run_id, name, T0 + i, 1.0)
    store.update_run(run_id, status="reached", verdict="threshold 0.95 reached")
    out = home.parent / "report" / "tweakops-junit.xml"

    proc = cli("status", "--run", run_id, "--junit", str(out))

    assert proc.returncode == 0, proc.stderr
    suite, cases, _ = _read(out)
    assert suite.get("failures") == "0"
    assert cases["threshold"].find("failure") is None
