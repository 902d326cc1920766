"""tweakops: pull, inspect, train, tune, notify, watch."""

__version__ = "0.1.0"
