"""A notebook as a script: its code cells in order, IPython magics and shell escapes dropped.

The host reads cells this way to inspect a notebook, and a trial runs them this way
(training/autorun.py): the same lines, at the same line numbers, with the same labels
(`model.ipynb#cell3`, numbered among all cells from 1).
"""

from __future__ import annotations

import builtins
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Cell magics whose body is still Python: the first line goes, the rest runs.
PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")


def cell_code(cell: dict[str, Any]) -> str:
    """The cell's Python: magic and `!` lines blanked (line numbers kept); "" for a cell magic
    such as %%bash whose body is not Python."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if lines[0].split()[0] not in PYTHON_CELL_MAGICS:
            return ""
        lines[0] = ""
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)


def code_cells(notebook: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(number among all cells from 1, Python code) of each code cell, in order."""
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            yield number, cell_code(cell)


def cell_label(path: str, number: int) -> str:
    """How a cell is named in evidence, tracebacks and diffs: `model.ipynb#cell3`."""
    return f"{path}#cell{number}"


def _display(*objects: Any, **_: Any) -> None:
    """Jupyter's display() outside Jupyter: print what would be shown."""
    for obj in objects:
        print(obj)


def run_notebook(path: Path) -> None:
    """Run the notebook's code cells in one __main__ namespace, like `Run All`."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    main = types.ModuleType("__main__")  # a fresh __main__, as runpy gives a script
    main.__dict__.update(__builtins__=builtins, display=_display)
    sys.modules["__main__"] = main  # pickle finds classes the cells define
    namespace = main.__dict__
    for number, code in code_cells(notebook):
        if code.strip():
            exec(compile(code, cell_label(str(path), number), "exec"), namespace)
