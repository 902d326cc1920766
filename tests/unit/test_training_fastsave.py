"""training/_fastsave.py: Keras's weights and .keras files written from the variables, the
same as Keras's own at every epoch, and Keras's own saves whenever that cannot be trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training._fastsave import Saver, differences, keras_zip, model_config_json, record

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")


def make_model(extra: Any = None) -> Any:
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=(8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()]
    layers += [keras.layers.BatchNormalization(), keras.layers.Dropout(0.1)]
    layers += [extra] if extra is not None else []
    model = keras.Sequential([*layers, keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 32)


def test_every_epoch_the_files_are_the_ones_keras_writes(tmp_path: Path) -> None:
    model = make_model()
    base: Any = keras.callbacks.Callback
    found: list[tuple[str | None, str | None]] = []

    class Compare(base):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            layout = getattr(self, "layout", None) or record(self.model)
            self.layout = layout
            ours = layout.weights_h5()
            self.model.save_weights(str(tmp_path / "k.weights.h5"))
            theirs = (tmp_path / "k.weights.h5").read_bytes()
            self.model.save(str(tmp_path / "k.keras"))
            zipped = keras_zip(model_config_json(self.model), ours)
            found.append(
                (
                    differences(ours, theirs, "h5"),
                    differences(zipped, (tmp_path / "k.keras").read_bytes(), "keras"),
                )
            )

    model.fit(*data(), epochs=4, validation_split=0.25, callbacks=[Compare()], verbose=0)
    assert found == [(None, None)] * 4
    (tmp_path / "ours.keras").write_bytes(zipped_now(model))
    loaded = keras.models.load_model(tmp_path / "ours.keras")
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def zipped_now(model: Any) -> bytes:
    return keras_zip(model_config_json(model), record(model).weights_h5())


def test_a_changed_file_is_seen(tmp_path: Path) -> None:
    model = make_model()
    model.fit(*data(), epochs=1, verbose=0)
    ours = record(model).weights_h5()
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    model.save_weights(str(tmp_path / "k.weights.h5"))
    assert differences(ours, (tmp_path / "k.weights.h5").read_bytes(), "h5") is not None


class Odd(keras.layers.Layer):  # saves a value that is none of its variables
    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, x: Any) -> Any:
        return x * self.scale

    def save_own_variables(self, store: Any) -> None:
        store["0"] = np.asarray(self.scale) * 2

    def load_own_variables(self, store: Any) -> None:
        self.scale.assign(store["0"] / 2)


def test_a_model_it_cannot_lay_out_is_saved_by_keras(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_model(Odd())
    model.fit(*data(), epochs=1, verbose=0)
    saver = Saver(model)
    for _ in range(2):
        written = saver.save_weights(tmp_path / "a.weights.h5")
    assert written == (tmp_path / "a.weights.h5").read_bytes()
    assert "Keras's own save_weights is used" in capsys.readouterr().err
    model.load_weights(tmp_path / "a.weights.h5")


def test_a_difference_on_the_first_save_turns_the_fast_save_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from training import _fastsave

    model = make_model()
    model.fit(*data(), epochs=1, verbose=0)
    saver = Saver(model)
    monkeypatch.setattr(_fastsave.Layout, "weights_h5", lambda self: b"not hdf5")
    first = saver.save_weights(tmp_path / "a.weights.h5")  # Keras's own, then compared
    second = saver.save_weights(tmp_path / "b.weights.h5")
    assert b"not hdf5" not in (first, second)
    assert "Keras's own save_weights is used" in capsys.readouterr().err
    saver.save_keras(tmp_path / "best.keras", second)  # the .keras too: Keras's own
    keras.models.load_model(tmp_path / "best.keras")
