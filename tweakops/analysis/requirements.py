"""The repository's own dependencies, as declared: requirements*.txt, pyproject.toml,
environment.yml's pip entries, and a notebook's `!pip install` lines.

Each is kept with where it was declared. A line that cannot be installed from a package
index offline (a URL, a local path, an editable install) or does not parse is a note, not
an error: the import check then says whether it mattered.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tweakops.analysis.code_units import read_units
from tweakops.config import read_yaml
from tweakops.errors import ConfigError

# Where trials run: CPython 3.11 on Linux (the images, and what tweakops itself needs).
TARGET: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
}
MAX_INCLUDES = 10


@dataclass(frozen=True)
class Declared:
    """One requirement as written, its normalised name and where it was declared."""

    spec: str
    name: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Declarations:
    requirements: tuple[Declared, ...]
    notes: tuple[str, ...]  # lines that were not taken, and why

    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.file.split("#")[0] for r in self.requirements))


def declared_requirements(root: Path) -> Declarations:
    """Every requirement the repository declares at its root, first declaration wins."""
    found: list[Declared] = []
    notes: list[str] = []
    for path in sorted(root.glob("requirements*.txt")):
        _requirements_file(root, path.name, found, notes, depth=0)
    if (root / "pyproject.toml").is_file():
        _pyproject(root, found, notes)
    for name in ("environment.yml", "environment.yaml"):
        if (root / name).is_file():
            _environment(root, name, found, notes)
    for path in sorted(root.glob("*.ipynb")):
        _notebook(root, path.name, found, notes)
    unique = {r.name: r for r in reversed(found)}  # the first declaration of a name wins
    return Declarations(tuple(r for r in found if unique[r.name] is r), tuple(notes))


def _add(spec: str, file: str, line: int, found: list[Declared], notes: list[str]) -> None:
    text = spec.strip()
    if not text:
        return
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        notes.append(f"{file}:{line} `{text}` is not a requirement pip can install offline ({exc})")
        return
    if requirement.url:
        notes.append(f"{file}:{line} `{text}` is a URL: not installed (no index reaches it)")
        return
    if requirement.marker and not requirement.marker.evaluate(TARGET):
        return
    found.append(Declared(text, canonicalize_name(requirement.name), file, line))


def _requirements_file(
    root: Path, rel: str, found: list[Declared], notes: list[str], depth: int
) -> None:
    path = root / rel
    if (
        depth > MAX_INCLUDES
        or not path.is_file()
        or not path.resolve().is_relative_to(root.resolve())
    ):
        notes.append(f"{rel}: not read (missing, outside the repository, or nested too deep)")
        return
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            include = line.split(None, 1)[1].strip()
            _requirements_file(root, str(Path(rel).parent / include), found, notes, depth + 1)
        elif line.startswith(("-e ", "--editable ", ".", "/")) or "://" in line.split(";")[0]:
            if not line.startswith("-") or line.startswith(("-e ", "--editable ")):
                notes.append(f"{rel}:{number} `{line}` is a path or URL: not installed")
        elif not line.startswith("-"):  # --index-url, -f and other options
            _add(line, rel, number, found, notes)


def _pyproject(root: Path, found: list[Declared], notes: list[str]) -> None:
    text = (root / "pyproject.toml").read_text(errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        notes.append(f"pyproject.toml: not read ({exc})")
        return
    project: dict[str, Any] = data.get("project", {})
    poetry: dict[str, Any] = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    specs = [s for s in project.get("dependencies", []) if isinstance(s, str)]
    specs += [_poetry_spec(k, v) for k, v in poetry.items() if k.lower() != "python"]
    for spec in specs:
        line = text.count("\n", 0, max(text.find(spec.split(" ")[0]), 0)) + 1
        _add(spec, "pyproject.toml", line, found, notes)


def _poetry_spec(name: str, version: Any) -> str:
    if isinstance(version, str) and version not in ("*", ""):
        return f"{name}{_caret(version)}"
    return name


def _caret(version: str) -> str:
    """Poetry's ^1.2 and ~1.2 as pip specifiers (lower bound only), plain ones as ==."""
    if version[0] in "^~":
        return f">={version[1:]}"
    return version if version[0] in "<>=!" else f"=={version}"


def _environment(root: Path, name: str, found: list[Declared], notes: list[str]) -> None:
    text = (root / name).read_text(errors="replace")
    try:
        data = read_yaml(root / name, name)  # no aliases, bounded: the repository is untrusted
    except ConfigError as exc:
        notes.append(f"{name}: not read ({exc})")
        return
    for item in data.get("dependencies", []) if isinstance(data, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            for spec in item["pip"]:
                line = text.count("\n", 0, max(text.find(str(spec)), 0)) + 1
                _add(str(spec), name, line, found, notes)


def _notebook(root: Path, name: str, found: list[Declared], notes: list[str]) -> None:
    """`!pip install pandas seaborn` and `%pip install ...` lines of a notebook's cells."""
    for unit in read_units(root, name):
        for number, line in enumerate(unit.text.splitlines(), start=1):
            if line.lstrip().startswith(("!", "%")):
                for spec in pip_install_args(line.strip().lstrip("!%").split()):
                    _add(spec, unit.label, number, found, notes)


def pip_install_args(words: list[str]) -> list[str]:
    """The requirements of a `pip install ...` command line (options and their values left out)."""
    for index, word in enumerate(words[:-1]):
        if word in ("pip", "pip3") and words[index + 1] == "install":
            rest, specs = words[index + 2 :], []
            takes_value = {"-r", "-c", "-f", "-i", "--index-url", "--extra-index-url", "-t"}
            skip = False
            for word in rest:
                if skip or word.startswith("-"):
                    skip = not skip and word in takes_value
                    continue
                specs.append(word.strip("'\""))
            return specs
    return []
