"""Stage 2, inspect: read the repository's code with ast and pick the container image."""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from training.notebook import cell_label, code_cells
from tweakops.analysis.entrypoints import find_entrypoint
from tweakops.errors import InspectError

KERAS_IMAGE = "tweakops/keras:latest"
SKLEARN_IMAGE = "tweakops/sklearn:latest"
IMAGES = {"keras": KERAS_IMAGE, "sklearn": SKLEARN_IMAGE}
SKIP_DIRS = frozenset({"__pycache__", "site-packages", "node_modules", "venv", "env", "virtualenv"})
MAX_FILE_BYTES = 20_000_000  # larger files are data, not code
MAX_EVIDENCE = 25  # per framework: enough to explain the choice without flooding the record
_MODULES = {"tensorflow": "keras", "keras": "keras", "tf_keras": "keras", "sklearn": "sklearn"}
_KERAS_PACKAGES = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "keras", "tf-keras")
_SKLEARN_PACKAGES = ("scikit-learn", "sklearn")
_PACKAGES = dict.fromkeys(_KERAS_PACKAGES, "keras") | dict.fromkeys(_SKLEARN_PACKAGES, "sklearn")
_KERAS_LAYER_RE = re.compile(r"(Conv|SeparableConv|DepthwiseConv|MaxPooling)[123]D(Transpose)?")
_KERAS_PAIR = frozenset(("Dense", "Sequential"))  # torch/flax have one of them; Keras has both
_REQUIREMENT_RE = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_READ_RE = re.compile(r".+\.(py|ipynb)|pyproject\.toml|requirements.*\.txt")


@dataclass(frozen=True)
class Evidence:
    """One reason to believe the code uses a framework, with where it was seen."""

    framework: str
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.what}"


@dataclass(frozen=True)
class InspectResult:
    """The framework and image chosen for a repository, the rule that chose them and why."""

    framework: str
    image: str
    rule: str
    evidence: tuple[Evidence, ...]
    entrypoint: str
    files_read: int
    skipped: tuple[str, ...] = ()  # files or notebook cells that did not parse, with the reason
    entrypoint_rule: str = ""  # why this entrypoint (tweakops/analysis/entrypoints.py)
    entrypoint_evidence: str = ""  # e.g. where it writes accuracy.txt

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self) | {
            "evidence": [asdict(e) for e in self.evidence],
            "skipped": list(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InspectResult:
        """Inverse of to_dict."""
        values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        values["evidence"] = tuple(Evidence(**e) for e in values.get("evidence", ()))
        values["skipped"] = tuple(values.get("skipped", ()))
        return cls(**values)


@dataclass
class _Scan:
    evidence: list[Evidence] = field(default_factory=list)
    imports: dict[str, None] = field(default_factory=dict)  # top-level modules, first seen first
    skipped: list[str] = field(default_factory=list)
    files_read: int = 0
    code_files: int = 0
    unparsable: int = 0


def inspect_tree(
    root: Path,
    image_override: str | None = None,
    entrypoint: str | None = None,
    metric: str = "accuracy",
) -> InspectResult:
    """Read the code under ROOT and pick the image by the first rule that applies."""
    scan = _scan_tree(root)
    evidence = _select_evidence(scan.evidence)
    detected = evidence[0].framework if evidence else None
    if image_override:
        framework, image, rule = detected or "custom", image_override, "config image"
    elif (root / "Dockerfile").is_file():
        framework, image, rule = detected or "custom", "dockerfile:Dockerfile", "Dockerfile in repo"
    else:
        framework = _require_framework(root, scan, detected)
        image, rule = IMAGES[framework], f"{framework} evidence"
    script = find_entrypoint(root, entrypoint, metric)
    return InspectResult(
        framework,
        image,
        rule,
        evidence,
        script.path,
        scan.files_read,
        tuple(scan.skipped),
        script.rule,
        script.evidence,
    )


def _require_framework(root: Path, scan: _Scan, detected: str | None) -> str:
    if scan.code_files and scan.unparsable == scan.code_files:
        raise InspectError(
            f"none of the {scan.code_files} Python files or notebooks in {root} parses "
            f"(first: {scan.skipped[0]}): fix the syntax, or add `image:` to tweakops.yaml"
        )
    if detected:
        return detected
    third_party = [m for m in scan.imports if m not in sys.stdlib_module_names]
    shown = ", ".join(third_party[:10]) + (", ..." if len(third_party) > 10 else "")
    raise InspectError(
        f"no ML framework found in {root}: read {scan.files_read} files, imports found: "
        f"{shown or 'none beyond the standard library'}; add `image:` to tweakops.yaml "
        "or import tensorflow/keras or scikit-learn"
    )


def _select_evidence(found: Iterable[Evidence]) -> tuple[Evidence, ...]:
    ordered = sorted(set(found), key=lambda e: (e.file, e.line, e.what))
    per_framework = ([e for e in ordered if e.framework == fw][:MAX_EVIDENCE] for fw in IMAGES)
    return tuple(itertools.chain.from_iterable(per_framework))  # keras first: it wins


def _scan_tree(root: Path) -> _Scan:
    scan = _Scan()
    for path in _walk(root):
        rel, suffix = path.relative_to(root).as_posix(), path.suffix
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            scan.skipped.append(f"{rel}: not read (link, device or over {MAX_FILE_BYTES} B)")
            continue
        data = path.read_bytes()
        scan.files_read += 1
        if suffix in (".py", ".ipynb"):
            scan.code_files += 1
            reader = _scan_code if suffix == ".py" else _scan_notebook
            scan.unparsable += not reader(scan, data, rel)
        elif path.name == "pyproject.toml":
            _scan_pyproject(scan, data.decode(errors="replace"), rel)
        else:
            _scan_requirements(scan, data.decode(errors="replace"), rel)
    return scan


def _walk(root: Path) -> Iterator[Path]:
    """Files worth reading, in a stable order, outside hidden, virtualenv and vendor folders."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _skip_dir(here / d))
        yield from (here / f for f in sorted(files) if _READ_RE.fullmatch(f))


def _skip_dir(path: Path) -> bool:
    name = path.name  # pyvenv.cfg marks a virtual environment under any name
    hidden = name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info")
    return hidden or (path / "pyvenv.cfg").exists()


def _scan_code(scan: _Scan, source: bytes | str, label: str) -> bool:
    """Record evidence and imports of one file or cell; False when it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = f":{exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        scan.skipped.append(f"{label}{where}: {reason}")
        return False
    nodes = list(ast.walk(tree))  # walked once: large files make walking the main cost
    for node in nodes:
        for module, what in _imports_of(node):
            scan.imports.setdefault(module.split(".")[0], None)
            if framework := _MODULES.get(module.split(".")[0]):
                scan.evidence.append(Evidence(framework, label, getattr(node, "lineno", 0), what))
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            for item in getattr(node.value, "elts", []):  # a literal list or tuple of strings
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    _add_requirement(scan, item.value, label, item.lineno, "setup.py")
    scan.evidence.extend(_layer_evidence(nodes, label))
    return True


def _layer_evidence(nodes: list[ast.AST], label: str) -> list[Evidence]:
    """Keras layer names used or called; Dense and Sequential count only together."""
    calls = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    first: dict[str, int] = {}
    for node in nodes:
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
        if isinstance(node, ast.expr) and (_KERAS_LAYER_RE.fullmatch(name) or name in _KERAS_PAIR):
            what = f"{name}(...)" if id(node) in calls else name
            first[what] = min(first.get(what, node.lineno), node.lineno)
    names = {what.removesuffix("(...)") for what in first}
    return [
        Evidence("keras", label, line, what)
        for what, line in first.items()
        if what.removesuffix("(...)") not in _KERAS_PAIR or names >= _KERAS_PAIR
    ]


def _imports_of(node: ast.AST) -> list[tuple[str, str]]:
    if isinstance(node, ast.Import):
        return [(alias.name, f"import {alias.name}") for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        shown = ", ".join(a.name for a in node.names[:3]) + (", ..." * (len(node.names) > 3))
        return [(node.module, f"from {node.module} import {shown}")]
    return []


def _scan_notebook(scan: _Scan, data: bytes, rel: str) -> bool:
    """Scan the code cells of a notebook; False when none of them parses."""
    try:
        notebook = json.loads(data)
        cells = list(code_cells(notebook))
    except (ValueError, AttributeError) as exc:
        scan.skipped.append(f"{rel}: not a notebook ({exc})")
        return False
    results = [_scan_code(scan, code, cell_label(rel, number)) for number, code in cells]
    return any(results) or not results


def _scan_requirements(scan: _Scan, text: str, rel: str) -> None:
    for number, raw in enumerate(text.splitlines(), start=1):  # options and comments never match
        _add_requirement(scan, raw.split(" #")[0].strip(), rel, number, "requirements")


def _scan_pyproject(scan: _Scan, text: str, rel: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        scan.skipped.append(f"{rel}: {exc}")
        return
    project, poetry = data.get("project", {}), data.get("tool", {}).get("poetry", {})
    extras = itertools.chain.from_iterable(project.get("optional-dependencies", {}).values())
    specs = [*project.get("dependencies", []), *extras, *poetry.get("dependencies", {})]
    for spec in (spec for spec in specs if isinstance(spec, str)):
        line = text.count("\n", 0, max(text.find(spec), 0)) + 1
        _add_requirement(scan, spec, rel, line, "pyproject")


def _add_requirement(scan: _Scan, spec: str, file: str, line: int, kind: str) -> None:
    match = _REQUIREMENT_RE.match(spec)
    package = re.sub(r"[-_.]+", "-", match[1]).lower() if match else ""
    if framework := _PACKAGES.get(package):
        scan.evidence.append(Evidence(framework, file, line, f"{kind}: {spec.strip()}"))
