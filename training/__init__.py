"""Helpers a user's training script calls inside a trial, and the host's readers of its output.

TensorFlow/Keras are imported only by keras_callbacks(), so `import training` is fast.
"""

from training._keras import keras_callbacks
from training._params import param, params
from training._paths import checkpoint_dir, output_dir, write_metric
from training._sklearn import SklearnCheckpoint
from training.epochs import log_epoch, read_epochs
from training.metric import read_metric

__all__ = [
    "SklearnCheckpoint",
    "checkpoint_dir",
    "keras_callbacks",
    "log_epoch",
    "output_dir",
    "param",
    "params",
    "read_epochs",
    "read_metric",
    "write_metric",
]
