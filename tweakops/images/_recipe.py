"""What a trial image is made of, and the error of everything that builds one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tweakops.errors import TweakopsError

REPO_ROOT = Path(__file__).resolve().parents[2]


class ImageError(TweakopsError):
    """An image cannot be built, found or pulled."""


@dataclass(frozen=True)
class ImageRecipe:
    """What an image is made of; harness files are copied to /opt/tweakops by their path in root."""

    name: str
    dockerfile: Path
    requirements: Path
    harness_files: tuple[Path, ...]
    root: Path = REPO_ROOT
