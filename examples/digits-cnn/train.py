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
BATCH_SIZE = training.param("batch_size", 64)
SEED = training.param("seed", 0)
# Architecture and optimizer (conv_blocks, filters, kernel_size, dense_units, dropout,
# optimizer, learning_rate) are params too: training.keras_cnn reads them.


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed split: 75% train, 25% test, images (8, 8, 1) scaled to [0, 1]."""
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    return train_test_split(images, digits.target, test_size=0.25, random_state=0)


def main() -> None:
    keras.utils.set_random_seed(SEED)
    x_train, x_test, y_train, y_test = load_data()
    model = training.keras_cnn(input_shape=(8, 8, 1), classes=10)
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
