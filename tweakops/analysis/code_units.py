"""The Python of a repository as units: a .py file, or one code cell of a notebook.

Inspect reads units, the knob finder walks their ast, and a trial's rewrite splices new
values into the same units of its own copy. A unit's line and column numbers are those of
the text as written (a cell's magics are blanked, never removed).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.notebook import cell_code, cell_label

PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)
MAX_CODE_BYTES = 20_000_000  # as inspection.MAX_FILE_BYTES


@dataclass(frozen=True)
class CodeUnit:
    """One file, or one notebook code cell (`cell` is its number among all cells, from 1)."""

    file: str  # repository-relative, posix
    text: str  # as written
    code: str  # what Python runs: the text, magics blanked for a cell
    cell: int | None = None

    @property
    def label(self) -> str:
        """`model.py`, or `model.ipynb#cell3`."""
        return self.file if self.cell is None else cell_label(self.file, self.cell)

    def parse(self) -> ast.Module | None:
        """The unit's ast; None when it does not parse."""
        try:
            return ast.parse(self.code)
        except PARSE_ERRORS:
            return None


def read_units(root: Path, rel: str) -> list[CodeUnit]:
    """The units of one file: itself for a .py, its code cells for a notebook (none for a
    file larger than MAX_CODE_BYTES: that is data, and a pushed repository is untrusted)."""
    path = root / rel
    if path.stat().st_size > MAX_CODE_BYTES:
        return []
    data = path.read_bytes()
    if not rel.endswith(".ipynb"):
        text = data.decode("utf-8", errors="replace")
        return [CodeUnit(rel, text, text)]
    try:
        cells = json.loads(data).get("cells", [])
    except (ValueError, AttributeError):
        return []
    return [
        CodeUnit(rel, _cell_text(cell), cell_code(cell), number)
        for number, cell in enumerate(cells, start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]


def write_units(root: Path, rel: str, texts: dict[int | None, str]) -> None:
    """Write new texts of a file's units (key: cell number, None for a .py) in place."""
    path = root / rel
    if not rel.endswith(".ipynb"):
        path.write_text(texts[None], encoding="utf-8")
        return
    notebook: dict[str, Any] = json.loads(path.read_bytes())
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if number in texts:
            text = texts[number]
            as_list = isinstance(cell.get("source"), list)
            cell["source"] = text.splitlines(keepends=True) if as_list else text
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _cell_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
