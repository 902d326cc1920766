"""bench/recovery.py's pure part: the fault schedule and what epochs.jsonl says per fault.

No timing thresholds here (house rule): only the arithmetic on made-up epoch logs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench._common import ratio
from bench.recovery import (
    Fault,
    Measured,
    Restart,
    Setup,
    epoch_seconds,
    fault_schedule,
    make_source,
    match_restarts,
    recoveries,
    report,
)
from monitor import RestartPolicy
from training import read_epochs


def rec(epoch: int, time: float, pid: int = 7) -> dict[str, float | int]:
    return {"epoch": epoch, "time": time, "pid": pid, "accuracy": 0.5}


def test_fault_schedule_is_seeded_ordered_and_leaves_an_epoch_before_and_after() -> None:
    schedule = fault_schedule(5, 20, seed=3)
    assert schedule == fault_schedule(5, 20, seed=3)
    assert schedule != fault_schedule(5, 20, seed=4)
    epochs = [fault.epoch for fault in schedule]
    assert epochs == sorted(set(epochs)) and len(epochs) == 5
    assert all(2 <= epoch <= 19 for epoch in epochs)
    assert all(0.1 <= fault.offset <= 0.9 for fault in schedule)
    assert [f.epoch for f in fault_schedule(3, 5, seed=0)] == [2, 3, 4]  # every slot used


@pytest.mark.parametrize(("faults", "epochs"), [(0, 20), (4, 5), (1, 2)])
def test_fault_schedule_refuses_more_faults_than_epochs_in_between(
    faults: int, epochs: int
) -> None:
    with pytest.raises(ValueError, match="--faults"):
        fault_schedule(faults, epochs, seed=0)


def test_recovery_time_is_death_to_first_epoch_of_the_next_process_and_redone_counts() -> None:
    records = [
        *(rec(e, float(e), pid=1) for e in (1, 2, 3, 4)),  # killed at 4.6, during epoch 5
        *(rec(e, t, pid=2) for e, t in ((3, 7.0), (4, 8.0), (5, 9.0))),  # redoes 3 and 4
        rec(6, 10.0, pid=3),  # killed at 9.2, resumes where it stopped
    ]
    first, second, third = recoveries(records, [4.6, 9.2, 10.5])
    assert (first.fault, first.killed_in, first.resumed_at, first.redone) == (1, 5, 3, 2)
    assert first.seconds == pytest.approx(2.4)
    assert (second.killed_in, second.resumed_at, second.redone) == (6, 6, 0)
    assert second.seconds == pytest.approx(0.8)
    assert (third.killed_in, third.resumed_at, third.seconds, third.redone) == (7, None, None, 0)


def test_processes_are_told_apart_by_the_kill_times_not_by_pid() -> None:
    # In a container train.py has the same pid after every restart.
    records = [rec(1, 1.0), rec(2, 2.0), rec(2, 5.0), rec(3, 6.0)]
    (only,) = recoveries(records, [2.5])
    assert (only.resumed_at, only.redone) == (2, 1)
    assert only.seconds == pytest.approx(2.5)


def test_an_epoch_checkpointed_but_not_logged_before_the_kill_is_not_redone() -> None:
    (only,) = recoveries([rec(1, 1.0), rec(2, 2.0), rec(4, 4.0)], [2.9])
    assert (only.killed_in, only.resumed_at, only.redone) == (3, 4, 0)


def test_recoveries_from_an_epochs_jsonl_with_a_torn_last_line(tmp_path: Path) -> None:
    lines = [json.dumps(rec(e, 100.0 + e, pid=1)) for e in (1, 2, 3)]
    lines += [json.dumps(rec(e, 110.0 + e, pid=2)) for e in (3, 4)]
    (tmp_path / "epochs.jsonl").write_text("\n".join(lines) + '\n{"epoch": 5, "ti')
    (only,) = recoveries(read_epochs(tmp_path), [103.5])
    assert (only.killed_in, only.resumed_at, only.redone) == (4, 3, 1)
    assert only.seconds == pytest.approx(9.5)


def test_epoch_time_never_spans_a_kill() -> None:
    records = [rec(1, 1.0), rec(2, 1.5), rec(3, 2.0), rec(3, 9.0), rec(4, 9.5)]
    assert epoch_seconds(records, [2.2]) == pytest.approx(0.5)
    assert epoch_seconds([rec(1, 1.0)], []) is None


def test_ratio_says_why_there_is_none() -> None:
    assert ratio(3.0, 2.0) == "1.50x"
    assert ratio(0, 0) == "n/a (both 0)"
    assert ratio(1, 0) == "n/a (peer 0)"
    assert ratio(None, 1.0) == "n/a"


def test_make_source_sets_trial_zeros_defaults(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", epochs=7, seconds=0.25)
    text = (source / "train.py").read_text()
    assert 'EPOCHS = training.param("epochs", 7)' in text
    assert 'EPOCH_SECONDS = training.param("epoch_seconds", 0.25)' in text
    compile(text, "train.py", "exec")


def test_report_compares_with_the_peer_and_the_goals() -> None:
    setup = Setup("local", 2, 0, 10, 0.5, RestartPolicy(), (Fault(3, 0.5), Fault(6, 0.5)))
    logged = tuple(rec(e, float(e)) for e in range(1, 11))
    # tweakops: 0.8 s to the next epoch after each kill, noticed 0.2 s and 0.05 s after.
    restarts = (Restart(3.4, 1, "exit 137", 0.5), Restart(6.25, 2, "exit 137", 0.5))
    ours = Measured("tweakops", logged, (3.2, 6.2), 0.75, 2, logged=restarts)
    # The peer redoes epoch 3 after the first kill, 0.6 s after it; then 0.8 s.
    peer = Measured("peer", (*logged[:3], rec(3, 3.8), *logged[3:]), (3.2, 6.2), 0.75, 2)
    text = report(setup, ours, peer, 0.75, ["heading"])
    rows = {line.split("  ")[0].strip(): line.split() for line in text.splitlines() if line}
    assert rows["recovery median s"][3:7] == ["0.80", "0.70", "1.14x", "<"]
    assert rows["recovery median s"][-1] == "met"
    assert rows["redone epochs/fault"][2:4] == ["0.00", "0.50"]
    assert rows["final accuracy"][-5:] == ["0.7500", "(tweakops:", "same,", "peer:", "same)"]
    fault_rows = [line.split() for line in text.splitlines() if line.startswith("    1  epoch 3")]
    # killed in, resumed at, recovery = noticed + backoff + start+epoch, redone
    assert fault_rows[0][4:11] == ["4", "4", "0.80", "0.20", "0.50", "0.10", "0"]
    assert fault_rows[1][4:8] == ["4", "3", "0.60", "1"]
    assert "WARNING" not in text


def test_restart_records_are_matched_to_kills_and_the_others_reported() -> None:
    engine = Restart(5.0, 2, "exit 143", 0.5)  # an engine restart between the two kills
    ours = (Restart(3.5, 1, "exit 137", 0.5), engine, Restart(7.0, 3, "exit 137", 0.5))
    matched, extra = match_restarts([3.2, 6.2], ours)
    assert matched == [ours[0], ours[2]] and extra == [engine]
    assert match_restarts([3.2, 6.2], ours[:1]) == ([ours[0], None], [])
    setup = Setup("docker", 2, 0, 10, 0.5, RestartPolicy(), (Fault(3, 0.5), Fault(6, 0.5)))
    logged = tuple(rec(e, float(e)) for e in range(1, 11))
    disturbed = Measured("tweakops", logged, (3.2, 6.2), 0.75, 3, logged=ours)
    peer = Measured("peer", logged, (3.2, 6.2), 0.75, 3)  # Docker's RestartCount: 3 for 2
    text = report(setup, disturbed, peer, 0.75, [])
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and "exit 143 at +1.8 s" in warnings[0], warnings


def test_a_kill_with_no_epoch_after_it_fails_the_max_but_not_the_median() -> None:
    records = [rec(1, 1.0), rec(2, 2.0), rec(3, 4.0)]
    measured = Measured("tweakops", tuple(records), (2.5, 4.5), 0.5, 2)
    assert measured.median() == pytest.approx(1.5)
    assert measured.worst() is None and measured.per_fault() == 0
