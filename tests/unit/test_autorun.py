"""training/autorun.py: a plain script or a notebook run as a trial, exactly as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from training.notebook import cell_code

AUTORUN = Path(__file__).resolve().parents[2] / "training" / "autorun.py"


def autorun(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(AUTORUN), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TWEAKOPS_OUTPUT": str(folder / "output"), **env},
    )


def test_a_script_runs_as_main_with_its_argv_and_its_own_training_module(tmp_path: Path) -> None:
    (tmp_path / "training.py").write_text("WHO = 'the repository'\n")
    (tmp_path / "model.py").write_text(
        "import sys\nimport training\n"
        "if __name__ == '__main__':\n"
        "    print(training.WHO, sys.argv, sys.path[0] == __import__('os').getcwd())\n"
        "    open('accuracy.txt', 'w').write('93.5')\n"
    )
    done = autorun(tmp_path, "model.py", "--fast")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the repository ['model.py', '--fast'] True"
    assert (tmp_path / "accuracy.txt").read_text() == "93.5"


def test_a_notebook_runs_its_code_cells_in_order_without_magics(tmp_path: Path) -> None:
    cells = [
        nbformat.v4.new_markdown_cell("# not code"),
        nbformat.v4.new_code_cell("!pip install pandas\n%matplotlib inline\nx = 40"),
        nbformat.v4.new_code_cell("%%bash\necho not python"),
        nbformat.v4.new_code_cell("%%time\nx += 2\ndisplay(f'x is {x}')"),
        nbformat.v4.new_code_cell("open('accuracy.txt', 'w').write(str(x / 100))"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(tmp_path / "nb.ipynb"))
    done = autorun(tmp_path, "nb.ipynb")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x is 42"
    assert (tmp_path / "accuracy.txt").read_text() == "0.42"


def test_an_error_in_a_cell_names_the_cell_and_fails_the_trial(tmp_path: Path) -> None:
    cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("\nraise ValueError(a)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(tmp_path / "nb.ipynb"))
    done = autorun(tmp_path, "nb.ipynb")
    assert done.returncode == 1
    assert 'File "nb.ipynb#cell2", line 2' in done.stderr
    assert done.stderr.strip().endswith("ValueError: 1")


def test_a_failed_injection_warns_once_and_the_script_still_trains(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "keras.py").write_text("raise ImportError('this keras is broken')\n")
    (tmp_path / "model.py").write_text("open('accuracy.txt', 'w').write('0.7')\n")
    path = os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")])
    done = autorun(tmp_path, "--keras-checkpoints", "model.py", PYTHONPATH=path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        "tweakops: automatic checkpoints are off for this fit() (ImportError: this keras is "
        "broken); it will not resume"
    )
    assert (tmp_path / "accuracy.txt").read_text() == "0.7"


def test_cell_code_keeps_line_numbers_and_drops_non_python_cells() -> None:
    cell = {"cell_type": "code", "source": ["%load_ext x\n", "import os\n", "  !ls\n", "y = 1"]}
    assert cell_code(cell) == "\nimport os\n\ny = 1"
    assert cell_code({"source": "%%writefile a.txt\nhello"}) == ""
    assert cell_code({"source": "%%capture\nprint(1)"}) == "\nprint(1)"
