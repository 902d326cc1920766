"""The repository's declared dependencies, what the trial imports, and what is left to install."""

from __future__ import annotations

from pathlib import Path

import nbformat

from tweakops.analysis.imports import trace_imports
from tweakops.analysis.requirements import declared_requirements
from tweakops.environment._plan import plan_install


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_requirements_pyproject_environment_and_notebook_pip_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "# data\npandas>=2  # frames\n-r requirements-extra.txt\n"
            "--index-url https://example.org/simple\nnumpy==1.26.4\n",
            "requirements-extra.txt": "tabulate\nold; python_version < '3.8'\n",
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["rich>=13", "pandas"]\n',
            "environment.yml": "dependencies:\n  - python=3.11\n  - pip:\n    - seaborn\n",
        },
    )
    cells = [nbformat.v4.new_code_cell("!pip install -q plotly 'six'\n%pip install -r r.txt")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(tmp_path / "nb.ipynb"))
    found = declared_requirements(tmp_path)
    assert [(r.spec, r.where) for r in found.requirements] == [
        ("tabulate", "requirements-extra.txt:1"),
        ("pandas>=2", "requirements.txt:2"),
        ("numpy==1.26.4", "requirements.txt:5"),
        ("rich>=13", "pyproject.toml:3"),
        ("seaborn", "environment.yml:4"),
        ("plotly", "nb.ipynb#cell1:1"),
        ("six", "nb.ipynb#cell1:1"),
    ]
    assert found.notes == ()


def test_urls_paths_and_bad_lines_are_notes_not_requirements(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "-e .\ngit+https://x.org/a.git\n>>>\nok\n"})
    found = declared_requirements(tmp_path)
    assert [r.spec for r in found.requirements] == ["ok"]
    assert [note.split(" ")[0] for note in found.notes] == [
        "requirements.txt:1",
        "requirements.txt:2",
        "requirements.txt:3",
    ]


def test_the_base_environment_wins_for_what_it_has(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "tensorflow==2.12\nnumpy\npandas\nsklearn\n"})
    declared = declared_requirements(tmp_path).requirements
    have = {"tensorflow-cpu": "2.21.0", "numpy": "2.1.3", "scikit-learn": "1.7.0"}
    plan = plan_install(declared, have)
    assert [d.spec for d in plan.install] == ["pandas"]
    assert plan.provided == (
        "tensorflow-cpu 2.21.0 (requirements.txt:1)",
        "numpy 2.1.3 (requirements.txt:2)",
        "scikit-learn 1.7.0 (requirements.txt:4)",
    )
    (note,) = plan.notes
    assert note.startswith("requirements.txt:1 asks for `tensorflow==2.12`; the environment has")


def test_imports_are_followed_through_the_repositorys_own_modules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "train.py": "import os\nimport pandas as pd\nfrom models.cnn import build\n"
            "from . import nothing\n",
            "models/__init__.py": "",
            "models/cnn.py": "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
            "from .layers import block\nimport keras\n",
            "models/layers.py": "def block():\n    import seaborn\n",
            "unused.py": "import torch\n",
        },
    )
    traced = trace_imports(tmp_path, "train.py")
    assert traced.files == ("train.py", "models/__init__.py", "models/cnn.py", "models/layers.py")
    assert [f"{s.module} {s}" for s in traced.imports] == [
        "pandas train.py:2",
        "keras models/cnn.py:6",
        "seaborn models/layers.py:2",
    ]
