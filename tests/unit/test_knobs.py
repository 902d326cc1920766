"""Knobs: tunable literals found with ast, their ranges, and the rewrite of a trial's copy."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from tuning.space import parse_space
from tweakops.analysis.code_units import read_units
from tweakops.errors import InspectError
from tweakops.knobs import Knob, apply_knobs, infer_knobs, space_yaml

KERAS = """\
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

EPOCHS = 3
model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(8, (3, 3), activation="relu"),
    layers.Dropout(0.25),
    layers.Flatten(),
    layers.Dense(16, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(np.zeros((4, 8, 8, 1)), np.zeros(4), epochs=EPOCHS, batch_size=32)
"""
SKLEARN = """\
import sys
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

forest = RandomForestClassifier(
    n_jobs=-1,
)
knn = KNeighborsClassifier(n_neighbors=1)
svm = SVC(C=10, **{"probability": True})
print(sys.argv)
"""


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def by_name(knobs: tuple[Knob, ...]) -> dict[str, Knob]:
    return {knob.name: knob for knob in knobs}


def in_range(knob: Knob, value: Any) -> bool:
    spec = knob.spec
    if spec.type == "categorical":
        return value in spec.choices
    assert spec.low is not None and spec.high is not None
    return spec.low <= value <= spec.high


def test_keras_knobs_with_their_place_default_and_a_range_holding_the_default(
    tmp_path: Path,
) -> None:
    knobs = by_name(infer_knobs(repo(tmp_path, {"model.py": KERAS}), ["model.py"]))
    expected = {
        "conv2d_filters": ("model.py:8", 8),
        "conv2d_kernel_size": ("model.py:8", 3),
        "dropout_rate": ("model.py:9", 0.25),
        "dense_units": ("model.py:11", 16),
        "optimizer": ("model.py:14", "adam"),
        "learning_rate": ("model.py:14", 0.001),
        "epochs": ("model.py:5", 3),  # EPOCHS = 3, the literal fit() reads
        "batch_size": ("model.py:15", 32),
    }
    assert {name: (k.site.where, k.default) for name, k in knobs.items()} == expected
    assert all(in_range(k, k.default) for k in knobs.values())
    assert knobs["epochs"].spec.to_dict() == {"type": "int", "low": 3, "high": 12}


def test_the_output_layer_is_not_a_knob(tmp_path: Path) -> None:
    code = KERAS.replace('layers.Dense(10, activation="softmax")', "layers.Dense(10)")
    knobs = infer_knobs(repo(tmp_path, {"model.py": code}), ["model.py"])
    dense = [k for k in knobs if k.what == "Dense units"]
    assert [k.default for k in dense] == [16]  # the last Dense sets the output shape


def test_sklearn_arguments_written_or_left_at_their_default(tmp_path: Path) -> None:
    knobs = by_name(infer_knobs(repo(tmp_path, {"fit.py": SKLEARN}), ["fit.py"]))
    assert knobs["knn_n_neighbors"].default == 1
    assert knobs["knn_n_neighbors"].site.form == "value"
    assert knobs["random_forest_n_estimators"].default == 100  # scikit-learn's default
    assert knobs["random_forest_n_estimators"].site.form == "keyword"
    assert knobs["random_forest_max_depth"].spec.choices[0] is None
    assert not [name for name in knobs if name.startswith("svc_")]  # **kwargs: left alone


def test_a_name_found_twice_is_numbered_and_a_file_without_the_framework_has_none(
    tmp_path: Path,
) -> None:
    two = "from sklearn.svm import SVC\na = SVC(C=1.0)\nb = SVC(C=2.0)\n"
    names = [k.name for k in infer_knobs(repo(tmp_path, {"two.py": two}), ["two.py"])]
    assert "svc_C_1" in names and "svc_C_2" in names
    plain = "Dense = dict\nx = Dense(units=4)\nfit = print\n"
    assert infer_knobs(repo(tmp_path, {"plain.py": plain}), ["plain.py"]) == ()


def test_a_constant_passed_to_two_calls_is_one_knob(tmp_path: Path) -> None:
    code = KERAS.replace("EPOCHS = 3", "EPOCHS = 3\nUNITS = 16").replace("Dense(16", "Dense(UNITS")
    code = code.replace("Conv2D(8,", "Conv2D(UNITS,")
    knobs = infer_knobs(repo(tmp_path, {"model.py": code}), ["model.py"])
    shared = [k for k in knobs if k.site.where == "model.py:6"]
    assert [(k.name, k.default) for k in shared] == [("conv2d_filters", 16)]


def test_every_knob_rewrites_to_code_that_parses_and_holds_the_values(tmp_path: Path) -> None:
    source = repo(tmp_path / "repo", {"model.py": KERAS, "fit.py": SKLEARN})
    knobs = infer_knobs(source, ["model.py", "fit.py"])
    params = {k.name: _far_value(k) for k in knobs}
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    diff = apply_knobs(copy, knobs, params)
    for name in ("model.py", "fit.py"):
        ast.parse((copy / name).read_text())
        assert (source / name).read_text() in (KERAS, SKLEARN)  # the original is untouched
    model = (copy / "model.py").read_text()
    assert "EPOCHS = 12" in model and "batch_size=64" in model
    assert "layers.Conv2D(32, (5, 5)" in model
    assert "optimizer={'class_name': 'rmsprop', 'config': {'learning_rate': 0.01}}" in model
    fit = (copy / "fit.py").read_text()
    assert "n_jobs=-1, n_estimators=400, max_depth=32, min_samples_leaf=20" in fit
    assert "KNeighborsClassifier(n_neighbors=30, weights='distance', p=1)" in fit
    assert diff.startswith("--- a/fit.py\n+++ b/fit.py\n")
    assert "-EPOCHS = 3\n+EPOCHS = 12\n" in diff


def test_only_the_knobs_a_trial_names_change(tmp_path: Path) -> None:
    source = repo(tmp_path / "repo", {"model.py": KERAS})
    knobs = infer_knobs(source, ["model.py"])
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    diff = apply_knobs(copy, knobs, {"dense_units": 48, "learning_rate": 0.004})
    text = (copy / "model.py").read_text()
    assert "layers.Dense(48, " in text
    assert "optimizer={'class_name': 'adam', 'config': {'learning_rate': 0.004}}" in text
    assert diff.count("\n-") == 2 and apply_knobs(copy, knobs, {}) == ""


def test_a_copy_that_differs_from_what_inspect_read_is_refused(tmp_path: Path) -> None:
    source = repo(tmp_path, {"model.py": KERAS})
    knobs = infer_knobs(source, ["model.py"])
    (source / "model.py").write_text(KERAS.replace("Dense(16", "Dense(17"))
    with pytest.raises(InspectError, match=r"model.py:11 is not what inspect read.*'16'"):
        apply_knobs(source, knobs, {"dense_units": 32})


def test_notebook_cells_are_rewritten_in_the_notebook_and_diffed_per_cell(tmp_path: Path) -> None:
    cells = ["%matplotlib inline\nfrom keras import layers", KERAS.split("\n", 3)[3]]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(notebook, str(tmp_path / "nb.ipynb"))
    knobs = by_name(infer_knobs(tmp_path, ["nb.ipynb"]))
    assert knobs["dense_units"].site.where == "nb.ipynb#cell2:8"
    diff = apply_knobs(tmp_path, tuple(knobs.values()), {"dense_units": 64})
    assert diff.startswith("--- a/nb.ipynb#cell2\n+++ b/nb.ipynb#cell2\n")
    (cell1, cell2) = read_units(tmp_path, "nb.ipynb")
    assert cell1.text == cells[0] and "layers.Dense(64, " in cell2.text
    assert nbformat.read(str(tmp_path / "nb.ipynb"), as_version=4).cells[1].source == cell2.text


def test_the_printed_search_space_pastes_into_tweakops_yaml(tmp_path: Path) -> None:
    knobs = infer_knobs(
        repo(tmp_path, {"model.py": KERAS, "fit.py": SKLEARN}), ["model.py", "fit.py"]
    )
    block = space_yaml(knobs)
    assert "  dense_units: {type: int, low: 8, high: 64, log: true}" in block
    assert "# model.py:11 Dense units, written 16" in block
    parsed = parse_space(yaml.safe_load(block)["search_space"])
    assert parsed == tuple(k.spec for k in knobs)


def _far_value(knob: Knob) -> Any:
    """The highest value of the knob's range (the last choice)."""
    spec = knob.spec
    if spec.type == "categorical":
        return spec.choices[-1]
    assert spec.high is not None
    return int(spec.high) if spec.type == "int" else spec.high
