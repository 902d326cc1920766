"""The one connection to the Docker engine: the SDK, a pinged client, errors in our words.

The docker runtime (containers for trials) and the image builder both connect here, so a
missing SDK, a stopped engine or a refused socket reads the same wherever it happens.
"""

from __future__ import annotations

import os
from typing import Any

from tweakops.errors import RuntimeUnavailable

DockerClient = Any  # docker.DockerClient: the SDK ships no type hints (and docker/ is data here)
DEFAULT_HOST = "unix:///var/run/docker.sock"
SDK_MISSING = "the Docker SDK is missing: pip install 'tweakops[docker]', or use --runtime local"


def sdk() -> Any:
    """The Docker SDK module; RuntimeUnavailable when it is not installed."""
    try:
        import docker  # optional (tweakops[docker]) and slow to load: imported when first needed
    except ImportError as exc:
        raise RuntimeUnavailable(SDK_MISSING) from exc
    if not hasattr(docker, "from_env"):  # a data folder docker/ imports as a namespace package
        raise RuntimeUnavailable(SDK_MISSING)
    return docker


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def transport_errors() -> tuple[type[BaseException], ...]:
    """What the SDK raises when the engine cannot be reached (or refuses a request)."""
    docker = sdk()
    import requests  # the SDK's own dependency: there whenever the SDK is

    return (requests.exceptions.RequestException, docker.errors.DockerException, OSError)


def connect(client: DockerClient | None = None, **options: Any) -> DockerClient:
    """`client` (else one from the environment, with `options`) once it answers a ping;
    RuntimeUnavailable saying how to start an engine when none does."""
    errors = transport_errors()
    try:
        client = client if client is not None else sdk().from_env(**options)
        client.ping()
    except errors as exc:
        raise unavailable(exc) from exc
    return client


def unavailable(exc: BaseException) -> RuntimeUnavailable:
    """The engine did not answer: permission denied, or nobody listening."""
    where = engine_address()
    if "Permission denied" in str(exc) or isinstance(exc.__context__, PermissionError):
        return RuntimeUnavailable(
            f"the Docker engine at {where} refuses this user (permission denied): join the "
            "`docker` group or use sudo, or use --runtime local"
        )
    return RuntimeUnavailable(
        f"no Docker engine answers at {where}: start it (`sudo systemctl start docker`, "
        f"or `dockerd &`) or use --runtime local ({_first_line(exc)})"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
