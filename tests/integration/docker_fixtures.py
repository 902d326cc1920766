"""Helpers for tests of the docker runtime: the test image, session labels, the orphan check.

Tests never import the Docker SDK themselves; they reach the engine through
DockerRuntime.client (only tweakops/runtime/ imports `docker`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, NoReturn

from tests.conftest import skip_or_require
from tweakops.runtime import TrialSpec
from tweakops.runtime.docker_backend import NAME_LABEL, DockerRuntime

BASE_IMAGE = "tweakops/base:bookworm"  # made by `tweakops images base`; has python3 only
SESSION_LABEL = "tweakops.test-session"
SESSION = uuid.uuid4().hex[:12]  # tells this pytest run's containers from anyone else's


def unavailable(message: str) -> NoReturn:
    """Skip, or fail when TWEAKOPS_REQUIRE_DOCKER=1 (CI must run the Docker tests for real)."""
    skip_or_require("TWEAKOPS_REQUIRE_DOCKER", "Docker tests", message)


def docker_runtime(client: Any) -> DockerRuntime:
    """A DockerRuntime on the conftest's pinged client (fixture docker_engine)."""
    return DockerRuntime(client=client)


def resolve_test_image(runtime: DockerRuntime) -> str:
    """TWEAKOPS_TEST_IMAGE, else the offline base image; any image with python3 will do."""
    name = os.environ.get("TWEAKOPS_TEST_IMAGE") or BASE_IMAGE
    if not runtime.client.images.list(name=name):
        unavailable(
            f"no image {name} on the Docker engine for the docker runtime tests: "
            "run `tweakops images base` (or set TWEAKOPS_TEST_IMAGE to an image with python3)"
        )
    return name


@functools.cache
def harness_image() -> str:
    """The sklearn image of this checkout (training/ in it, _warm.py too): a cache hit when CI
    built the images first, else built here from the offline base."""
    from tweakops.images.build import OFFLINE_BASE, ImageError, build_image
    from tweakops.report.console import Console

    try:
        return build_image("sklearn", OFFLINE_BASE, Console(quiet=True)).tag
    except ImageError as exc:
        unavailable(f"no sklearn image of this checkout and it cannot be built here: {exc}")


def in_container(spec: TrialSpec, image: str) -> TrialSpec:
    """The spec for the test image: python3 (the base has no `python`), this session's label."""
    command = spec.command
    if command[0] == "python":
        command = ("python3", *command[1:])
    labels = {**spec.labels, SESSION_LABEL: SESSION}
    return dataclasses.replace(spec, image=image, command=command, labels=labels)


def leftover_containers(runtime: DockerRuntime) -> list[str]:
    """Names of this session's trial containers that still exist, stopped or not."""
    filters = {"label": [f"{SESSION_LABEL}={SESSION}", NAME_LABEL]}
    return sorted(c.name for c in runtime.client.containers.list(all=True, filters=filters))


def remove_leftovers(runtime: DockerRuntime) -> list[str]:
    """Force-remove this session's leftover trial containers; return their names."""
    names = leftover_containers(runtime)
    for name in names:
        runtime.client.containers.get(name).remove(force=True)
    return names


def engine_socket() -> Path | None:
    """The real engine's unix socket, None when DOCKER_HOST points elsewhere (tcp, ssh)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else None


class EngineProxy:
    """A unix socket forwarding to the engine that a test can cut, like an engine that stops."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target = path, target
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> EngineProxy:
        self._server.bind(str(self.path))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def cut(self) -> None:
        """Stop answering and drop every open connection."""
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_forward, args=(src, dst), daemon=True).start()


def _forward(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
