"""Derived images: a framework image plus a repository's own requirements, built offline.

The tag is `tweakops/<framework>-deps:<12 hex>`, a hash of the framework image (tag and id),
the requirements and docker/deps/Dockerfile: the same requirements on the same framework
image are built once and reused by every run; a changed requirements file makes a new tag.
pip resolves the requirements on the host against the framework image's own versions
(constraints), downloads the wheels, and only the distributions the image lacks go into
the build, installed with --no-index --no-deps. Trials in it still run with no network.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from tweakops.files import atomic_write
from tweakops.images import _wheelhouse as wheelhouse
from tweakops.images.build import REPO_ROOT, ImageError, cache_dir, engine, local_id
from tweakops.report.console import Console

DEPS_DOCKERFILE = REPO_ROOT / "docker" / "deps" / "Dockerfile"
DERIVED_LABEL = "tweakops.derived-from"


@dataclass(frozen=True)
class Derived:
    """The image trials run in, whether this call built it, and what it added."""

    tag: str
    built: bool
    added: tuple[str, ...]  # "pandas 2.2.3", one per distribution the base lacked


def derived_tag(base: str, base_id: str, requirements: Sequence[str]) -> str:
    """`tweakops/keras-deps:<hash>` of the base image and the requirements, order aside."""
    digest = hashlib.sha256()
    for part in (base, base_id, *sorted(requirements), DEPS_DOCKERFILE.read_text()):
        digest.update(part.encode() + b"\0")
    digest.update("\0".join(wheelhouse.platform_tags()).encode())
    name = base.rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base
    return f"{name}-deps:{digest.hexdigest()[:12]}"


def ensure_derived(
    base: str,
    requirements: Sequence[str],
    installed: Mapping[str, str],
    site_packages: str,
    console: Console,
) -> Derived:
    """The derived image of `base` with `requirements`, built unless it exists.

    `installed` maps the base image's distributions to their versions: they constrain the
    resolution and are left out of the build.
    """
    client = engine()
    base_id = local_id(client, base)
    if base_id is None:
        raise ImageError(f"image {base} is missing: run `tweakops images build`")
    tag = derived_tag(base, base_id, requirements)
    if local_id(client, tag) is not None:
        return Derived(tag, False, _added_label(client, tag))
    cache = cache_dir(None)
    key = tag.rsplit(":", 1)[1]
    with wheelhouse.build_lock(cache / "locks" / f"deps-{key}.lock", console.say):
        if local_id(client, tag) is not None:
            return Derived(tag, False, _added_label(client, tag))
        started = time.monotonic()
        console.say(f"    building {tag}: {base} + {', '.join(requirements)}")
        wheels = _wheels(cache / f"deps-{key}", requirements, installed, console)
        added = tuple(f"{name} {version}" for name, version, _ in wheels)
        context = Path(tempfile.mkdtemp(prefix="deps-", dir=_mkdir(cache / "contexts")))
        try:
            shutil.copy2(DEPS_DOCKERFILE, context / "Dockerfile")
            (context / "requirements.txt").write_text("\n".join(requirements) + "\n")
            (context / "wheels").mkdir()
            for _, _, wheel in wheels:
                wheelhouse.link_or_copy(wheel, context / "wheels" / wheel.name)
            extra = {
                "SITE_PACKAGES": site_packages,
                DERIVED_LABEL: base,
                "tweakops.analysis.requirements": " ".join(sorted(requirements)),
                "tweakops.added": ", ".join(added),
            }
            log = cache / "logs" / f"build-deps-{key}.log"
            wheelhouse.run_build(client, context, tag, base, log, console, extra)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        console.say(
            f"    built {tag} in {time.monotonic() - started:.1f} s: added {', '.join(added)}"
        )
    return Derived(tag, True, added)


def _wheels(
    folder: Path, requirements: Sequence[str], installed: Mapping[str, str], console: Console
) -> list[tuple[str, str, Path]]:
    """(name, version, wheel) of each distribution to add: downloaded once, base ones left out."""
    if not (folder / wheelhouse.MARKER).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        wanted = atomic_write(folder / "requirements.in", "\n".join(requirements) + "\n")
        pins = [f"{n}=={v}" for n, v in sorted(installed.items()) if _valid(v)]
        constraints = atomic_write(folder / "constraints.txt", "\n".join(pins) + "\n")
        command = wheelhouse.download_command(wanted, folder, constraints)
        log = folder.parent / "logs" / f"wheels-{folder.name}.log"
        console.say(f"    downloading wheels on the host into {folder}")
        wheelhouse.run_pip(command, log, console.say)
        atomic_write(folder / wheelhouse.MARKER, f"{time.time():.0f}\n")
    wheels = []
    have = {canonicalize_name(name) for name in installed}
    for path in sorted(folder.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name not in have:
            wheels.append((str(name), str(version), path))
    if not wheels:
        raise ImageError(
            f"pip found nothing to add to the image for {', '.join(requirements)}: "
            f"see {folder} and the log in {folder.parent / 'logs'}"
        )
    return wheels


def _valid(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _added_label(client: object, tag: str) -> tuple[str, ...]:
    image = client.images.get(tag)  # type: ignore[attr-defined]
    text = (image.labels or {}).get("tweakops.added", "")
    return tuple(part for part in text.split(", ") if part)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
