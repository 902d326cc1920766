"""keras_callbacks(): resume after an interruption, torn backups, and the best model kept apart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from training import keras_callbacks, read_epochs

# Keras 3.15 with numpy 2 warns about __array__(copy=...) on every batch: not ours.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")


class Interrupt(Exception):
    pass


def make_model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(8), keras.layers.Dense(2, "softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit(epochs: int, stop_at: int | None = None) -> Any:
    """Train a fresh model with fresh callbacks, as a restarted process would."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    callbacks = keras_callbacks()
    if stop_at is not None:
        base: Any = keras.callbacks.Callback

        class Stop(base):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                if epoch + 1 == stop_at:
                    raise Interrupt

        callbacks.append(Stop())
    return make_model().fit(
        x, y, epochs=epochs, validation_split=0.25, callbacks=callbacks, verbose=0
    )


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWEAKOPS_OUTPUT", str(tmp_path))
    return tmp_path


def test_restarted_fit_resumes_after_the_last_finished_epoch(out: Path) -> None:
    with pytest.raises(Interrupt):
        fit(6, stop_at=4)
    assert [r["epoch"] for r in read_epochs(out)] == [1, 2, 3]
    history = fit(6)
    assert len(history.history["loss"]) == 3
    assert [r["epoch"] for r in read_epochs(out)] == [1, 2, 3, 4, 5, 6]
    backup = out / "checkpoints" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 6
    assert (out / "heartbeat").is_file()


def test_stock_keras_cannot_resume_from_a_torn_metadata_file(out: Path) -> None:
    """Why training wraps BackupAndRestore: Keras itself only falls back on OSError."""
    backup = out / "stock"
    stock = keras.callbacks.BackupAndRestore(
        str(backup), double_checkpoint=True, delete_checkpoint=False
    )
    x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int32")
    make_model().fit(x, y, epochs=2, callbacks=[stock], verbose=0)
    (backup / "training_metadata.json").write_text('{"epo')
    with pytest.raises(ValueError):
        make_model().fit(x, y, epochs=3, callbacks=[stock], verbose=0)


@pytest.mark.parametrize("torn", ["training_metadata.json", "latest.weights.h5"])
def test_torn_latest_backup_resumes_from_the_previous_one(out: Path, torn: str) -> None:
    fit(4)
    path = out / "checkpoints" / "backup" / torn
    path.write_bytes(path.read_bytes()[:10])
    history = fit(5)
    assert len(history.history["loss"]) == 2  # epochs 4 and 5: the previous state was epoch 3


def test_unusable_backup_is_moved_aside_and_training_starts_over(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(3)
    backup = out / "checkpoints" / "backup"
    for path in backup.iterdir():
        path.write_bytes(b"")
    history = fit(3)
    assert len(history.history["loss"]) == 3
    assert "is unusable" in capsys.readouterr().err
    assert list((out / "checkpoints").glob("backup.unusable-*"))


def test_best_model_is_kept_apart_and_not_overwritten_by_a_worse_resumed_epoch(out: Path) -> None:
    fit(3)
    folder = out / "checkpoints"
    assert (folder / "best.keras").is_file()
    assert not (folder / "best.partial.keras").exists()
    best = json.loads((folder / "best.json").read_text())
    logged = max(r["val_accuracy"] for r in read_epochs(out))
    assert best["val_accuracy"] == pytest.approx(logged)
    (folder / "best.json").write_text(json.dumps({"epoch": 3, "val_accuracy": 2.0}))
    before = (folder / "best.keras").stat().st_mtime_ns
    fit(5)  # no epoch can beat 2.0: best.keras stays
    assert (folder / "best.keras").stat().st_mtime_ns == before
    keras.models.load_model(folder / "best.keras")


def test_syncs_lag_behind_but_every_logged_epoch_has_its_backup_and_fit_waits_for_them(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync runs in the background (slowed down here): an epoch is logged only once its
    backup is on disk (renamed into place), and fit() returns with every sync done."""
    from training import _durable
    from training._backup import whole

    real_sync = _durable._sync_now
    monkeypatch.setattr(
        _durable, "_sync_now", lambda fds, dirs: (time.sleep(0.2), real_sync(fds, dirs))
    )
    backup = out / "checkpoints" / "backup"
    seen: list[tuple[int, int | None]] = []
    base: Any = keras.callbacks.Callback

    class Check(base):  # after keras_callbacks()' own: sees what they left on disk
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seen.append((max(r["epoch"] for r in read_epochs(out)), whole(backup)))

    x, y = np.zeros((16, 4), "float32"), np.zeros(16, "int32")
    callbacks = [*keras_callbacks(), Check()]
    make_model().fit(x, y, epochs=4, validation_split=0.25, callbacks=callbacks, verbose=0)
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]
    job = _durable.last()
    assert job is not None and job.done()
    assert whole(backup) == 4 and (out / "checkpoints" / "best.keras").is_file()
