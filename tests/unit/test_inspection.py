"""Stage 2: reading a repository's code and choosing the image by an ordered list of rules."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tweakops.analysis.inspection import (
    KERAS_IMAGE,
    SKLEARN_IMAGE,
    InspectResult,
    inspect_tree,
)
from tweakops.errors import InspectError

KERAS_SCRIPT = """\
from tensorflow import keras

model = keras.Sequential([
    keras.Input((8, 8, 1)),
    keras.layers.Conv2D(16, 3, activation="relu"),
])
"""
SKLEARN_SCRIPT = """\
import numpy as np
from sklearn.linear_model import LogisticRegression

print(LogisticRegression().fit(np.zeros((2, 2)), [0, 1]))
"""


def write(root: Path, files: dict[str, str]) -> Path:
    """Create FILES under ROOT and return ROOT."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def write_notebook(path: Path, *cells: tuple[str, str]) -> None:
    """Write a notebook whose cells are (kind, source) pairs, kind "code" or "markdown"."""
    new = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    notebook = nbformat.v4.new_notebook(cells=[new[kind](source) for kind, source in cells])
    nbformat.write(notebook, str(path))


def shown(result: InspectResult) -> list[str]:
    """The evidence as people read it in the log."""
    return [str(e) for e in result.evidence]


def test_keras_script_with_conv2d_is_keras_with_file_and_line(tmp_path: Path) -> None:
    result = inspect_tree(write(tmp_path, {"train.py": KERAS_SCRIPT}))
    assert (result.framework, result.image, result.rule) == ("keras", KERAS_IMAGE, "keras evidence")
    assert "train.py:1 from tensorflow import keras" in shown(result)
    assert "train.py:5 Conv2D(...)" in shown(result)
    assert (result.entrypoint, result.files_read) == ("train.py", 1)


def test_conv_layer_without_a_visible_import_is_keras(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "from mylib import *\n\nlayer = layers.DepthwiseConv2D(3)\n"})
    result = inspect_tree(tmp_path)
    assert (result.framework, shown(result)) == ("keras", ["train.py:3 DepthwiseConv2D(...)"])


def test_dense_alone_is_not_keras_but_dense_with_sequential_is(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "import flax.linen as nn\n\nlayer = nn.Dense(3)\n"})
    with pytest.raises(InspectError, match="imports found: flax"):
        inspect_tree(tmp_path)
    write(tmp_path, {"train.py": "m = Sequential()\nm.add(Dense(3))\n"})
    result = inspect_tree(tmp_path)
    assert shown(result) == ["train.py:1 Sequential(...)", "train.py:2 Dense(...)"]


def test_sklearn_script_is_sklearn(tmp_path: Path) -> None:
    result = inspect_tree(write(tmp_path, {"train.py": SKLEARN_SCRIPT}))
    assert (result.framework, result.image, result.rule) == (
        "sklearn",
        SKLEARN_IMAGE,
        "sklearn evidence",
    )
    assert shown(result) == ["train.py:2 from sklearn.linear_model import LogisticRegression"]


def test_notebook_with_magics_gives_cell_evidence(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "nb.ipynb",
        ("markdown", "# Digits"),
        ("code", "%matplotlib inline\n!pip install -q tensorflow\nimport tensorflow as tf"),
        ("code", "x = tf.keras.layers.Conv2D(8, 3)"),
    )
    write(tmp_path, {"train.py": "print('see the notebook')\n"})
    result = inspect_tree(tmp_path)
    assert result.framework == "keras"
    assert shown(result) == ["nb.ipynb#cell2:3 import tensorflow", "nb.ipynb#cell3:1 Conv2D(...)"]
    assert result.skipped == ()


def test_notebook_cell_that_does_not_parse_is_skipped_and_noted(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "nb.ipynb",
        ("code", "import sklearn"),
        ("code", "model.fit?"),
    )
    write(tmp_path, {"train.py": ""})
    result = inspect_tree(tmp_path)
    assert result.framework == "sklearn"
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("nb.ipynb#cell2:1: ")


def test_requirements_alone_are_evidence(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "train.py": "import numpy\n",
            "requirements.txt": "# pinned\nnumpy==1.26\ntensorflow-cpu>=2.16  # cpu only\n",
            "requirements-dev.txt": "-r requirements.txt\nscikit_learn\n",
        },
    )
    result = inspect_tree(tmp_path)
    assert result.framework == "keras"
    assert shown(result) == [
        "requirements.txt:3 requirements: tensorflow-cpu>=2.16",
        "requirements-dev.txt:2 requirements: scikit_learn",
    ]


def test_pyproject_and_setup_py_dependencies_are_evidence(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "x"\ndependencies = [\n  "scikit-learn>=1.3",\n]\n'
    setup = 'from setuptools import setup\n\nsetup(\n    install_requires=[\n        "keras"]\n)\n'
    write(tmp_path, {"pyproject.toml": pyproject, "setup.py": setup, "main.py": ""})
    result = inspect_tree(tmp_path)
    assert shown(result) == [
        "setup.py:5 setup.py: keras",
        "pyproject.toml:4 pyproject: scikit-learn>=1.3",
    ]
    assert (result.framework, result.entrypoint, result.files_read) == ("keras", "main.py", 3)


def test_keras_wins_over_sklearn_and_both_are_kept(tmp_path: Path) -> None:
    split = "from sklearn.model_selection import train_test_split\n"
    write(tmp_path, {"train.py": KERAS_SCRIPT, "data.py": split})
    result = inspect_tree(tmp_path)
    assert (result.framework, result.rule) == ("keras", "keras evidence")
    assert {e.framework for e in result.evidence} == {"keras", "sklearn"}
    assert result.evidence[0].framework == "keras"


def test_dockerfile_at_the_root_picks_it(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": SKLEARN_SCRIPT, "Dockerfile": "FROM python:3.11\n"})
    result = inspect_tree(tmp_path)
    assert (result.image, result.rule, result.framework) == (
        "dockerfile:Dockerfile",
        "Dockerfile in repo",
        "sklearn",
    )


def test_dockerfile_with_no_python_framework_is_custom(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "print 'python 2'\n", "Dockerfile": "FROM python:2\n"})
    assert inspect_tree(tmp_path).framework == "custom"


def test_config_image_overrides_dockerfile_and_evidence(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": KERAS_SCRIPT, "Dockerfile": "FROM x\n"})
    result = inspect_tree(tmp_path, image_override="me/gpu:1")
    assert (result.image, result.rule, result.framework) == ("me/gpu:1", "config image", "keras")
    write(tmp_path, {"train.py": "import torch\n"})
    assert inspect_tree(tmp_path, image_override="me/torch:2").framework == "custom"


def test_no_framework_lists_files_read_and_third_party_imports(tmp_path: Path) -> None:
    code = "import os\nimport torch\nfrom torch import nn\nimport numpy as np\nfrom . import x\n"
    write(tmp_path, {"train.py": code, "util.py": "import pandas\n"})
    with pytest.raises(InspectError) as caught:
        inspect_tree(tmp_path)
    message = str(caught.value)
    assert "read 2 files, imports found: torch, numpy, pandas;" in message
    assert "add `image:` to tweakops.yaml or import tensorflow/keras or scikit-learn" in message
    assert "os" not in message.split("imports found:")[1]


def test_file_with_a_syntax_error_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": SKLEARN_SCRIPT, "broken.py": "def f(:\n"})
    result = inspect_tree(tmp_path)
    assert result.framework == "sklearn"
    assert [s.split(": ")[0] for s in result.skipped] == ["broken.py:1"]


def test_no_file_that_parses_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "import tensorflow\nprint 'old'\n"})
    with pytest.raises(InspectError, match=r"none of the 1 Python files .* parses .*train.py:2"):
        inspect_tree(tmp_path)


def test_virtualenvs_caches_and_vendored_code_are_not_read(tmp_path: Path) -> None:
    keras = "import tensorflow\n"
    write(
        tmp_path,
        {
            "train.py": SKLEARN_SCRIPT,
            ".venv/lib/site-packages/tf.py": keras,
            "myenv/pyvenv.cfg": "home = /usr/bin\n",
            "myenv/lib/tf.py": keras,
            "node_modules/x/tf.py": keras,
            ".ipynb_checkpoints/nb.py": keras,
            "__pycache__/tf.py": keras,
        },
    )
    result = inspect_tree(tmp_path)
    assert (result.framework, result.files_read) == ("sklearn", 1)


def test_result_round_trips_through_json(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": KERAS_SCRIPT, "bad.py": "(\n"})
    result = inspect_tree(tmp_path)
    assert InspectResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_inspect_uses_the_configured_entrypoint(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": KERAS_SCRIPT, "other.py": ""})
    assert inspect_tree(tmp_path, entrypoint="other.py").entrypoint == "other.py"
