"""Framework images (keras, sklearn) and the offline base, content-tagged and built with the SDK."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweakops.images import _baseimage
from tweakops.images._recipe import REPO_ROOT, ImageError, ImageRecipe
from tweakops.images._wheelhouse import build_offline, harness_files
from tweakops.report.console import Console
from tweakops.runtime import docker_engine
from tweakops.runtime.docker_engine import DockerClient

IMAGE_NAMES: tuple[str, ...] = ("keras", "sklearn")
DEFAULT_BASE = "python:3.11-slim"
OFFLINE_BASE = "tweakops/base:bookworm"
BASE_HINT = (
    "run `tweakops images base` and pass --base tweakops/base:bookworm (or set TWEAKOPS_BASE_IMAGE)"
)


@dataclass(frozen=True)
class BuiltImage:
    """An image that exists now; `cached` when it was already there and nothing was built."""

    name: str
    tag: str
    image_id: str
    cached: bool
    seconds: float


@dataclass(frozen=True)
class ImageStatus:
    """One row of `tweakops images list`: the recipe's current tag and whether it is built."""

    name: str
    tag: str
    base_image: str
    present: bool
    image_id: str | None
    size: int | None


def recipe(name: str, root: Path = REPO_ROOT) -> ImageRecipe:
    """Image `name`: the shared root/docker/Dockerfile and root/docker/<name>/requirements.txt."""
    if name not in IMAGE_NAMES:
        raise ImageError(f"unknown image {name!r}; expected one of {', '.join(IMAGE_NAMES)}")
    dockerfile = root / "docker" / "Dockerfile"
    requirements = root / "docker" / name / "requirements.txt"
    for path in (dockerfile, requirements):
        if not path.is_file():
            raise ImageError(
                f"{path} is missing: the image recipes ship with the tweakops source tree "
                f"(docker/{name}/); run from a checkout"
            )
    return ImageRecipe(name, dockerfile, requirements, harness_files(root), root)


def content_tag(recipe: ImageRecipe, base_image: str, base_id: str | None = None) -> str:
    """tweakops/<name>:<12 hex of sha256 over Dockerfile, requirements, harness and base>."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("Dockerfile", recipe.dockerfile.read_bytes())
    add("requirements.txt", recipe.requirements.read_bytes())
    for path in recipe.harness_files:
        add(f"harness/{path.relative_to(recipe.root).as_posix()}", path.read_bytes())
    add("base", base_image.encode())
    add("base-id", (base_id or "").encode())
    return f"tweakops/{recipe.name}:{digest.hexdigest()[:12]}"


def engine(timeout: float = 120) -> DockerClient:
    """A client of the Docker engine from the environment; RuntimeUnavailable when none answers."""
    return docker_engine.connect(timeout=timeout)


def _local_image(client: Any, ref: str) -> Any | None:
    """The local image named `ref`, or None; never pulls."""
    errors = docker_engine.sdk().errors
    try:
        return client.images.get(ref)
    except errors.ImageNotFound:
        return None
    except errors.APIError as exc:
        raise ImageError(f"cannot look up image {ref!r}: {exc.explanation or exc}") from exc


def local_id(client: Any, ref: str) -> str | None:
    image = _local_image(client, ref)
    return None if image is None else str(image.id)


def _pick_base(client: Any, base_image: str | None) -> str:
    """--base, else $TWEAKOPS_BASE_IMAGE, else the offline base if built, else python:3.11-slim."""
    chosen = base_image or os.environ.get("TWEAKOPS_BASE_IMAGE")
    if chosen:
        return chosen
    return OFFLINE_BASE if local_id(client, OFFLINE_BASE) else DEFAULT_BASE


def _pull(client: Any, ref: str) -> tuple[str | None, str]:
    """Try one pull: (image id, "") or (None, the reason it failed)."""
    try:
        return str(client.images.pull(ref).id), ""
    except docker_engine.sdk().errors.DockerException as exc:
        return None, _first_line(getattr(exc, "explanation", None) or str(exc))


def _ensure_base(client: Any, base: str, console: Console) -> str:
    """The base image's id, pulled once when missing; else ImageError naming the offline base."""
    base_id = local_id(client, base)
    if base_id is None:
        console.say(f"base image {base} is not on this machine; trying one pull")
        base_id, reason = _pull(client, base)
        if base_id is None:
            raise ImageError(
                f"base image {base} is missing and cannot be pulled ({reason}): {BASE_HINT}"
            )
    return base_id


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no reason given"


def cache_dir(wheel_cache: Path | None) -> Path:
    default = os.environ.get("TWEAKOPS_CACHE") or Path.home() / ".cache" / "tweakops"
    return Path(wheel_cache or default).expanduser().absolute()


def build_image(
    name: str,
    base_image: str | None = None,
    console: Console | None = None,
    wheel_cache: Path | None = None,
    *,
    root: Path = REPO_ROOT,
) -> BuiltImage:
    """Build tweakops/<name>:<content hash> unless it exists; also tag it tweakops/<name>:latest."""
    started = time.monotonic()
    console = console or Console()
    client = engine()
    the_recipe = recipe(name, root)
    base = _pick_base(client, base_image)
    tag = content_tag(the_recipe, base, local_id(client, base))
    existing = local_id(client, tag)
    if existing is None:
        tag = content_tag(the_recipe, base, _ensure_base(client, base, console))
        console.stage_start(f"build {tag}", f"on {base}")
        if not build_offline(client, the_recipe, base, tag, cache_dir(wheel_cache), console):
            existing = tag  # another process built it while this one waited
    client.api.tag(tag, f"tweakops/{name}", "latest")
    image = client.images.get(tag)
    seconds = time.monotonic() - started
    if existing:
        console.say(f"{name}: unchanged, {tag} (cached)")
    else:
        size = image.attrs.get("Size", 0) / 1e6
        console.say(f"{name}: built {tag} ({image.short_id}, {size:.0f} MB) in {seconds:.1f} s")
    return BuiltImage(name, tag, str(image.id), existing is not None, seconds)


def _recipe_name(ref: str) -> str | None:
    """ "keras", "tweakops/keras" or "tweakops/keras:latest" -> "keras"; anything else -> None."""
    for name in IMAGE_NAMES:
        if ref in (name, f"tweakops/{name}", f"tweakops/{name}:latest"):
            return name
    return None


def resolve_image(name_or_ref: str, build: bool, console: Console | None = None) -> str:
    """The image reference to run: our content tag (built if allowed) or the user's own image."""
    if name_or_ref.startswith("dockerfile:"):
        raise ImageError(
            f"{name_or_ref!r} names the repository's own Dockerfile, which resolve_image does not "
            "build: the docker runtime builds it from the trial's source"
        )
    client = engine()
    name = _recipe_name(name_or_ref)
    if name is None:
        if local_id(client, name_or_ref) is None:
            pulled, reason = _pull(client, name_or_ref)
            if pulled is None:
                raise ImageError(
                    f"image {name_or_ref} is not on this machine and cannot be pulled ({reason}): "
                    "pull it or `docker load` it, or remove `image:` from tweakops.yaml to let "
                    "inspect pick keras or sklearn"
                )
        return name_or_ref
    base = _pick_base(client, None)
    tag = content_tag(recipe(name), base, local_id(client, base))
    if local_id(client, tag) is not None:
        return tag
    if not build:
        raise ImageError(f"image {tag} is missing: run `tweakops images build {name}`")
    return build_image(name, base, console).tag


def container_image(chosen: str, console: Console | None = None) -> str:
    """The local image to run: our framework images by content tag (built when missing)."""
    if chosen.startswith("dockerfile:"):
        raise ImageError(
            f"the repository brings its own {chosen.split(':', 1)[1]}, which tweakops does not "
            "build yet: build it yourself and name the image with `image:` in tweakops.yaml"
        )
    return resolve_image(chosen, build=True, console=console)


def is_ours(ref: str) -> bool:
    """A framework image or an image derived from one: it carries the trial harness."""
    repository = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return repository in {f"tweakops/{n}" for n in IMAGE_NAMES} | {
        f"tweakops/{n}-deps" for n in IMAGE_NAMES
    }


def list_images(base_image: str | None = None) -> tuple[ImageStatus, ...]:
    """Every recipe with its current content tag and, when built, its image id and size."""
    client = engine()
    base = _pick_base(client, base_image)
    base_id = local_id(client, base)
    rows = []
    for name in IMAGE_NAMES:
        tag = content_tag(recipe(name), base, base_id)
        image = _local_image(client, tag)
        image_id = None if image is None else str(image.id)
        size = None if image is None else image.attrs.get("Size")
        rows.append(ImageStatus(name, tag, base, image is not None, image_id, size))
    return tuple(rows)


def build_base(
    tag: str = OFFLINE_BASE,
    suite: str = "bookworm",
    mirror: str = "http://deb.debian.org/debian",
    console: Console | None = None,
    workdir: Path | None = None,
) -> BuiltImage:
    """debootstrap a minimal Debian with python3 and import it as `tag`, unless it exists."""
    started = time.monotonic()
    console = console or Console()
    client = engine()
    existing = local_id(client, tag)
    if existing:
        console.say(f"base: unchanged, {tag} (cached)")
        return BuiltImage("base", tag, existing, True, time.monotonic() - started)
    executable = _baseimage.check_prerequisites()
    log = cache_dir(None) / "logs" / f"base-{suite}.log"
    console.stage_start(f"base {tag}", f"debootstrap {suite} from {mirror} (log {log})")
    try:
        with console.activity(f"debootstrap {suite} into {tag}"):
            image_id = _baseimage.make_base(
                client, executable, tag, (suite, mirror), workdir, log, console.say
            )
    except docker_engine.sdk().errors.DockerException as exc:
        raise ImageError(f"importing {tag} failed: {_first_line(str(exc))}") from exc
    seconds = time.monotonic() - started
    size = client.images.get(image_id).attrs.get("Size", 0) / 1e6
    console.say(f"base: built {tag} ({image_id[7:19]}, {size:.0f} MB) in {seconds:.1f} s")
    return BuiltImage("base", tag, image_id, False, seconds)
