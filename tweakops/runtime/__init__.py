"""Container runtimes: one small interface (Runtime) with a local and a docker backend."""

from __future__ import annotations

import os
import time

from tweakops.errors import EngineAway, RuntimeUnavailable
from tweakops.runtime._base import ExitStatus, Handle, Runtime, State, TrialSpec, signal_name
from tweakops.runtime.local_backend import LocalRuntime

RUNTIME_NAMES: tuple[str, ...] = ("auto", "docker", "local")
LOCAL_POLICY_ENV = "TWEAKOPS_LOCAL_RUNTIME"  # "forbid" on a machine where trials must be sandboxed
ENGINE_POLL_SECONDS = 2.0

__all__ = [
    "RUNTIME_NAMES",
    "ExitStatus",
    "Handle",
    "LocalRuntime",
    "Runtime",
    "State",
    "TrialSpec",
    "docker_waiting",
    "get_runtime",
    "local_forbidden",
    "signal_name",
]


_LOCAL: list[LocalRuntime] = []  # one per process: its warm spare serves every stage
_DOCKER: dict[str, Runtime] = {}  # one per engine address, for the same reason


def get_runtime(name: str) -> Runtime:
    """The runtime for --runtime NAME: "local", "docker", or "auto" (docker if it answers)."""
    if name == "local":
        if local_forbidden():
            raise RuntimeUnavailable(
                f"the local runtime is forbidden on this machine ({LOCAL_POLICY_ENV}=forbid): "
                "trials run only in a Docker container; start the engine, or unset it"
            )
        if not _LOCAL:
            _LOCAL.append(LocalRuntime())
        return _LOCAL[0]
    if name == "docker":
        return _docker_runtime()
    if name == "auto":
        try:
            return _docker_runtime()
        except RuntimeUnavailable as exc:
            if local_forbidden():
                raise RuntimeUnavailable(f"{exc} ({LOCAL_POLICY_ENV}=forbid)") from exc
            return get_runtime("local")
    raise RuntimeUnavailable(
        f"unknown runtime {name!r}; expected one of {', '.join(RUNTIME_NAMES)}"
    )


def _docker_runtime() -> Runtime:
    """The DockerRuntime of this engine address, one per process like the local runtime (its
    warm spare serves every stage), pinged again each time; its constructor raises
    RuntimeUnavailable when no engine answers."""
    try:
        from tweakops.runtime.docker_backend import DockerRuntime
        from tweakops.runtime.docker_engine import engine_address
    except ModuleNotFoundError as exc:
        raise RuntimeUnavailable(
            f"the docker runtime needs the Docker SDK ({exc.name} is not installed): "
            "pip install 'tweakops[docker]', or use --runtime local"
        ) from exc
    where = engine_address()
    known = _DOCKER.get(where)
    if known is not None and known.ready():
        return known
    runtime = DockerRuntime()
    _DOCKER[where] = runtime
    if known is not None:
        known.close()  # its spare went with the engine that did not answer
    return runtime


def local_forbidden() -> bool:
    """Whether this machine refuses to run trials outside a container."""
    return os.environ.get(LOCAL_POLICY_ENV, "").strip().lower() == "forbid"


def docker_waiting(limit: float) -> Runtime:
    """The docker runtime, waiting up to `limit` s for an engine that does not answer yet;
    EngineAway when it never does (the run stays on docker, resumable)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return _docker_runtime()
        except RuntimeUnavailable as exc:
            if time.monotonic() >= deadline:
                where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
                raise EngineAway(
                    f"no Docker engine answered at {where} for {limit:.0f} s, and this run "
                    "trains on the docker runtime and stays there: start the engine; then "
                    "`tweakops watch --all` or the same stage again resumes it"
                ) from exc
        time.sleep(ENGINE_POLL_SECONDS)
