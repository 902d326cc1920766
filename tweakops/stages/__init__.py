"""The six stages; each takes a RunContext and returns a frozen result the store keeps."""

from tweakops.stages.inspect import inspect
from tweakops.stages.notify import notify
from tweakops.stages.pull import pull
from tweakops.stages.train import train
from tweakops.stages.tune import tune
from tweakops.stages.watch import watch

__all__ = ["inspect", "notify", "pull", "train", "tune", "watch"]
