from pathlib import Path

import pytest

from tweakops.errors import StoreError
from tweakops.files import atomic_write
from tweakops.records import STAGES, TrialRecord
from tweakops.store import RunStore


def test_a_new_run_has_a_folder_and_six_pending_stages(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create_run("/src/repo", {"threshold": "0.95"})
    assert store.run_dir(run.id).is_dir()
    assert [s.name for s in store.stages(run.id)] == list(STAGES)
    assert {s.status for s in store.stages(run.id)} == {"pending"}
    assert store.get_run(run.id).overrides == {"threshold": "0.95"}


def test_two_runs_never_share_a_folder(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first, second = store.create_run("a"), store.create_run("a")
    assert first.id != second.id
    assert store.run_dir(first.id) != store.run_dir(second.id)


def test_latest_run_of_a_source_and_a_clear_error_when_none(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.create_run("a")
    b = store.create_run("b")
    assert store.latest_run().id == b.id
    assert store.latest_run("a").source == "a"
    with pytest.raises(StoreError, match=r"no run of c in .*tweakops run SOURCE"):
        store.latest_run("c")
    with pytest.raises(StoreError, match=r"no run .nope."):
        store.get_run("nope")


def test_trials_stages_and_events_round_trip_through_a_new_store(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create_run("a")
    store = RunStore(tmp_path)
    store.save_trial(TrialRecord(run.id, 0, {"lr": 0.1}, "succeeded", accuracy=0.9))
    store.set_stage(run.id, "train", status="succeeded", result={"summary": "ok"})
    store.add_event(run.id, "trial_restarted", "trial 0 restarted", resumed_from_epoch=3)
    again = RunStore(tmp_path)
    assert again.trials(run.id)[0].params == {"lr": 0.1}
    assert again.get_stage(run.id, "train").result == {"summary": "ok"}
    assert again.events(run.id, "trial_restarted")[0].data == {"resumed_from_epoch": 3}


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "sub" / "accuracy.txt", "0.9\n")
    atomic_write(target, "0.95\n")
    assert target.read_text() == "0.95\n"
    assert [p.name for p in target.parent.iterdir()] == ["accuracy.txt"]


def test_unwritable_home_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"cannot use the run store .* set TWEAKOPS_HOME"):
        RunStore(blocker / "home")
