"""MLP on scikit-learn's iris, one partial_fit per epoch, checkpointed; writes accuracy.txt."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import training

EPOCHS = training.param("epochs", 20)
LEARNING_RATE = training.param("learning_rate", 0.003)
HIDDEN_UNITS = training.param("hidden_units", 4)
ALPHA = training.param("alpha", 0.0001)
BATCH_SIZE = training.param("batch_size", 16)
SEED = training.param("seed", 0)
# Seconds to sleep per epoch: simulates long training for fault-injection tests (kill, resume).
EPOCH_SECONDS = training.param("epoch_seconds", 0.0)


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed stratified split: 70% train, 30% test."""
    iris = load_iris()
    return train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=0, stratify=iris.target
    )


def new_state(x_train: np.ndarray) -> dict[str, Any]:
    """A fresh scaler (fitted on the training split) and an untrained MLP."""
    model = MLPClassifier(
        hidden_layer_sizes=(HIDDEN_UNITS,),
        learning_rate_init=LEARNING_RATE,
        alpha=ALPHA,
        batch_size=BATCH_SIZE,
        random_state=SEED,
    )
    return {"scaler": StandardScaler().fit(x_train), "model": model}


def main() -> None:
    x_train, x_test, y_train, y_test = load_data()
    checkpoints = training.SklearnCheckpoint()
    restored = checkpoints.load()
    state, done = restored if restored is not None else (new_state(x_train), 0)
    if done:
        print(f"resuming after epoch {done} from {checkpoints.directory}")
    scaler, model = state["scaler"], state["model"]
    train, test = scaler.transform(x_train), scaler.transform(x_test)
    for epoch in range(done + 1, EPOCHS + 1):
        model.partial_fit(train, y_train, classes=np.unique(y_train))
        time.sleep(EPOCH_SECONDS)
        train_accuracy = model.score(train, y_train)
        checkpoints.save(state, epoch)
        training.log_epoch(epoch, loss=model.loss_, accuracy=train_accuracy)
        print(f"epoch {epoch}/{EPOCHS} loss {model.loss_:.4f} accuracy {train_accuracy:.4f}")
    test_accuracy = model.score(test, y_test)
    print(f"test accuracy: {test_accuracy:.4f}")
    training.write_metric(test_accuracy)


if __name__ == "__main__":
    main()
