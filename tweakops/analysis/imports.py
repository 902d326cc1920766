"""What the entrypoint imports: its own modules in the repository, and everything else.

Followed from the entrypoint through the repository's own modules (`import utils`,
`from models.cnn import build`, relative imports). An import inside `try:` that handles
ImportError, or under `if TYPE_CHECKING:`, is optional and never required.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tweakops.analysis.code_units import read_units

_OPTIONAL_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


@dataclass(frozen=True)
class ImportSite:
    """A top-level module imported at file:line."""

    module: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Traced:
    """The repository files the entrypoint runs, and the modules they need from outside."""

    files: tuple[str, ...]  # the entrypoint first, then its own modules, as found
    imports: tuple[ImportSite, ...]  # not the standard library, not the repository's own

    def modules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(site.module for site in self.imports))


def trace_imports(root: Path, entrypoint: str) -> Traced:
    """Follow the entrypoint's imports through the repository's own modules."""
    search = [PurePosixPath(entrypoint).parent, PurePosixPath(".")]
    files, pending, outside = [entrypoint], [entrypoint], []
    while pending:
        rel = pending.pop(0)
        for unit in read_units(root, rel):
            tree = unit.parse()
            for node, module in _required_imports(tree) if tree else ():
                local = _local_files(root, search, rel, node, module)
                if local is None:
                    if module.split(".")[0] not in sys.stdlib_module_names:
                        outside.append(ImportSite(module.split(".")[0], unit.label, node.lineno))
                    continue
                for found in local:
                    if found not in files:
                        files.append(found)
                        pending.append(found)
    return Traced(tuple(files), tuple(outside))


def _required_imports(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    """(statement, dotted module) of every import that is not optional."""
    found: list[tuple[ast.stmt, str]] = []
    _collect(tree.body, found)
    return found


def _collect(body: list[ast.stmt], found: list[tuple[ast.stmt, str]]) -> None:
    for node in body:
        if isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [base + a.name if not node.module else base for a in node.names]
            found.extend((node, name) for name in dict.fromkeys(names))
        elif isinstance(node, ast.Try) and _handles_import_error(node):
            _collect(node.orelse + node.finalbody, found)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            _collect(node.orelse, found)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    _collect([c for c in children if isinstance(c, ast.stmt)], found)
                    for handler in (c for c in children if isinstance(c, ast.ExceptHandler)):
                        _collect(handler.body, found)


def _handles_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in _OPTIONAL_ERRORS for n in names):
            return True
    return False


def _local_files(
    root: Path, search: list[PurePosixPath], importer: str, node: ast.stmt, module: str
) -> list[str] | None:
    """The repository files that make `module`, or None when it is not the repository's."""
    if module.startswith("."):
        level = len(module) - len(module.lstrip("."))
        parents = PurePosixPath(importer).parents
        if level > len(parents):
            return []  # above the repository: nothing of ours, and nothing to install
        return _module_files(root, parents[level - 1], module.lstrip(".")) or []
    for folder in search:
        files = _module_files(root, folder, module)
        if files:
            return files
    return None


def _module_files(root: Path, folder: PurePosixPath, dotted: str) -> list[str]:
    """`a.b` under `folder`: a.py / a/__init__.py, then a/b.py / a/b/__init__.py, as exist."""
    files: list[str] = []
    here = folder
    for part in [p for p in dotted.split(".") if p]:
        here = here / part
        for candidate in (here.with_suffix(".py"), here / "__init__.py"):
            if (root / candidate).is_file():
                files.append(candidate.as_posix())
        if not (root / here).is_dir() and not files:
            return []
    return files
