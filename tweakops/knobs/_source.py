"""One file's code for the knob finders: its units, their trees, its constants and imports."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from tweakops.analysis.code_units import CodeUnit
from tweakops.knobs._model import Site


@dataclass
class FileCode:
    """The parsed units of one file; `constants` are names bound once, at module level."""

    units: list[tuple[CodeUnit, ast.Module]]
    constants: dict[str, tuple[CodeUnit, ast.expr]] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, units: list[CodeUnit]) -> FileCode:
        parsed = [(unit, tree) for unit in units if (tree := unit.parse()) is not None]
        code = cls(parsed)
        bound: Counter[str] = Counter()
        for unit, tree in parsed:
            for node in ast.walk(tree):
                bound.update(_bound_names(node))
                if isinstance(node, ast.Import):
                    code.imports.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    code.imports.add(node.module.split(".")[0])
            for statement in tree.body:
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    target = statement.targets[0]
                    if isinstance(target, ast.Name):
                        code.constants[target.id] = (unit, statement.value)
        code.constants = {k: v for k, v in code.constants.items() if bound[k] == 1}
        return code

    def calls(self) -> Iterator[tuple[CodeUnit, ast.Call]]:
        """Every call, in source order (cell, line, column)."""
        found = [
            (unit, node)
            for unit, tree in self.units
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        ]
        found.sort(key=lambda item: (item[0].cell or 0, item[1].lineno, item[1].col_offset))
        yield from found

    def resolve(self, unit: CodeUnit, node: ast.expr) -> tuple[CodeUnit, ast.expr]:
        """A name bound once at module level stands for its value: EPOCHS = 3 ... epochs=EPOCHS."""
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        return unit, node


def _bound_names(node: ast.AST) -> list[str]:
    """Names that `node` binds: assignment targets, parameters, imports, loop targets."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
        return [node.id]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    return []


def literal(node: ast.expr) -> tuple[bool, object]:
    """(True, value) for a constant number, string or None, and a negative number."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, bytes | complex):
        return True, node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        ok, value = literal(node.operand)
        if ok and isinstance(value, int | float) and not isinstance(value, bool):
            return True, -value
    return False, None


def span(unit: CodeUnit, node: ast.expr, form: str = "value") -> Site:
    """The site of an expression: its exact span in the unit."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    return Site(
        file=unit.file,
        cell=unit.cell,
        line=node.lineno,
        col=node.col_offset,
        end_line=node.end_lineno,
        end_col=node.end_col_offset,
        text=segment(unit.text, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset),
        form=form,
    )


def insertion(unit: CodeUnit, call: ast.Call, keyword: str) -> Site:
    """An empty site in `call` where `keyword=value` goes: after its last argument, or
    just inside its parentheses when it has none."""
    parts: list[ast.expr] = [*call.args, *(k.value for k in call.keywords)]
    if parts:
        last = max(parts, key=lambda n: (n.end_lineno or 0, n.end_col_offset or 0))
        line, col = last.end_lineno or 0, last.end_col_offset or 0
    else:
        line, col = call.end_lineno or 0, (call.end_col_offset or 1) - 1  # before ")"
    return Site(unit.file, line, col, line, col, "", "keyword", unit.cell, keyword, bool(parts))


def lines_of(text: str) -> list[str]:
    """The text's lines with their endings, split on "\\n" only (as ast counts lines)."""
    return text.split("\n")


def segment(text: str, line: int, col: int, end_line: int, end_col: int) -> str:
    """The text between two ast positions (1-based lines, UTF-8 byte columns)."""
    lines = [ln.encode("utf-8") for ln in lines_of(text)]
    if line == end_line:
        return lines[line - 1][col:end_col].decode("utf-8")
    middle = lines[line : end_line - 1]
    parts = [lines[line - 1][col:], *middle, lines[end_line - 1][:end_col]]
    return b"\n".join(parts).decode("utf-8")


def argument(call: ast.Call, keyword: str, position: int | None) -> ast.expr | None:
    """The value passed as `keyword=`, else at `position` (None: keyword only)."""
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if position is not None and len(call.args) > position:
        node = call.args[position]
        return None if isinstance(node, ast.Starred) else node
    return None


def call_name(func: ast.expr) -> str:
    """`Dense` for Dense(...) and layers.Dense(...)."""
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""
