"""Stage results are stored as JSON and read back as the same dataclasses (tweakops.results)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tweakops.errors import StoreError
from tweakops.pull.git import PullResult
from tweakops.results import Notified, Pulled, Trained, Tuned, read_result, stage_result
from tweakops.store import RunStore

PULLED = Pulled(
    PullResult(
        source="/srv/git/x",
        url="/srv/git/x",
        subdir="",
        ref="main",
        sha="0123456789abcdef",
        branch="main",
        clone_dir="/srv/clones/x",
        previous_sha=None,
        changed_files=("a.py",),
    )
)
TRAINED = Trained(0, 0.81, 0.9, False, "local", None, "train.py", 1.5, 0)
TUNED = Tuned(True, "threshold", "threshold 0.9 reached", 0.9, 2, 0.93, {"lr": 0.1}, 3, "/m")
NOTIFIED = Notified(True, False, "sent to a@b.c", recipients=("a@b.c",), message_id="<m@x>")


@pytest.mark.parametrize(
    ("stage", "result"),
    [("pull", PULLED), ("train", TRAINED), ("tune", TUNED), ("notify", NOTIFIED)],
)
def test_a_stored_result_reads_back_as_its_dataclass(
    tmp_path: Path, stage: Any, result: Any
) -> None:
    store = RunStore(tmp_path / "home")
    run = store.create_run("/srv/git/x")
    payload = {**result.to_dict(), "summary": result.summary()}
    store.set_stage(run.id, stage, status="succeeded", result=payload)
    assert stage_result(store, run.id, stage) == result
    assert read_result(store.get_stage(run.id, stage)) == result
    assert store.get_stage(run.id, stage).summary == result.summary()


def test_a_stage_that_did_not_succeed_says_what_to_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "home")
    run = store.create_run("/srv/git/x")
    with pytest.raises(StoreError, match=f"run `tweakops train --run {run.id}` first"):
        stage_result(store, run.id, "train")
    assert read_result(store.get_stage(run.id, "train")) is None  # nothing stored yet


def test_a_record_that_is_not_whole_reads_as_none(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "home")
    run = store.create_run("/srv/git/x")
    store.set_stage(run.id, "train", status="succeeded", result={"summary": "old", "trial": 0})
    assert read_result(store.get_stage(run.id, "train"), Trained) is None
