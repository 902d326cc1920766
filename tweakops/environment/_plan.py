"""What to install: the declared requirements the trial's base environment does not have.

The base environment wins for what it has (the framework image, or this Python): a
declared pin it does not satisfy is a note naming the version used, never a second copy
of TensorFlow or NumPy under the framework. `tensorflow` is satisfied by `tensorflow-cpu`
and the other way round, `sklearn` by `scikit-learn`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tweakops.analysis.requirements import Declared

ALIASES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow-cpu", "tensorflow-intel"),
    "tensorflow-cpu": ("tensorflow",),
    "tensorflow-gpu": ("tensorflow-cpu", "tensorflow"),
    "sklearn": ("scikit-learn",),
}


@dataclass(frozen=True)
class InstallPlan:
    install: tuple[Declared, ...]  # to install over the base
    provided: tuple[str, ...]  # "numpy 2.1.3 (requirements.txt:2)"
    notes: tuple[str, ...]  # pins the base does not meet, and what is used instead


def plan_install(declared: Sequence[Declared], have: Mapping[str, str]) -> InstallPlan:
    """Split the declared requirements into those the base has and those to install."""
    versions: dict[str, str] = {canonicalize_name(n): v for n, v in have.items()}
    install: list[Declared] = []
    provided: list[str] = []
    notes: list[str] = []
    for item in declared:
        name, version = _provided(item.name, versions)
        if version is None:
            install.append(item)
            continue
        provided.append(f"{name} {version} ({item.where})")
        if not _satisfies(item.spec, version):
            notes.append(
                f"{item.where} asks for `{item.spec}`; the environment has {name} {version}, "
                "which is used (pin to it, or name an image of your own with `image:`)"
            )
    return InstallPlan(tuple(install), tuple(provided), tuple(notes))


def _provided(name: str, versions: Mapping[str, str]) -> tuple[str, str | None]:
    for candidate in (name, *ALIASES.get(name, ())):
        if candidate in versions:
            return candidate, versions[candidate]
    return name, None


def _satisfies(spec: str, version: str) -> bool:
    try:
        return Requirement(spec).specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True
