"""Helpers a user's training script calls inside a trial, and the host's readers of its output.

TensorFlow and Keras are imported only by keras_callbacks() and keras_cnn(): `import training`
is fast.
"""

from training._architecture import CNN_DEFAULTS, cnn_knobs, keras_cnn
from training._keras import keras_callbacks
from training._params import USED_FILE as PARAMS_USED_FILE
from training._params import param, params
from training._paths import checkpoint_dir, output_dir, write_metric
from training._sklearn import SklearnCheckpoint
from training.epochs import log_epoch, read_epochs
from training.metric import read_metric

__all__ = [
    "CNN_DEFAULTS",
    "PARAMS_USED_FILE",
    "SklearnCheckpoint",
    "checkpoint_dir",
    "cnn_knobs",
    "keras_callbacks",
    "keras_cnn",
    "log_epoch",
    "output_dir",
    "param",
    "params",
    "read_epochs",
    "read_metric",
    "write_metric",
]
