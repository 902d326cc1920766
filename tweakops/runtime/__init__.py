"""Container runtimes: one small interface (Runtime) with a local and a docker backend."""

from __future__ import annotations

from tweakops.errors import RuntimeUnavailable
from tweakops.runtime._base import ExitStatus, Handle, Runtime, State, TrialSpec, signal_name
from tweakops.runtime.local_backend import LocalRuntime

RUNTIME_NAMES: tuple[str, ...] = ("auto", "docker", "local")

__all__ = [
    "RUNTIME_NAMES",
    "ExitStatus",
    "Handle",
    "LocalRuntime",
    "Runtime",
    "State",
    "TrialSpec",
    "get_runtime",
    "signal_name",
]


_LOCAL: list[LocalRuntime] = []  # one per process: its warm spare serves every stage


def get_runtime(name: str) -> Runtime:
    """The runtime for --runtime NAME: "local", "docker", or "auto" (docker if it answers)."""
    if name == "local":
        if not _LOCAL:
            _LOCAL.append(LocalRuntime())
        return _LOCAL[0]
    if name == "docker":
        return _docker_runtime()
    if name == "auto":
        try:
            return _docker_runtime()
        except RuntimeUnavailable:
            return get_runtime("local")
    raise RuntimeUnavailable(
        f"unknown runtime {name!r}; expected one of {', '.join(RUNTIME_NAMES)}"
    )


def _docker_runtime() -> Runtime:
    """DockerRuntime(); its constructor raises RuntimeUnavailable when no engine answers."""
    try:
        from tweakops.runtime.docker_backend import DockerRuntime
    except ModuleNotFoundError as exc:
        raise RuntimeUnavailable(
            f"the docker runtime needs the Docker SDK ({exc.name} is not installed): "
            "pip install 'tweakops[docker]', or use --runtime local"
        ) from exc
    return DockerRuntime()
