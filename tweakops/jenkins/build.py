"""A stage run inside a Jenkins build: which build it is, the runs it worked on, and the
build's description, which names them.

Jenkins sets BUILD_URL, JOB_NAME and BUILD_NUMBER in every build. A stage records its build
as a `jenkins_build` event of the run (and the run's build_url), so that a later step of the
same build (`--this-build`) finds the runs it worked on, and the build's description says
"run <id>: <stage> <status>", its display name (what the Build Pipeline view's cards show)
"#<number> run <id>". Both go through the REST API, with the agent's JENKINS_URL /
JENKINS_USER / JENKINS_API_TOKEN; without them they are left as they are.

A job deleted and made again counts its builds from 1, so a build URL can name an older build
whose runs are still in the store: with the credentials, only what was recorded after this
build started counts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tweakops.errors import TweakopsError
from tweakops.store import RunStore
from tweakops.vocabulary import NOT_RUN_STAGES

if TYPE_CHECKING:
    from tweakops.jenkins.client import JenkinsClient

log = logging.getLogger("tweakops")
BUILD_EVENT = "jenkins_build"


@dataclass(frozen=True)
class Build:
    url: str
    job: str
    number: int

    def __str__(self) -> str:
        return f"{self.job} #{self.number}"


def current_build() -> Build | None:
    """The Jenkins build this process runs in, from its environment; None outside Jenkins."""
    url, job, number = (os.environ.get(k, "") for k in ("BUILD_URL", "JOB_NAME", "BUILD_NUMBER"))
    if not (url and job and number.isdigit()):
        return None
    return Build(url, job, int(number))


def record_build(store: RunStore, run_id: str, stage: str) -> None:
    """Note in the run that `stage` runs in this Jenkins build (nothing outside Jenkins)."""
    build = current_build()
    if build is None:
        return
    store.add_event(
        run_id,
        BUILD_EVENT,
        f"{stage} runs in Jenkins build {build}",
        stage=stage,
        job=build.job,
        number=build.number,
        url=build.url,
    )
    store.update_run(run_id, build_url=build.url)


# How far the agent's clock may be behind the controller's.
CLOCK_SLACK = 120.0


def runs_of_build(store: RunStore, build: Build, since: float | None = None) -> list[str]:
    """The runs this build worked on, oldest first (recorded after `since`, given)."""
    after = None if since is None else since - CLOCK_SLACK
    return store.runs_with_event(BUILD_EVENT, "url", build.url, since=after)


def runs_of_this_build(store: RunStore) -> tuple[Build, list[str]] | None:
    """This build and the runs it worked on; None outside Jenkins."""
    build = current_build()
    if build is None:
        return None
    client = _client()
    since = None
    if client is not None:
        try:
            since = client.build_started(build.url)
        except TweakopsError as exc:
            log.warning("could not read when %s started: %s", build, exc)
    return build, runs_of_build(store, build, since)


def description(store: RunStore, run_ids: list[str]) -> str:
    """`run <id>: <stage> <status> (<summary>)` for each run, its latest stage in this build."""
    lines = []
    for run_id in run_ids:
        run = store.get_run(run_id)
        stages = [s for s in store.stages(run_id) if s.status not in NOT_RUN_STAGES]
        last = max(stages, key=lambda s: s.started or 0.0) if stages else None
        what = f"{last.name} {last.status}" if last else run.status
        detail = (last.error or last.summary) if last else ""
        lines.append(f"run {run_id}: {what}" + (f" ({detail[:160]})" if detail else ""))
    return "\n".join(lines)


def display_name(build: Build, run_ids: list[str]) -> str:
    what = f"run {run_ids[0]}" if len(run_ids) == 1 else f"{len(run_ids)} runs"
    return f"#{build.number} {what}"


def describe_build(store: RunStore) -> str | None:
    """Set this build's description and display name to its runs; the description, or None
    when there is no build, no run, or no Jenkins credentials here. A failure is logged,
    never raised."""
    client = _client()
    found = runs_of_this_build(store) if client is not None else None
    if client is None or found is None or not found[1]:
        return None
    build, runs = found
    text = description(store, runs)
    try:
        client.describe(build.url, text, display_name(build, runs))
    except TweakopsError as exc:
        log.warning("could not set the description of %s: %s", build, exc)
        return None
    return text


def _client() -> JenkinsClient | None:
    """A client for this agent's JENKINS_URL / JENKINS_USER / JENKINS_API_TOKEN, if set."""
    try:
        from tweakops.jenkins.client import JenkinsClient, connection_from_env

        return JenkinsClient(connection_from_env(), timeout=10)
    except (ImportError, TweakopsError) as exc:  # no Jenkins client or credentials here
        log.debug("no Jenkins client here: %s", exc)
        return None
