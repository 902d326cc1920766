"""Which file a trial runs: found the way a person would find it, with the reason recorded.

The rules, first match wins:
1. `entrypoint:` in tweakops.yaml (or --entrypoint);
2. train.py, then main.py, at the root;
3. the only script at the root (a root .py that no other file of the repository imports,
   and not setup.py, conftest.py or a test);
4. of several, the one that writes the metric file (ast: a string literal `accuracy.txt`
   opened or written for writing, or `training.write_metric`);
5. of several that none writes it, the one with an `if __name__ == "__main__":` block;
6. the only notebook at the root, or the only one that writes the metric file.
Several candidates at the rule that decides is an error listing each with its evidence and
the line to add to tweakops.yaml.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tweakops.analysis.code_units import CodeUnit, read_units
from tweakops.errors import InspectError

NOT_ENTRYPOINTS = frozenset({"setup.py", "conftest.py", "__init__.py", "noxfile.py"})
_WRITE_MODES = frozenset("wax+")
_WRITERS = frozenset({"write_text", "write_bytes", "savetxt", "to_csv", "dump"})


@dataclass(frozen=True)
class Entrypoint:
    """The file to run, the rule that chose it and the evidence (file:line), if any."""

    path: str
    rule: str
    evidence: str = ""

    def describe(self) -> str:
        return f"{self.path} ({self.rule}{': ' + self.evidence if self.evidence else ''})"


def find_entrypoint(root: Path, configured: str | None, metric: str = "accuracy") -> Entrypoint:
    """The entrypoint of the repository at `root`; InspectError when none or several."""
    if configured:
        return Entrypoint(_configured(root, configured), "entrypoint in tweakops.yaml")
    scripts = sorted(p.name for p in root.glob("*.py") if p.is_file() and not p.is_symlink())
    for name in ("train.py", "main.py"):
        if name in scripts:
            return Entrypoint(name, f"{name} at the root")
    metric_file = f"{metric}.txt"
    candidates = _candidate_scripts(root, scripts)
    if len(candidates) == 1:
        return Entrypoint(candidates[0], "the only script at the root")
    if candidates:
        return _pick(root, candidates, metric_file, "script")
    notebooks = sorted(p.name for p in root.glob("*.ipynb") if p.is_file())
    if len(notebooks) == 1:
        return Entrypoint(notebooks[0], "the only notebook at the root")
    if notebooks:
        return _pick(root, notebooks, metric_file, "notebook")
    raise InspectError(
        f"no entrypoint in {root}: no train.py, main.py, script or notebook at the root "
        f"({_listed(scripts)}); add `entrypoint: path/to/script.py` to tweakops.yaml"
    )


def _pick(root: Path, names: list[str], metric_file: str, kind: str) -> Entrypoint:
    """Of several scripts (or notebooks): the one writing the metric, else the __main__ one."""
    writers = {name: metric_writes(read_units(root, name), metric_file) for name in names}
    writing = [name for name in names if writers[name]]
    if len(writing) == 1:
        return Entrypoint(
            writing[0], f"the only {kind} that writes {metric_file}", writers[writing[0]][0]
        )
    if writing:
        shown = "; ".join(f"{name} ({writers[name][0]})" for name in writing)
        raise _ambiguous(root, f"{len(writing)} {kind}s write {metric_file}: {shown}", writing)
    mains = [name for name in names if kind == "script" and _has_main_block(root / name)]
    if len(mains) == 1:
        return Entrypoint(mains[0], "the only script with a __main__ block")
    shown = ", ".join(mains or names)
    why = (
        f"{len(mains)} scripts have a __main__ block ({shown})"
        if mains
        else (f"{len(names)} {kind}s at the root ({shown}) and none writes {metric_file}")
    )
    raise _ambiguous(root, why, mains or names)


def _ambiguous(root: Path, why: str, names: Sequence[str]) -> InspectError:
    return InspectError(
        f"no single entrypoint in {root}: {why}; add one line to tweakops.yaml, "
        f"e.g. `entrypoint: {names[0]}`"
    )


def _candidate_scripts(root: Path, scripts: Iterable[str]) -> list[str]:
    """Root scripts that are not setup/test files and that no other repository file imports."""
    imported = _imported_modules(root)
    return [
        name
        for name in scripts
        if name not in NOT_ENTRYPOINTS
        and not name.startswith("test_")
        and not name.endswith("_test.py")
        and name.removesuffix(".py") not in imported
    ]


def _imported_modules(root: Path) -> set[str]:
    """Top-level names imported by the root's scripts and notebooks."""
    names: set[str] = set()
    for path in sorted([*root.glob("*.py"), *root.glob("*.ipynb")]):
        if not path.is_file() or path.is_symlink():
            continue
        for unit in read_units(root, path.name):
            tree = unit.parse()
            for node in ast.walk(tree) if tree else ():
                names.update(_imported_names(node, own=path.stem))
    return names


def _imported_names(node: ast.AST, own: str) -> set[str]:
    if isinstance(node, ast.Import):
        found = {alias.name.split(".")[0] for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
        found = {node.module.split(".")[0]}
    else:
        return set()
    return found - {own}


def metric_writes(units: Iterable[CodeUnit], metric_file: str) -> list[str]:
    """Where the units write the metric file, as `file:line code` (ast, never a regex)."""
    found = []
    for unit in units:
        tree = unit.parse()
        if tree is None:
            continue
        constants = _module_strings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _writes_metric(node, metric_file, constants):
                found.append(f"{unit.label}:{node.lineno} {_clip(ast.unparse(node))}")
    return found


def _writes_metric(call: ast.Call, metric_file: str, constants: dict[str, str]) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if name == "write_metric":
        return metric_file == "accuracy.txt" or _names_file(call, metric_file.removesuffix(".txt"))
    if name == "open":
        receiver = [func.value] if isinstance(func, ast.Attribute) else []
        first_arg = [] if receiver else call.args[:1]
        target = [*receiver, *first_arg]
        mode_args = call.args[0:1] if receiver else call.args[1:2]
        modes = [k.value for k in call.keywords if k.arg == "mode"] + mode_args
        writing = any(set(_text(m, constants) or "") & _WRITE_MODES for m in modes)
        return writing and any(_mentions(t, metric_file, constants) for t in target)
    if name in _WRITERS:
        parts = [func.value] if isinstance(func, ast.Attribute) else []
        return any(_mentions(p, metric_file, constants) for p in [*parts, *call.args[:1]])
    return False


def _names_file(call: ast.Call, metric: str) -> bool:
    values = [k.value for k in call.keywords if k.arg == "name"] + call.args[1:2]
    return any(isinstance(v, ast.Constant) and v.value == metric for v in values)


def _mentions(node: ast.AST, metric_file: str, constants: dict[str, str]) -> bool:
    """True when a string literal (or a module constant) under `node` names the metric file."""
    for child in ast.walk(node):
        text = _text(child, constants)
        if text is not None and PurePosixPath(text.replace("\\", "/")).name == metric_file:
            return True
    return False


def _text(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr) and node.values:  # f"{out}/accuracy.txt"
        return _text(node.values[-1], constants)
    return None


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """NAME = "text" assignments at module level (a path kept in a constant)."""
    strings: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Constant):
            continue
        if isinstance(node.value.value, str):
            strings.update(
                (t.id, node.value.value) for t in node.targets if isinstance(t, ast.Name)
            )
    return strings


def _has_main_block(path: Path) -> bool:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    tests = {ast.unparse(node.test) for node in tree.body if isinstance(node, ast.If)}
    return bool(tests & {"__name__ == '__main__'", "'__main__' == __name__"})


def _configured(root: Path, configured: str) -> str:
    relative = PurePosixPath(configured)
    path = root / relative  # an absolute path replaces root and so fails the test below
    if not (path.is_file() and path.resolve().is_relative_to(root.resolve())):
        scripts = sorted(p.name for p in root.glob("*.py") if p.is_file())
        raise InspectError(
            f"entrypoint {configured!r} from tweakops.yaml is not a file in the repository: "
            f"give a path relative to its root ({_listed(scripts)})"
        )
    return relative.as_posix()


def _listed(scripts: list[str]) -> str:
    return f".py files at the root: {', '.join(scripts)}" if scripts else "no .py files at the root"


def _clip(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
