"""Finding the entrypoint the way a person would, and saying why (analysis/entrypoints.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tweakops.analysis.entrypoints import find_entrypoint
from tweakops.errors import InspectError

WRITES_ACCURACY = 'acc = 0.9\nwith open("accuracy.txt", "w") as f:\n    f.write(str(acc))\n'


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def notebook(path: Path, *sources: str) -> None:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))


def test_configured_then_train_then_main(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "", "train.py": "", "src/run.py": ""})
    configured = find_entrypoint(tmp_path, "./src/run.py")
    assert (configured.path, configured.rule) == ("src/run.py", "entrypoint in tweakops.yaml")
    assert find_entrypoint(tmp_path, None).path == "train.py"
    (tmp_path / "train.py").unlink()
    assert find_entrypoint(tmp_path, None).describe() == "main.py (main.py at the root)"


def test_a_lone_script_without_a_main_block_is_the_entrypoint(tmp_path: Path) -> None:
    write(tmp_path, {"model.py": "import sklearn\nprint('fit')\n", "README.md": "hi"})
    found = find_entrypoint(tmp_path, None)
    assert (found.path, found.rule) == ("model.py", "the only script at the root")


def test_modules_imported_by_another_script_and_setup_files_are_not_candidates(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "Salary_predict.py": "from helpers import load\nload()\n",
            "helpers.py": "def load():\n    return 1\n",
            "setup.py": "",
            "test_helpers.py": "",
        },
    )
    assert find_entrypoint(tmp_path, None).path == "Salary_predict.py"


def test_of_two_scripts_the_one_writing_accuracy_txt_wins_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"prepare.py": "print('data')\n", "classify.py": WRITES_ACCURACY})
    found = find_entrypoint(tmp_path, None)
    assert found.path == "classify.py"
    assert found.rule == "the only script that writes accuracy.txt"
    assert found.evidence.startswith("classify.py:2 open('accuracy.txt', 'w')")


@pytest.mark.parametrize(
    "writer",
    [
        'open(os.path.join(OUT, "accuracy.txt"), mode="w").write("1")',
        'Path("results/accuracy.txt").write_text("0.9")',
        'np.savetxt("accuracy.txt", [0.9])',
        'open(f"{OUT}/accuracy.txt", "a+")',
        "open(METRIC_FILE, 'w')",
        "training.write_metric(0.9)",
    ],
)
def test_metric_writes_are_found_in_their_common_forms(tmp_path: Path, writer: str) -> None:
    code = f'METRIC_FILE = "accuracy.txt"\nOUT = "."\n{writer}\n'
    write(tmp_path, {"a.py": "print(1)\n", "b.py": code})
    assert find_entrypoint(tmp_path, None).path == "b.py"


def test_reading_accuracy_txt_is_not_writing_it(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "open('accuracy.txt').read()\n", "b.py": WRITES_ACCURACY})
    assert find_entrypoint(tmp_path, None).path == "b.py"


def test_the_metric_name_picks_the_file_looked_for(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": WRITES_ACCURACY, "b.py": "open('f1.txt', 'w').write('1')\n"})
    assert find_entrypoint(tmp_path, None, metric="f1").path == "b.py"


def test_two_metric_writers_are_ambiguous_with_evidence_and_the_line_to_add(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"a.py": WRITES_ACCURACY, "b.py": WRITES_ACCURACY})
    pattern = (
        r"no single entrypoint in .*: 2 scripts write accuracy.txt: a.py \(a.py:2 open.*\); "
        r"b.py \(b.py:2 open.*\); add one line to tweakops.yaml, e.g. `entrypoint: a.py`"
    )
    with pytest.raises(InspectError, match=pattern):
        find_entrypoint(tmp_path, None)


def test_with_no_metric_writer_the_only_main_block_wins(tmp_path: Path) -> None:
    main_block = 'if __name__ == "__main__":\n    print("fit")\n'
    write(tmp_path, {"fit_digits.py": main_block, "plot.py": "print(2)\n"})
    found = find_entrypoint(tmp_path, None)
    assert (found.path, found.rule) == ("fit_digits.py", "the only script with a __main__ block")


def test_several_main_blocks_list_the_candidates(tmp_path: Path) -> None:
    main_block = "if '__main__' == __name__:\n    pass\n"
    write(tmp_path, {"a.py": main_block, "b.py": main_block})
    with pytest.raises(InspectError, match=r"2 scripts have a __main__ block \(a.py, b.py\)"):
        find_entrypoint(tmp_path, None)


def test_a_notebook_is_the_entrypoint_when_there_is_no_script(tmp_path: Path) -> None:
    notebook(tmp_path / "digits.ipynb", "%matplotlib inline\nimport keras")
    found = find_entrypoint(tmp_path, None)
    assert (found.path, found.rule) == ("digits.ipynb", "the only notebook at the root")


def test_of_several_notebooks_the_one_writing_the_metric_wins(tmp_path: Path) -> None:
    notebook(tmp_path / "explore.ipynb", "print(1)")
    notebook(tmp_path / "train.ipynb", "!pip install pandas", WRITES_ACCURACY)
    found = find_entrypoint(tmp_path, None)
    assert found.path == "train.ipynb"
    assert found.evidence.startswith("train.ipynb#cell2:2 open(")


def test_a_notebook_importing_the_only_script_makes_the_notebook_the_entrypoint(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"utils.py": "def load():\n    return 1\n"})
    notebook(tmp_path / "model.ipynb", "from utils import load\nload()")
    assert find_entrypoint(tmp_path, None).path == "model.ipynb"


def test_no_entrypoint_lists_root_scripts(tmp_path: Path) -> None:
    write(tmp_path, {"helpers.py": "", "sub/train.py": "", "main_helpers.py": "import helpers\n"})
    (tmp_path / "helpers.py").write_text("import main_helpers\n")
    with pytest.raises(InspectError, match=r"\(.py files at the root: helpers.py, main_help"):
        find_entrypoint(tmp_path, None)


@pytest.mark.parametrize("configured", ["fit.py", "../outside.py", "/etc/hostname"])
def test_configured_entrypoint_must_be_a_file_in_the_repository(
    tmp_path: Path, configured: str
) -> None:
    repo = write(tmp_path / "repo", {"train.py": "", "main.py": ""})
    write(tmp_path, {"outside.py": ""})
    message = rf"entrypoint '{configured}' from tweakops.yaml is not a file in the repository: .*"
    with pytest.raises(InspectError, match=message + "root: main.py, train.py"):
        find_entrypoint(repo, configured)
