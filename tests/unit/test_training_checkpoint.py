"""SklearnCheckpoint, params()/param(), log_epoch()/read_epochs(): the trial-side helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import training._params
from training import (
    CNN_DEFAULTS,
    SklearnCheckpoint,
    checkpoint_dir,
    cnn_knobs,
    log_epoch,
    output_dir,
    param,
    params,
    read_epochs,
)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- SklearnCheckpoint -------------------------------------------------------------------


def test_checkpoint_round_trips_an_object_and_its_step(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    path = ckpt.save({"weights": [1, 2, 3]}, 7)
    assert path == tmp_path / "ckpt-000007.joblib"
    sidecar = json.loads((tmp_path / "ckpt-000007.json").read_text())
    assert sidecar["step"] == 7 and sidecar["file"] == "ckpt-000007.joblib"
    assert len(sidecar["sha256"]) == 64
    fresh = SklearnCheckpoint(tmp_path)  # a restarted process builds a new instance
    assert fresh.load() == ({"weights": [1, 2, 3]}, 7)
    assert fresh.latest_step() == 7


def test_empty_directory_loads_none(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path / "new")
    assert ckpt.load() is None
    assert ckpt.latest_step() is None


def test_only_the_last_two_checkpoints_are_kept(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    for step in range(1, 6):
        ckpt.save(step * 10, step)
    assert files(tmp_path) == [
        "ckpt-000004.joblib",
        "ckpt-000004.json",
        "ckpt-000005.joblib",
        "ckpt-000005.json",
    ]
    assert ckpt.load() == (50, 5)


def test_truncated_newest_falls_back_to_the_previous_good_one(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save(list(range(1000)), 1)
    ckpt.save(list(range(2000)), 2)
    newest = tmp_path / "ckpt-000002.joblib"
    newest.write_bytes(newest.read_bytes()[:100])
    assert SklearnCheckpoint(tmp_path).load() == (list(range(1000)), 1)
    assert SklearnCheckpoint(tmp_path).latest_step() == 1


def test_corrupt_sidecar_falls_back_to_the_previous_good_one(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("one", 1)
    ckpt.save("two", 2)
    (tmp_path / "ckpt-000002.json").write_text('{"step": 2, "sha2')
    assert ckpt.load() == ("one", 1)


def test_payload_without_sidecar_is_ignored(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("one", 1)
    ckpt.save("two", 2)
    (tmp_path / "ckpt-000002.json").unlink()  # killed between the payload and its sidecar
    assert ckpt.load() == ("one", 1)


def test_checksum_that_matches_but_does_not_unpickle_is_skipped(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("one", 1)
    (tmp_path / "ckpt-000002.joblib").write_bytes(b"not a pickle")
    import hashlib

    digest = hashlib.sha256(b"not a pickle").hexdigest()
    sidecar = {"step": 2, "sha256": digest, "file": "ckpt-000002.joblib"}
    (tmp_path / "ckpt-000002.json").write_text(json.dumps(sidecar))
    assert ckpt.latest_step() == 2  # the checksum holds
    assert ckpt.load() == ("one", 1)  # but it does not load


def test_all_checkpoints_corrupt_loads_none(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("one", 1)
    ckpt.save("two", 2)
    for payload in tmp_path.glob("*.joblib"):
        payload.write_bytes(b"")
    assert ckpt.load() is None


def test_saving_keeps_the_previous_good_one_not_a_torn_one(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("one", 1)
    ckpt.save("two", 2)
    (tmp_path / "ckpt-000002.joblib").write_bytes(b"torn")
    ckpt.save("three", 3)
    assert files(tmp_path) == [
        "ckpt-000001.joblib",
        "ckpt-000001.json",
        "ckpt-000003.joblib",
        "ckpt-000003.json",
    ]
    (tmp_path / "ckpt-000003.joblib").write_bytes(b"torn")
    assert ckpt.load() == ("one", 1)


def test_restarting_from_an_earlier_step_drops_later_checkpoints(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    ckpt.save("old", 5)
    ckpt.save("restarted", 1)
    assert ckpt.load() == ("restarted", 1)
    assert files(tmp_path) == ["ckpt-000001.joblib", "ckpt-000001.json"]


def test_stray_temp_files_of_a_killed_save_are_cleaned_up(tmp_path: Path) -> None:
    ckpt = SklearnCheckpoint(tmp_path)
    (tmp_path / ".ckpt-000001.abc123.tmp").write_bytes(b"half")
    ckpt.save("one", 1)
    assert files(tmp_path) == ["ckpt-000001.joblib", "ckpt-000001.json"]


def test_default_directory_is_output_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path / "out"))
    assert SklearnCheckpoint().directory == tmp_path / "out" / "checkpoints"
    assert checkpoint_dir().is_dir()


# --- params / param / output_dir ---------------------------------------------------------


@pytest.fixture
def params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "params.json"
    monkeypatch.setenv("TWEAKOPS_PARAMS", str(path))
    return path


def test_params_are_empty_when_run_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWEAKOPS_PARAMS", raising=False)
    assert params() == {}
    assert param("epochs", 5) == 5


def test_params_are_read_from_the_json_file(params_file: Path) -> None:
    params_file.write_text('{"epochs": 12, "optimizer": "adam", "learning_rate": 0.01}')
    assert params() == {"epochs": 12, "optimizer": "adam", "learning_rate": 0.01}
    assert param("epochs", 5) == 12
    assert param("optimizer", "sgd") == "adam"
    assert param("dropout", 0.25) == 0.25


def test_param_casts_to_the_type_of_its_default(params_file: Path) -> None:
    params_file.write_text(
        json.dumps({"epochs": 12.0, "units": "64", "lr": 1, "shuffle": "false", "bn": 1})
    )
    epochs = param("epochs", 5)
    assert epochs == 12 and type(epochs) is int
    assert param("units", 32) == 64
    lr = param("lr", 0.1)
    assert lr == 1.0 and type(lr) is float
    assert param("shuffle", True) is False
    assert param("bn", False) is True
    assert param("epochs", "x") == "12.0"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("True", True), ("no", False)])
def test_bool_params_accept_true_false_strings(params_file: Path, raw: str, expected: bool) -> None:
    params_file.write_text(json.dumps({"flag": raw}))
    assert param("flag", not expected) is expected


@pytest.mark.parametrize(
    ("value", "default"), [(2.5, 3), ("many", 3), ("maybe", True), ("fast", 0.1), (True, 0.1)]
)
def test_param_that_does_not_fit_its_default_is_a_clear_error(
    params_file: Path, value: object, default: object
) -> None:
    params_file.write_text(json.dumps({"x": value}))
    with pytest.raises(ValueError, match=r"hyperparameter 'x' must be a \w+ like its default"):
        param("x", default)


def test_missing_params_file_is_a_clear_error(params_file: Path) -> None:
    with pytest.raises(ValueError, match=r"TWEAKOPS_PARAMS points at .*params\.json"):
        params()


@pytest.mark.parametrize(("content", "what"), [("{epochs: 3", "not valid JSON"), ("[1]", "list")])
def test_invalid_params_file_is_a_clear_error(params_file: Path, content: str, what: str) -> None:
    params_file.write_text(content)
    with pytest.raises(ValueError, match=what):
        params()


def test_in_a_trial_the_values_param_hands_out_are_written_defaults_included(
    params_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training._params, "_used", {})
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path / "out"))
    params_file.write_text('{"epochs": 12}')
    param("epochs", 5)
    param("optimizer", "adam")
    used = tmp_path / "out" / "params_used.json"
    assert json.loads(used.read_text()) == {"epochs": 12, "optimizer": "adam"}
    cnn_knobs(filters=16)  # the architecture's knobs are params too
    assert json.loads(used.read_text()) == {**CNN_DEFAULTS, "filters": 16, "epochs": 12}


def test_run_by_hand_param_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training._params, "_used", {})
    monkeypatch.delenv("TWEAKOPS_OUTPUT", raising=False)
    monkeypatch.delenv("TWEAKOPS_PARAMS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert param("epochs", 5) == 5
    assert list(tmp_path.iterdir()) == []


def test_output_dir_is_the_env_folder_created_or_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path / "a" / "b"))
    assert output_dir() == tmp_path / "a" / "b" and output_dir().is_dir()
    assert checkpoint_dir() == tmp_path / "a" / "b" / "checkpoints"
    monkeypatch.delenv("TWEAKOPS_OUTPUT")
    monkeypatch.chdir(tmp_path)
    assert output_dir() == tmp_path


# --- log_epoch / read_epochs -------------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path))
    return tmp_path


def test_log_epoch_appends_one_record_per_epoch_and_a_heartbeat(out: Path) -> None:
    log_epoch(1, loss=0.9, accuracy=0.5)
    log_epoch(2, loss=0.4, accuracy=0.8)
    records = read_epochs(out)
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[1]["accuracy"] == 0.8 and records[1]["pid"] == os.getpid()
    assert records[0]["time"] <= records[1]["time"]
    heartbeat = float((out / "heartbeat").read_text())
    assert heartbeat == pytest.approx(records[1]["time"])


def test_log_epoch_stores_numpy_values_as_plain_numbers(out: Path) -> None:
    np = pytest.importorskip("numpy")
    log_epoch(1, loss=np.float32(0.25), accuracy=np.float64(0.75), bad=float("nan"))
    (record,) = read_epochs(out)
    assert record["loss"] == 0.25 and record["accuracy"] == 0.75 and record["bad"] is None


def test_read_epochs_ignores_a_torn_last_line(out: Path) -> None:
    log_epoch(1, loss=0.9)
    log_epoch(2, loss=0.5)
    with (out / "epochs.jsonl").open("a") as handle:
        handle.write('{"epoch": 3, "ti')
    assert [r["epoch"] for r in read_epochs(out)] == [1, 2]


def test_log_epoch_after_a_torn_line_starts_a_clean_line(out: Path) -> None:
    log_epoch(1, loss=0.9)
    with (out / "epochs.jsonl").open("a") as handle:
        handle.write('{"epoch": 2, "lo')
    log_epoch(2, loss=0.5)  # the restarted process redoes epoch 2
    assert [r["epoch"] for r in read_epochs(out)] == [1, 2]
    assert (out / "epochs.jsonl").read_text().count("\n") == 2


def test_read_epochs_without_a_file_is_empty(tmp_path: Path) -> None:
    assert read_epochs(tmp_path) == []
