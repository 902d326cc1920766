"""A Keras CNN whose architecture is hyperparameters: the knobs tuning may turn.

    model = training.keras_cnn(input_shape=(8, 8, 1), classes=10)

reads conv_blocks, filters, kernel_size, dense_units, dropout, optimizer and learning_rate
from the trial's params (training.param), with the defaults given here or passed in, so
the same script runs by hand, as trial 0 and as any tuned trial. epochs and batch_size
are fit() arguments: read them with training.param in the script.
"""

from __future__ import annotations

from typing import Any

from training._params import param

CNN_DEFAULTS: dict[str, Any] = {
    "conv_blocks": 1,  # Conv2D + MaxPooling2D blocks; filters double with each block
    "filters": 8,
    "kernel_size": 3,
    "dense_units": 32,
    "dropout": 0.0,
    "optimizer": "adam",  # adam | sgd | rmsprop
    "learning_rate": 0.003,
}
OPTIMIZERS = ("adam", "sgd", "rmsprop")


def cnn_knobs(**defaults: Any) -> dict[str, Any]:
    """The architecture knobs of this trial: params over `defaults` over CNN_DEFAULTS."""
    unknown = sorted(set(defaults) - set(CNN_DEFAULTS))
    if unknown:
        raise ValueError(f"keras_cnn has no knob {unknown[0]!r}; knobs: {sorted(CNN_DEFAULTS)}")
    knobs = {name: param(name, defaults.get(name, value)) for name, value in CNN_DEFAULTS.items()}
    if knobs["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {knobs['optimizer']!r}")
    for name in ("conv_blocks", "filters", "kernel_size", "dense_units"):
        if int(knobs[name]) < 1:
            raise ValueError(f"{name} must be 1 or more, got {knobs[name]!r}")
    if not 0 <= float(knobs["dropout"]) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {knobs['dropout']!r}")
    return knobs


def keras_cnn(input_shape: tuple[int, ...], classes: int, **defaults: Any) -> Any:
    """A compiled keras.Sequential: conv blocks, Dense + Dropout, softmax over `classes`.

    Pooling stops once the feature map is 1 pixel wide, so small images (8x8 digits) take
    any number of blocks.
    """
    import keras

    knobs = cnn_knobs(**defaults)
    model = keras.Sequential([keras.Input(shape=input_shape)])
    side = min(input_shape[:2])
    for block in range(int(knobs["conv_blocks"])):
        filters = int(knobs["filters"]) * 2**block
        kernel = int(knobs["kernel_size"])
        model.add(keras.layers.Conv2D(filters, kernel, padding="same", activation="relu"))
        if side >= 2:
            model.add(keras.layers.MaxPooling2D(2))
            side //= 2
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(int(knobs["dense_units"]), activation="relu"))
    model.add(keras.layers.Dropout(float(knobs["dropout"])))
    model.add(keras.layers.Dense(classes, activation="softmax"))
    optimizers = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    model.compile(
        optimizer=optimizers[knobs["optimizer"]](learning_rate=float(knobs["learning_rate"])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
