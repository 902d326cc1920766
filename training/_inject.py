"""Checkpoints and epoch records for Keras code that never heard of tweakops.

install_keras_checkpoints() wraps keras.Model.fit the way MLflow's autolog does: each call
gets a BackupAndRestore (resume after a kill) and an epoch logger (pruning, the report)
added to the user's own callbacks, which all stay. A call that already has a
BackupAndRestore keeps its own. If anything about the wrapping fails, the original fit()
runs untouched and one warning says that this trial cannot resume: an injection never
breaks training.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from training._keras import BACKUP, _callback_classes
from training._paths import checkpoint_dir

WARNING = "tweakops: automatic checkpoints are off for this fit() ({reason}); it will not resume"


def install_keras_checkpoints() -> str | None:
    """Wrap keras.Model.fit; None when done, else why not (Keras missing, a Keras 2 model)."""
    try:
        import keras

        classes = _callback_classes()
        original = keras.Model.fit
        signature = inspect.signature(original)
    except Exception as exc:  # the trial runs on without resume, never fails for this
        return f"{type(exc).__name__}: {exc}"
    if getattr(original, "__tweakops_wrapped__", False):
        return None
    keras.Model.fit = _wrap(original, signature, classes, keras.callbacks.BackupAndRestore)
    return None


def _wrap(
    original: Callable[..., Any], signature: inspect.Signature, classes: Any, backup_type: type
) -> Callable[..., Any]:
    """The fit() that adds our callbacks; `calls` counts fits so each has its own backup."""
    done: list[int] = []  # epochs asked of earlier fit() calls, for the epoch numbering

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs)
            callbacks = list(bound.arguments.get("callbacks") or [])
            ours: list[Any] = []
            if not any(isinstance(c, backup_type) for c in callbacks):
                name = BACKUP if not done else f"{BACKUP}-{len(done) + 1}"
                ours.append(classes.Backup(backup_dir=str(checkpoint_dir() / name)))
            if not any(isinstance(c, classes.EpochLogger) for c in callbacks):
                ours.append(classes.EpochLogger(offset=sum(done)))
            bound.arguments["callbacks"] = callbacks + ours
            epochs = bound.arguments.get("epochs", signature.parameters["epochs"].default)
            done.append(int(epochs))
            call_args, call_kwargs = bound.args[1:], bound.kwargs
        except Exception as exc:
            print(WARNING.format(reason=f"{type(exc).__name__}: {exc}"), file=sys.stderr)
            return original(self, *args, **kwargs)
        return original(self, *call_args, **call_kwargs)

    fit.__tweakops_wrapped__ = True  # type: ignore[attr-defined]
    return fit
