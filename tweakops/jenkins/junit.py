"""A run as JUnit XML, so that Jenkins' `junit` step shows the stages and the threshold check.

One testsuite "tweakops": a testcase per stage (classname tweakops.stages; a failed stage is a
<failure>, a skipped or pending one <skipped/>) and the testcase "threshold"
(classname tweakops.threshold) that fails with the run's verdict unless the run reached its
threshold. Properties carry the run id, the commit and, relative to the run folder, where the
best model is (`best_model`), which the Jenkinsfile reads to archive that model only.

A Jenkins build that worked on several runs (`tweakops status --this-build`) gets one file with
a <testsuites> of one suite per run, named "tweakops <run>", whose classnames start with
"<run>." so that Jenkins shows each run's cases apart.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tweakops.files import atomic_write
from tweakops.records import RunRecord, StageRecord, TrialRecord, best_trial
from tweakops.results import Tuned, read_result
from tweakops.store import RunStore
from tweakops.vocabulary import NOT_RUN_STAGES, RunStatus, StageStatus, TrialStatus

SUITE = "tweakops"
STAGE_CLASS = "tweakops.stages"
THRESHOLD_CLASS = "tweakops.threshold"
THRESHOLD_CASE = "threshold"
JUNIT_FILE = "tweakops-junit.xml"  # its name in a Jenkins workspace (jobs/, Jenkinsfile)

# Why a stage that did not finish is reported skipped; a skipped stage says why in its error.
_NOT_RUN_REASONS: dict[str, str] = {
    StageStatus.PENDING: "not run",
    StageStatus.RUNNING: "still running when the report was written",
}


def write_junit(store: RunStore, run_id: str | list[str], path: Path) -> Path:
    """Write run `run_id` of `store` (or several runs) as JUnit XML at `path` (atomically)."""
    if isinstance(run_id, str) or len(run_id) == 1:
        root = run_suite(store, run_id if isinstance(run_id, str) else run_id[0])
    else:
        root = ET.Element("testsuites", name=SUITE)
        root.extend(run_suite(store, one, prefix=f"{one}.") for one in run_id)
    ET.indent(root)
    data = ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    return atomic_write(path, data)


def run_suite(store: RunStore, run_id: str, prefix: str = "") -> ET.Element:
    """One run as a <testsuite>; `prefix` starts its name and classnames (several runs)."""
    run = store.get_run(run_id)
    stages = store.stages(run_id)
    trials = store.trials(run_id)
    suite = ET.Element("testsuite", name=f"{SUITE} {run_id}" if prefix else SUITE)
    _properties(suite, store, run, stages, trials)
    failures = skipped = 0
    total = 0.0
    for stage in stages:
        seconds = stage.duration or 0.0
        total += seconds
        case = ET.SubElement(
            suite,
            "testcase",
            classname=prefix + STAGE_CLASS,
            name=stage.name,
            time=_seconds(seconds),
        )
        if stage.status == StageStatus.FAILED:
            failures += 1
            message = stage.error or f"stage {stage.name} failed"
            failure = ET.SubElement(case, "failure", message=message, type="StageFailed")
            failure.text = message
        elif stage.status in NOT_RUN_STAGES or stage.status == StageStatus.RUNNING:
            skipped += 1
            reason = _NOT_RUN_REASONS.get(stage.status, stage.error or "skipped")
            ET.SubElement(case, "skipped", message=reason)
        if stage.summary:
            ET.SubElement(case, "system-out").text = stage.summary
    if not _threshold_case(suite, run, stages, trials, prefix):
        failures += 1
    suite.set("tests", str(len(stages) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", _seconds(total))
    suite.set("timestamp", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(run.created)))
    suite.set("hostname", socket.gethostname())
    return suite


def _threshold_case(
    suite: ET.Element,
    run: RunRecord,
    stages: list[StageRecord],
    trials: list[TrialRecord],
    prefix: str,
) -> bool:
    """Add the threshold testcase; return whether it passed."""
    tuning = sum(t.duration or 0.0 for t in trials)
    case = ET.SubElement(
        suite,
        "testcase",
        classname=prefix + THRESHOLD_CLASS,
        name=THRESHOLD_CASE,
        time=_seconds(tuning),
    )
    best = _best_trial(trials)
    lines = [f"run {run.id}: {run.status}"]
    if run.verdict:
        lines.append(run.verdict)
    if best is not None and best.accuracy is not None:
        lines.append(f"best: trial {best.number}, accuracy {best.accuracy:.4f}")
    lines.append(f"{len(trials)} trial(s)")
    ET.SubElement(case, "system-out").text = "\n".join(lines)
    if run.status == RunStatus.REACHED:
        return True
    message = run.verdict or _unchecked(run, stages)
    failure = ET.SubElement(case, "failure", message=message, type="ThresholdNotReached")
    failure.text = message
    return False


def _unchecked(run: RunRecord, stages: list[StageRecord]) -> str:
    """Why there is no verdict: the first failed stage, or the stage the run stopped before."""
    for stage in stages:
        if stage.status == StageStatus.FAILED:
            return f"threshold not checked: {stage.name} failed: {stage.error or 'no message'}"
    for stage in stages:
        if stage.status != StageStatus.SUCCEEDED:
            return f"threshold not checked: stage {stage.name} is {stage.status} (run {run.status})"
    return f"threshold not reached (run {run.status})"


def _properties(
    suite: ET.Element,
    store: RunStore,
    run: RunRecord,
    stages: list[StageRecord],
    trials: list[TrialRecord],
) -> None:
    values: dict[str, str] = {
        "run_id": run.id,
        "source": run.source,
        "status": run.status,
        "run_folder": str(store.run_dir(run.id)),
    }
    if run.sha:
        values["sha"] = run.sha
    if run.build_url:
        values["build_url"] = run.build_url
    best = _best_trial(trials)
    if best is not None and best.accuracy is not None:
        values["best_trial"] = str(best.number)
        values["best_accuracy"] = f"{best.accuracy:.6g}"
    model = _best_model(store, run, stages, best)
    if model is not None:
        values["best_model"] = model
    props = ET.SubElement(suite, "properties")
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=value)


def _best_trial(trials: list[TrialRecord]) -> TrialRecord | None:
    return best_trial([t for t in trials if t.status == TrialStatus.SUCCEEDED])


def _best_model(
    store: RunStore, run: RunRecord, stages: list[StageRecord], best: TrialRecord | None
) -> str | None:
    """The best model's folder relative to the run folder (POSIX), if it is inside it."""
    stage = next(
        (s for s in stages if s.name == "tune" and s.status == StageStatus.SUCCEEDED), None
    )
    tuned = read_result(stage, Tuned) if stage is not None else None
    folder: str | None = None
    if tuned is not None and tuned.model_dir:
        folder = tuned.model_dir
    elif best is not None and best.folder:
        folder = f"{best.folder}/output"
    if folder is None:
        return None
    try:
        relative = Path(folder).resolve().relative_to(store.run_dir(run.id).resolve())
    except ValueError:
        return None
    return relative.as_posix()


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"
