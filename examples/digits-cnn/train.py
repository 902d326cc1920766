"""Keras CNN on scikit-learn's 8x8 digits; writes accuracy.txt. Run by hand: python train.py"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import training

EPOCHS = training.param("epochs", 5)
LEARNING_RATE = training.param("learning_rate", 0.003)
BATCH_SIZE = training.param("batch_size", 64)
CONV_BLOCKS = training.param("conv_blocks", 1)
FILTERS = training.param("filters", 8)
KERNEL_SIZE = training.param("kernel_size", 3)
DENSE_UNITS = training.param("dense_units", 32)
DROPOUT = training.param("dropout", 0.0)
OPTIMIZER = training.param("optimizer", "adam")
SEED = training.param("seed", 0)

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed split: 75% train, 25% test, images (8, 8, 1) scaled to [0, 1]."""
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    return train_test_split(images, digits.target, test_size=0.25, random_state=0)


def build_model() -> keras.Model:
    """conv_blocks x (Conv2D + MaxPooling2D), then Dense + Dropout + softmax."""
    if not 1 <= CONV_BLOCKS <= 3:
        raise ValueError(f"conv_blocks must be 1, 2 or 3 (8x8 images), got {CONV_BLOCKS}")
    if OPTIMIZER not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {OPTIMIZER!r}")
    model = keras.Sequential([keras.Input(shape=(8, 8, 1))])
    for block in range(CONV_BLOCKS):
        model.add(
            keras.layers.Conv2D(FILTERS * 2**block, KERNEL_SIZE, padding="same", activation="relu")
        )
        model.add(keras.layers.MaxPooling2D(2))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(DENSE_UNITS, activation="relu"))
    model.add(keras.layers.Dropout(DROPOUT))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=OPTIMIZERS[OPTIMIZER](learning_rate=LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    keras.utils.set_random_seed(SEED)
    x_train, x_test, y_train, y_test = load_data()
    model = build_model()
    model.fit(
        x_train,
        y_train,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        validation_split=0.1,
        callbacks=training.keras_callbacks(),  # checkpoints every epoch, resumes after a kill
        verbose=2,
    )
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {test_accuracy:.4f}")
    training.write_metric(test_accuracy)


if __name__ == "__main__":
    main()
