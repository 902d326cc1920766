"""Warm spares for the docker runtime: a container that has imported the framework (Keras and
TensorFlow: seconds) while the previous trial trains, and becomes the next trial. It is made
as that trial starts, at the lowest CPU weight until the trial is past its start-up (its
first epoch record: _after_startup), then at the weight every container has. With trials at
once, one spare per trial at once is kept (keep()), so that no slot's next trial starts cold.

One container still runs exactly one trial attempt and is never reused: a spare is created
with the sandbox a trial of the same spec gets (_docker_container.sandbox_options: image,
user, limits, no network, no capabilities, docker-init), its own empty folder at /trial and
the warm interpreter (training/_warm.py, in every tweakops image) as its command. Handing it a
trial (take, then launch):
1. its folder takes the trial folder's place, holding the trial's files (_spare_folder);
2. the folder is handed to the container user, as for a cold start, and the container is
   renamed to the trial's name;
3. the job (argv, the /trial working directory, the variables a cold container would get) is
   written to /trial/.tweakops-job.json, and the spare runs it. Its output went to /dev/null
   until then, so the container's log is the trial's output alone.
Anything failing on the way removes the spare and the trial starts cold; its files stay.

A spare carries the trial spec's labels (tweakops.run among them) but tweakops.trial, and
tweakops.warm=1; labels are fixed at creation, so the trial it becomes keeps them. Its
variables are only those of the trial's that change what an import does (the local runtime's
allow-list, never a secret-named one); the trial's own arrive in the job file. A spare whose
tweakops process died ends by itself (the owner lock), and is removed, with its folder, when
a spare is next made or a runtime that made spares closes (a resumed run's process).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from docker.client import DockerClient
from docker.models.containers import Container

from training._warm import JOB_FILE, OWNER_FILE, job_text, owner_alive
from tweakops.redact import is_secret_name
from tweakops.runtime._after_startup import SpareMaker
from tweakops.runtime._base import TrialSpec
from tweakops.runtime._docker_container import (
    NAME_LABEL,
    TRANSPORT_ERRORS,
    WARM_SCRIPT,
    first_line,
    sandbox_options,
    trial_env,
)
from tweakops.runtime._spare_folder import (
    SPARE_PREFIX,
    hold_owner,
    let_go,
    make_spare_folder,
    move_trial_into,
    remove_spare_folder,
    write_job,
)
from tweakops.runtime._trial_folder import (
    MOUNT_POINT,
    container_env,
    hand_over,
    owner_ids,
    path_inside,
)
from tweakops.runtime.local_backend import PASSED_NAMES, PASSED_PREFIXES

log = logging.getLogger("tweakops.runtime.docker_backend")

WARM_LABEL = "tweakops.warm"
TRIAL_LABEL = "tweakops.trial"  # the one label of a trial spec a spare cannot know yet
SPARE_NAME_PREFIX = "tweakops-spare-"
_NO_WARM_CODES = (1, 2)  # python: an uncaught error, or a script it cannot open
LOW_SHARES = 2  # the lowest CPU weight: a spare's until its trial is past its start-up


@dataclass(frozen=True)
class SpareKey:
    """What a spare shares with every trial it may become: the container that trial would be
    given, but for its name, command, working directory, trial variables and folder."""

    image: str | None
    python: str
    user: str
    memory_limit: str | None
    cpus: float | None
    labels: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]


@dataclass
class Spare:
    container: Container
    folder: Path  # its own folder, until it takes a trial's
    key: SpareKey
    owner: int  # the owner lock's descriptor; -1 once released
    shares: int | None = None  # the CPU shares it is still to get (made at the lowest)


def spare_key(spec: TrialSpec, trial: Path, user: str) -> SpareKey:
    labels = {k: v for k, v in spec.labels.items() if k not in (TRIAL_LABEL, NAME_LABEL)}
    env = {**container_env(import_env(spec.env), trial), "PYTHONUNBUFFERED": "1"}
    return SpareKey(
        image=spec.image,
        python=spec.command[0],
        user=user,
        memory_limit=spec.memory_limit,
        cpus=spec.cpus,
        labels=tuple(sorted({**labels, WARM_LABEL: "1"}.items())),
        env=tuple(sorted(env.items())),
    )


def import_env(env: Mapping[str, str]) -> dict[str, str]:
    """The trial variables a spare starts with: those that may change what an import does
    (the local runtime's allow-list: threads, backends, locale), never a secret-named one."""
    return {
        name: value
        for name, value in env.items()
        if (name in PASSED_NAMES or name.startswith(PASSED_PREFIXES)) and not is_secret_name(name)
    }


class WarmSpares:
    """Up to keep() spare containers (one by default), for the next trials like the last one
    started; thread-safe."""

    def __init__(self, client: DockerClient, user: str) -> None:
        self._client, self._user = client, user
        self._lock = threading.Lock()
        self._modules: tuple[str, ...] = ()
        self._python = "python"
        self._spares: list[Spare] = []
        self._keep = 1  # spares to keep: one per trial at once
        self._maker = SpareMaker("warm-spare")
        self._used = False  # spares were wanted once: close() looks for orphans
        self._broken: set[str | None] = set()  # images whose spare ended on its own

    def configure(self, modules: Sequence[str], python: str) -> None:
        """Import `modules` ahead of trials run by `python`; () turns warm spares off."""
        with self._lock:
            changed = (tuple(modules), python) != (self._modules, self._python)
            stale, self._spares = (self._spares, []) if changed else ([], self._spares)
            self._modules, self._python = tuple(modules), python
            self._used = self._used or bool(modules)
        for spare in stale:
            self._discard(spare)

    def keep(self, count: int) -> None:
        """Keep `count` spares (one per trial at once); extra waiting ones are removed."""
        with self._lock:
            self._keep = max(1, count)
            extra, self._spares = self._spares[self._keep :], self._spares[: self._keep]
        for spare in extra:
            self._discard(spare)

    def close(self) -> None:
        """No more spares; the waiting one is removed with its folder, and so are those a
        killed tweakops process left (when this one ever made spares)."""
        self._maker.stop()
        self.configure((), self._python)
        with self._lock:
            used, self._used = self._used, False
        if used:
            with contextlib.suppress(*TRANSPORT_ERRORS, OSError):
                self._clear_stale()

    def runs(self, spec: TrialSpec) -> bool:
        """Whether a spare can become this trial: `python X.py ...` with the warmed python."""
        command = spec.command
        script = len(command) >= 2 and command[1].endswith(".py")
        with self._lock:
            wanted = bool(self._modules) and spec.image not in self._broken
            return wanted and script and command[0] == self._python

    def take(self, spec: TrialSpec, trial: Path) -> Spare | None:
        """The waiting spare, now holding the trial's folder, handed to the container user and
        named as the trial; None (no spare kept) when the trial must start cold."""
        with self._lock:
            spare = self._spares.pop(0) if self._spares else None
        if spare is None:
            return None
        if spare.key != spare_key(spec, trial, self._user) or not self._alive(spare):
            self._discard(spare)
            return None
        try:
            self._raise(spare)  # a trial never runs at the spare's low weight
            move_trial_into(trial, spare.folder)
        except (*TRANSPORT_ERRORS, OSError) as exc:  # the trial's files are where they were
            log.warning("cannot hand %s to a warm spare (%s): it starts cold", trial, exc)
            self._discard(spare)
            return None
        try:
            hand_over(self._user, trial)
            spare.container.rename(spec.name)
        except (*TRANSPORT_ERRORS, OSError) as exc:
            log.warning(
                "warm start of %s failed (%s): starting it cold", spec.name, first_line(exc)
            )
            self.drop(spare, trial)
            return None
        return spare

    def launch(self, spare: Spare, spec: TrialSpec, trial: Path) -> None:
        """Send a taken spare its trial: the job a cold container's command and variables make."""
        workdir = str(path_inside(trial, spec.workdir))
        job = job_text(list(spec.command[1:]), workdir, trial_env(spec, trial))
        write_job(trial, job, owner_ids(self._user))
        let_go(spare.owner, trial)
        spare.owner = -1

    def drop(self, spare: Spare, trial: Path) -> None:
        """Remove a spare that took the trial's folder but will not run it: the files stay."""
        with contextlib.suppress(*TRANSPORT_ERRORS):
            spare.container.remove(force=True)
        with contextlib.suppress(OSError):
            (trial / JOB_FILE).unlink()
        if spare.owner >= 0:
            let_go(spare.owner, trial)
            spare.owner = -1

    def refill(self, spec: TrialSpec, trial: Path, container_id: str) -> None:
        """After a trial started: spares for the next ones like it, up to keep(), unless they
        are there or on their way, made in the background at once, at full CPU weight only once
        this trial is past its start-up (_after_startup). Failing to make one only means a cold
        start."""
        with self._lock:
            if len(self._spares) >= self._keep:
                return
        self._maker.start(
            spec.output_dir,
            lambda: self._running(container_id),
            lambda: self._make(spec, trial),
            self._raise_waiting,
        )

    def settled(self, timeout: float | None = None) -> Spare | None:
        """The spare, once the one on its way (if any) was made and given its full weight."""
        self._maker.settle(timeout)
        return self.spare

    def _make(self, spec: TrialSpec, trial: Path) -> None:
        """Make spares one after the other until keep() wait."""
        try:
            key = spare_key(spec, trial, self._user)
            self._clear_stale()
            while True:
                with self._lock:
                    if not self._short_of(key):
                        return
                spare = self._create(spec, key, trial.parent)
                with self._lock:
                    kept = self._short_of(key)
                    if kept:
                        self._spares.append(spare)
                if not kept:  # closed or reconfigured meanwhile
                    self._discard(spare)
        except (*TRANSPORT_ERRORS, OSError) as exc:
            log.warning("no warm spare for the next trial (%s): it starts cold", first_line(exc))

    def _short_of(self, key: SpareKey) -> bool:
        """(lock held) Fewer than keep() spares wait, and spares for `key` are still wanted."""
        return len(self._spares) < self._keep and self.runs_key(key)

    def _raise_waiting(self) -> None:
        """The waiting spares at full CPU weight (take() does it for one taken before)."""
        with self._lock:
            waiting = list(self._spares)
        for spare in waiting:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                self._raise(spare)

    def _raise(self, spare: Spare) -> None:
        """Give a spare made at the lowest CPU weight the weight of any container."""
        if spare.shares is not None:
            spare.container.update(cpu_shares=spare.shares)
            spare.shares = None

    @functools.cached_property
    def _default_shares(self) -> int | None:
        """CPU shares that give a container the weight of one made without any: 1024 on
        cgroup v1; on v2, 2598 (Docker turns shares into weight 1 + (s - 2) * 9999 / 262142:
        100, the default). None when the engine does not say: spares run at full weight."""
        try:
            version = str(self._client.info().get("CgroupVersion", ""))
        except TRANSPORT_ERRORS:
            return None
        return {"1": 1024, "2": 2598}.get(version)

    def _running(self, container_id: str) -> bool:
        try:
            return bool(self._client.containers.get(container_id).status == "running")
        except TRANSPORT_ERRORS:
            return False

    def runs_key(self, key: SpareKey) -> bool:
        """(lock held) Whether spares made for `key` are still wanted."""
        return bool(self._modules) and key.python == self._python

    @property
    def spare(self) -> Spare | None:
        """The first waiting spare, if any (for tests and the curious)."""
        with self._lock:
            return self._spares[0] if self._spares else None

    @property
    def waiting(self) -> int:
        """How many spares wait."""
        with self._lock:
            return len(self._spares)

    def _create(self, spec: TrialSpec, key: SpareKey, trials: Path) -> Spare:
        folder = make_spare_folder(trials)
        owner = -1
        try:
            owner = hold_owner(folder)
            container = self._client.containers.create(**self._options(spec, key, folder))
            try:
                container.start()
            except BaseException:
                with contextlib.suppress(*TRANSPORT_ERRORS):
                    container.remove(force=True)
                raise
        except BaseException:
            if owner >= 0:
                let_go(owner, folder)
            remove_spare_folder(folder)
            raise
        return Spare(container, folder, key, owner, self._default_shares)

    def _options(self, spec: TrialSpec, key: SpareKey, folder: Path) -> dict[str, Any]:
        """A trial's sandbox (the same function makes it), with the spare's folder and name."""
        inside = PurePosixPath(MOUNT_POINT)
        job, owner = str(inside / JOB_FILE), str(inside / OWNER_FILE)
        command = [self._python, "-u", WARM_SCRIPT, "--job-file", job, "--owner", owner]
        low = {"cpu_shares": LOW_SHARES} if self._default_shares is not None else {}
        return {
            **sandbox_options(spec, self._user),
            **low,
            "command": [*command, *self._modules],
            "name": SPARE_NAME_PREFIX + folder.name.removeprefix(SPARE_PREFIX),
            "working_dir": str(inside),
            "environment": dict(key.env),
            "volumes": {str(folder): {"bind": str(inside), "mode": "rw"}},
            "labels": dict(key.labels),
        }

    def _alive(self, spare: Spare) -> bool:
        """Still waiting. One that failed on its own (python's exit 1 or 2, not a signal: an
        engine restart kills spares too) marks its image as one without the warm interpreter
        (not a tweakops image, or an older one): its trials start cold from then on."""
        try:
            spare.container.reload()
        except TRANSPORT_ERRORS:
            return False
        if spare.container.status == "running":
            return True
        if spare.container.attrs.get("State", {}).get("ExitCode") in _NO_WARM_CODES:
            with self._lock:
                self._broken.add(spare.key.image)
            log.warning("the warm spare in %s ended on its own: trials start cold", spare.key.image)
        return False

    def _discard(self, spare: Spare) -> None:
        """Remove a spare that took no trial, and its folder."""
        with contextlib.suppress(*TRANSPORT_ERRORS):
            spare.container.remove(force=True)
        if spare.owner >= 0:
            let_go(spare.owner, spare.folder)
            spare.owner = -1
        remove_spare_folder(spare.folder)

    def _clear_stale(self) -> None:
        """Remove spares whose owner is gone (a tweakops process that was killed: its spares
        ended by themselves), with their folders; a live owner's spare is left alone."""
        filters = {"label": f"{WARM_LABEL}=1"}
        for container in self._client.containers.list(all=True, filters=filters):
            if not container.name.startswith(SPARE_NAME_PREFIX):
                continue  # a trial now: tweakops.warm stays on the container it became
            folder = _mounted_folder(container)
            if folder is not None and owner_alive(str(folder / OWNER_FILE)):
                continue
            if container.status == "running" and (folder is None or not folder.exists()):
                continue  # its folder was just handed to a trial: it is a trial in a moment
            with contextlib.suppress(*TRANSPORT_ERRORS):
                container.remove(force=True)
            if folder is not None:
                remove_spare_folder(folder)  # a .spare-* folder holding only its own files


def _mounted_folder(container: Container) -> Path | None:
    """The host folder a container has at /trial."""
    for mount in container.attrs.get("Mounts", []):
        if mount.get("Destination") == str(MOUNT_POINT) and mount.get("Source"):
            return Path(mount["Source"])
    return None
