"""What one attempt's container is: the create options (its security settings) and its creation.

The SDK's transport errors and error wording live here too, shared by the docker runtime and
its log copying (see tweakops.runtime.docker_backend for the settings and why).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import requests
from docker.client import DockerClient
from docker.errors import DockerException, ImageNotFound
from docker.models.containers import Container
from docker.types import LogConfig

from training._warm import NOW
from tweakops.errors import RuntimeUnavailable
from tweakops.runtime._base import TrialSpec
from tweakops.runtime._trial_folder import MOUNT_POINT, container_env, path_inside

NAME_LABEL = "tweakops.name"
PIDS_LIMIT = 1024  # threads count too: TensorFlow starts a few per core
TRANSPORT_ERRORS = (requests.exceptions.RequestException, DockerException)
WARM_SCRIPT = "/opt/tweakops/training/_warm.py"  # docker/Dockerfile: training/ in /opt/tweakops


def quick_exit(spec: TrialSpec) -> TrialSpec:
    """`python X.py ...` run by the image's warm harness at once (--now): a cold trial that
    ends like a warm one, without the interpreter's teardown (TensorFlow's: about 0.7 s)."""
    python, *rest = spec.command
    return dataclasses.replace(spec, command=(python, WARM_SCRIPT, NOW, *rest))


def create_container(client: DockerClient, spec: TrialSpec, trial: Path, user: str) -> Container:
    """containers.create (never run(): that would try to pull a missing image)."""
    try:
        return client.containers.create(**container_options(spec, trial, user))
    except ImageNotFound as exc:
        raise RuntimeUnavailable(
            f"image {spec.image} is not on the Docker engine and there is no registry to "
            "pull it from: build it with `tweakops images build` (or `tweakops images base` "
            "for the base) or name an image you have with `image:` in tweakops.yaml"
        ) from exc
    except TRANSPORT_ERRORS as exc:
        raise RuntimeUnavailable(
            f"the Docker engine refused to create trial {spec.name!r}: {first_line(exc)}"
        ) from exc


def container_options(spec: TrialSpec, trial: Path, user: str) -> dict[str, Any]:
    """Keyword arguments of containers.create for one attempt: the sandbox, and the trial."""
    return {
        **sandbox_options(spec, user),
        "command": list(spec.command),
        "name": spec.name,
        "working_dir": str(path_inside(trial, spec.workdir)),
        "environment": trial_env(spec, trial),
        "volumes": {str(trial): {"bind": str(MOUNT_POINT), "mode": "rw"}},
        "labels": {**spec.labels, NAME_LABEL: spec.name},
    }


def sandbox_options(spec: TrialSpec, user: str) -> dict[str, Any]:
    """The security settings and limits every container of `spec` gets, a trial's or the warm
    spare's that may become one (tweakops.runtime.docker_backend says why each)."""
    options: dict[str, Any] = {
        "image": spec.image,
        "network_mode": "none",
        "user": user,
        "init": True,
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "pids_limit": PIDS_LIMIT,
        "log_config": LogConfig(type=LogConfig.types.JSON, config={"max-size": "100m"}),
        "stdin_open": False,
        "tty": False,
    }
    if spec.memory_limit:
        options["mem_limit"] = spec.memory_limit
        options["memswap_limit"] = spec.memory_limit  # no swap: an OOM is a real OOM
    if spec.cpus:
        options["nano_cpus"] = round(spec.cpus * 1e9)
    return options


def trial_env(spec: TrialSpec, trial: Path) -> dict[str, str]:
    """The variables a trial's container gets over its image's: spec.env with trial-folder
    paths as /trial paths, TWEAKOPS_OUTPUT, unbuffered output."""
    return {
        **container_env(spec.env, trial),
        "TWEAKOPS_OUTPUT": str(path_inside(trial, spec.output_dir)),
        "PYTHONUNBUFFERED": "1",
    }


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
