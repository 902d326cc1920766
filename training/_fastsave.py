"""Keras's own checkpoint files, written without Keras's walk over the model on every save.

model.save_weights and model.save walk the whole model on every call (dir() of each layer,
the optimizer, their attributes): about 20 ms and 35 ms for the digits CNN, most of what an
epoch's checkpoint cost. What the walk finds, which variable goes under which HDF5 group and
key, does not change during fit(): Layout records it once, with Keras's own walk and a store
that records instead of writing. A save is then an HDF5 file image of the variables' values
laid out like Keras's H5IOStore (Layout.weights_h5), and a .keras file is the stored zip that
model.save writes: metadata.json, config.json and that same weights file (keras_zip).

This mirrors Keras internals (keras.src.saving.saving_lib), so Saver trusts nothing unchecked:
the first file of each kind in a fit() is compared with the one Keras writes itself at the
same moment (differences), and on any difference or error it uses Keras's own saves for the
rest of that fit(). Keras's own load_weights and load_model read either.
"""

from __future__ import annotations

import datetime
import io
import itertools
import json
import os
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

_IMAGES = itertools.count()
_WEIGHTS_MEMBER = "model.weights.h5"  # the members of a .keras zip, in Keras's order
_MEMBERS = ("metadata.json", "config.json", _WEIGHTS_MEMBER)


class Layout:
    """Keras's .weights.h5 of one model: (path, metadata, keys) per store entry, in Keras's
    order, and the variables whose values go under those keys, in the same order.

    The HDF5 file is built in memory on the first save, like H5IOStore builds it; later saves
    only write the new values into its datasets (the variables keep their shapes in fit())."""

    def __init__(
        self,
        entries: tuple[tuple[str, dict[str, Any] | None, tuple[str, ...]], ...],
        variables: tuple[Any, ...],
    ) -> None:
        self.entries = entries
        self.variables = variables
        self._h5: Any = None
        self._datasets: list[Any] = []

    def weights_h5(self) -> bytes:
        """The bytes model.save_weights would write now (an in-memory HDF5 file image)."""
        import h5py
        import numpy as np
        from keras import ops

        values = [ops.convert_to_numpy(variable) for variable in self.variables]
        if self._h5 is None:
            self._build(values)
        else:  # the low-level write: dataset[...] = value costs ten times as much
            for dataset, value in zip(self._datasets, values, strict=True):
                dataset.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(value))
        self._h5.flush()
        return bytes(self._h5.id.get_file_image())

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5, self._datasets = None, []

    def _build(self, values: list[Any]) -> None:
        """The groups, attributes and datasets, made like H5IOStore makes them."""
        import h5py
        from keras import backend

        name = f"tweakops-{os.getpid()}-{next(_IMAGES)}.weights.h5"  # never on disk
        self._h5 = h5py.File(name, "w", driver="core", backing_store=False)
        remaining = iter(values)
        for path, metadata, keys in self.entries:
            group = _vars_group(self._h5, path, metadata) if metadata else None
            for key in keys:
                group = group if group is not None else _vars_group(self._h5, path, None)
                value = next(remaining)
                dataset = group.create_dataset(key, data=value)
                if backend.standardize_dtype(value.dtype) == "bfloat16":
                    dataset.attrs["dtype"] = "bfloat16"
                self._datasets.append(dataset)


def record(model: Any) -> Layout:
    """The layout of `model`'s weights file, found by Keras's own walk (saving_lib._save_state)
    with a store that records; ValueError when a value saved is not one of its variables."""
    from keras.src.saving import saving_lib

    store = _recorder_class()()
    saving_lib._save_state(model, store, None, "", set())
    entries, variables = [], []
    for path, metadata, items in store.made:
        entries.append((path, metadata, tuple(key for key, _ in items)))
        variables += _variables_of(model, metadata, [value for _, value in items])
    return Layout(tuple(entries), tuple(variables))


def _variables_of(model: Any, metadata: dict[str, Any] | None, values: list[Any]) -> list[Any]:
    """The variables that `values`, saved by one saveable, come from. Layers save their
    variables; the TensorFlow optimizer saves `variable.numpy()` of each of its variables,
    in order: those are matched to the optimizer's variables by name, count and value."""
    import keras

    if all(isinstance(value, keras.Variable) for value in values):
        return values
    name = (metadata or {}).get("name")
    optimizer = getattr(model, "optimizer", None)
    for owner in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        if owner is None or owner.name != name or len(owner.variables) != len(values):
            continue
        own = list(owner.variables)
        pairs = zip(own, values, strict=True)
        if all(_same(keras.ops.convert_to_numpy(v), value) for v, value in pairs):
            return own
    raise ValueError(f"{name or 'a saveable'} saves values that are not its variables")


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    return bool(a.shape == np.shape(b) and a.tobytes() == np.asarray(b, a.dtype).tobytes())


def keras_zip(config_json: str, weights: bytes) -> bytes:
    """A .keras file as model.save writes it (a stored zip), around `weights`."""
    import keras

    when = datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")
    metadata = json.dumps({"keras_version": keras.__version__, "date_saved": when})
    buffer = io.BytesIO()
    contents: tuple[str | bytes, ...] = (metadata, config_json, weights)
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in zip(_MEMBERS, contents, strict=True):
            archive.writestr(member, data)
    return buffer.getvalue()


def model_config_json(model: Any) -> str:
    """config.json of model.save (the model and its compile config), made by Keras."""
    from keras.src.saving import saving_lib

    return str(saving_lib._serialize_model_as_json(model)[0])


def differences(ours: bytes, theirs: bytes, kind: str) -> str | None:
    """What differs between two weights files (kind "h5") or .keras files ("keras"); None
    when they hold the same groups, attributes, datasets and values (and zip members)."""
    if kind == "h5":
        return None if _h5_items(ours) == _h5_items(theirs) else "the weights files differ"
    with zipfile.ZipFile(io.BytesIO(ours)) as a, zipfile.ZipFile(io.BytesIO(theirs)) as b:
        if a.namelist() != b.namelist():
            return f"the .keras members differ: {a.namelist()} != {b.namelist()}"
        if json.loads(a.read("config.json")) != json.loads(b.read("config.json")):
            return "the .keras config.json differs"
        if set(json.loads(a.read("metadata.json"))) != set(json.loads(b.read("metadata.json"))):
            return "the .keras metadata.json differs"
        return differences(a.read(_WEIGHTS_MEMBER), b.read(_WEIGHTS_MEMBER), "h5")


class Saver:
    """Keras's files of one model during one fit(): fast once checked against Keras's own."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._layout: Layout | None = None
        self._config: str | None = None
        self._checked: set[str] = set()
        self._off: set[str] = set()

    def save_weights(self, path: Path) -> bytes:
        """Write the weights file to `path`, as model.save_weights would; return its bytes."""
        if "h5" not in self._off:
            try:
                if self._layout is None:
                    self._layout = record(self.model)
                return self._write(path, self._layout.weights_h5(), "h5")
            except Exception as exc:  # Keras changed: its own save from now on
                self._turn_off("h5", exc)
        self.model.save_weights(str(path), overwrite=True)
        return path.read_bytes()

    def save_keras(self, path: Path, weights: bytes) -> None:
        """Write the .keras file to `path` around `weights` (this moment's save_weights
        bytes), as model.save would."""
        if "keras" not in self._off and "h5" not in self._off:
            try:
                if self._config is None:
                    self._config = model_config_json(self.model)
                self._write(path, keras_zip(self._config, weights), "keras")
                return
            except Exception as exc:
                self._turn_off("keras", exc)
        self.model.save(str(path), overwrite=True)

    def close(self) -> None:
        """Free the in-memory weights file (the next fit() has a Saver of its own)."""
        if self._layout is not None:
            self._layout.close()

    def _write(self, path: Path, data: bytes, kind: str) -> bytes:
        """Write `data` to `path`; the first time, let Keras write its own file there and
        compare (a difference turns this kind off); return what is in the file."""
        if kind in self._checked:
            with path.open("wb") as handle:
                handle.write(data)
            return data
        if kind == "h5":
            self.model.save_weights(str(path), overwrite=True)
        else:
            self.model.save(str(path), overwrite=True)
        theirs = path.read_bytes()
        why = differences(data, theirs, kind)
        if why is None:
            self._checked.add(kind)
        else:
            self._turn_off(kind, ValueError(why))
        return theirs

    def _turn_off(self, kind: str, error: Exception) -> None:
        self._off.add(kind)
        print(
            f"tweakops: Keras's own {'save_weights' if kind == 'h5' else 'save'} is used for "
            f"this fit() ({type(error).__name__}: {error})",
            file=sys.stderr,
        )


def _vars_group(h5: Any, path: str, metadata: dict[str, Any] | None) -> Any:
    """The `vars` group of an entry, made like H5IOStore._create_h5_group."""
    group = h5.create_group("vars") if not path else h5.create_group(path).create_group("vars")
    for key, value in (metadata or {}).items():
        group.attrs[key] = value
    return group


def _h5_items(data: bytes) -> dict[str, Any]:
    """Every group and dataset of an HDF5 file image: attributes, shape, dtype, bytes."""
    import h5py

    items: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        attrs = {key: repr(value) for key, value in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            items[name] = (attrs, obj.shape, str(obj.dtype), obj[()].tobytes())
        else:
            items[name] = (attrs,)

    with h5py.File(io.BytesIO(data), "r") as h5:
        items[""] = ({key: repr(value) for key, value in h5.attrs.items()},)
        h5.visititems(visit)
    return items


@cache
def _recorder_class() -> type:
    """An H5IOStore (what _save_state accepts) that records what it is given, writes nothing."""
    from keras.src.saving import saving_lib

    class Recorder(saving_lib.H5IOStore):
        def __init__(self) -> None:  # no file: nothing of H5IOStore's own state is used
            self.made: list[tuple[str, dict[str, Any] | None, list[tuple[str, Any]]]] = []

        def __bool__(self) -> bool:
            return True

        def make(self, path: str, metadata: dict[str, Any] | None = None) -> Any:
            entry = _Entry()
            self.made.append((path, dict(metadata) if metadata else None, entry.items))
            return entry

        def close(self) -> None:
            return None

    return Recorder


class _Entry:
    """The store entry a saveable's save_own_variables writes `store[key] = variable` to."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.items.append((str(key), value))
