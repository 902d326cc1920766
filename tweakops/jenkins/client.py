"""The one module that talks to a Jenkins server (python-jenkins): sync, trigger, status, rerun.

Every python-jenkins / requests failure becomes one JenkinsError line that says what to do;
the API token never appears in a message, a log record or a repr.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import jenkins
import requests

from tweakops.errors import JenkinsError
from tweakops.files import atomic_write
from tweakops.jenkins.connection import JenkinsConnection
from tweakops.jenkins.connection import connection_from_env as connection_from_env  # re-exported
from tweakops.jenkins.payloads import (
    build_parameters,
    job_parameters,
    keeps,
    root_tag,
    xml_digest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PIPELINE_PLUGIN = "build-pipeline-plugin"
PIPELINE_VIEW_CLASS = "au.com.centrumsystems.hudson.plugin.buildpipeline.BuildPipelineView"
VERBS = {"created": "creating", "updated": "updating"}
GRANTS = "grant Job/Build, Job/Configure, View/Configure"
Kind = Literal["job", "view"]


@dataclass(frozen=True)
class SyncChange:
    kind: Kind
    name: str
    action: Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class TriggerResult:
    job: str
    queue_id: int
    number: int | None = None
    url: str | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildInfo:
    job: str
    number: int | None
    result: str | None  # SUCCESS, UNSTABLE, FAILURE, ABORTED; None while building or never built
    url: str | None
    building: bool


class JenkinsHTTPError(JenkinsError):
    """Jenkins answered with an HTTP error; `status` is None when python-jenkins hid it."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class MissingPlugin(JenkinsError):
    """Jenkins cannot load a view or job whose class comes from a plugin it lacks."""

    def __init__(self, name: str, plugin: str = PIPELINE_PLUGIN) -> None:
        super().__init__(
            f"Jenkins cannot load view {name}: the Build Pipeline plugin ({plugin}) is not "
            "installed: install it, or sync with a list view"
        )
        self.plugin = plugin


class _NotFound(JenkinsError):
    def __init__(self, what: str) -> None:
        super().__init__(f"Jenkins found nothing (404) when {what}")


def _no_job(job: str) -> str:
    return f"job {job} not found: run `tweakops jenkins sync` first"


def _no_build(job: str, number: int) -> str:
    return f"job {job} has no build #{number}: see `tweakops jenkins status`"


class JenkinsClient:
    """One Jenkins server; `cache_dir` keeps what sync last pushed (default ~/.cache/tweakops)."""

    def __init__(
        self, conn: JenkinsConnection, timeout: float = 30, cache_dir: Path | None = None
    ) -> None:
        self.conn = conn
        self.timeout = timeout
        self._server = jenkins.Jenkins(conn.url, conn.user, conn.token, timeout=timeout)
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tweakops"
        digest = hashlib.sha256(f"{conn.url}|{conn.user}".encode()).hexdigest()[:16]
        self._cache_path = (cache_dir or base / "jenkins") / f"{digest}.json"

    def __repr__(self) -> str:
        return f"JenkinsClient(url={self.conn.url!r}, user={self.conn.user!r})"

    def check(self) -> str:
        """The server's version, after checking that it answers and accepts the credentials."""
        self._call("reading the current user", self._server.get_whoami)
        return str(self._call("reading the version", self._server.get_version))

    def plugins(self) -> set[str]:
        """Short names of the installed, active plugins."""
        found = self._call("listing plugins", self._server.get_plugins, 1)
        return {str(p["shortName"]) for p in found.values() if p.get("active", True)}

    def has_plugin(self, name: str) -> bool | None:
        """Whether a plugin is active; None when this user may not list plugins (403: that
        takes Overall/Administer or Overall/SystemRead)."""
        try:
            return name in self.plugins()
        except JenkinsHTTPError as exc:
            if exc.status == 403:
                return None
            raise

    def sync(
        self, jobs: Mapping[str, str], views: Mapping[str, str], dry_run: bool = False
    ) -> list[SyncChange]:
        """Create or reconfigure only what differs from the server; idempotent."""
        cache = self._load_cache()
        try:
            items: list[tuple[Kind, str, str]] = [("job", n, x) for n, x in jobs.items()]
            items += [("view", n, x) for n, x in views.items()]
            return [self._sync_one(kind, n, x, cache, dry_run) for kind, n, x in items]
        finally:
            if not dry_run:
                atomic_write(self._cache_path, json.dumps(cache, indent=1, sort_keys=True))

    def _sync_one(
        self, kind: Kind, name: str, xml: str, cache: dict[str, Any], dry_run: bool
    ) -> SyncChange:
        s = self._server
        read, create, update = (
            (s.get_job_config, s.create_job, s.reconfig_job)
            if kind == "job"
            else (s.get_view_config, s.create_view, s.reconfig_view)
        )
        ours, key = xml_digest(xml), f"{kind}:{name}"
        current = self._maybe(f"reading {kind} {name}", read, name)
        theirs = xml_digest(current) if current else None
        if current and (theirs == ours or cache.get(key) == [ours, theirs] or keeps(current, xml)):
            return SyncChange(kind, name, "unchanged")  # the server may re-serialise our XML
        action: Literal["created", "updated"] = "updated" if current else "created"
        replace = bool(current) and root_tag(current or "") != root_tag(xml)
        if replace and kind == "job":  # Jenkins refuses to change an item's class in place
            raise JenkinsError(
                f"job {name} on Jenkins is a {root_tag(current or '')}, ours a {root_tag(xml)}: "
                "delete it in Jenkins (its builds go with it) and sync again"
            )
        log.info("%s %s %s%s", action, kind, name, " (dry run)" if dry_run else "")
        if not dry_run:
            if replace:  # a view keeps nothing worth saving: pipeline view <-> list view
                self._call(f"replacing view {name}", s.delete_view, name)
            write = update if current and not replace else create
            self._write(name, xml, write, f"{VERBS[action]} {kind} {name}")
            cache[key] = [ours, xml_digest(self._call(f"reading {kind} {name}", read, name))]
        return SyncChange(kind, name, action)

    def _write(self, name: str, xml: str, write: Callable[..., Any], what: str) -> None:
        try:
            self._call(what, write, name, xml)
        except JenkinsHTTPError as exc:
            refused = root_tag(xml) == PIPELINE_VIEW_CLASS and exc.status not in (401, 403)
            if refused and not self.has_plugin(PIPELINE_PLUGIN):  # lacking, or may not tell
                raise MissingPlugin(name) from None
            raise

    def delete(self, jobs: Sequence[str] = (), views: Sequence[str] = ()) -> None:
        """Delete these jobs and views where they exist (tests clean up with it)."""
        cache = self._load_cache()
        for kind, names, remove in (
            ("view", views, self._server.delete_view),
            ("job", jobs, self._server.delete_job),
        ):
            for name in names:
                self._maybe(f"deleting {kind} {name}", remove, name)
                cache.pop(f"{kind}:{name}", None)
        atomic_write(self._cache_path, json.dumps(cache, indent=1, sort_keys=True))

    def trigger(
        self,
        job: str,
        params: Mapping[str, str] | None = None,
        wait_started: float = 0,
        optional: Mapping[str, str] | None = None,
    ) -> TriggerResult:
        """Queue a build (the job's defaults + `params`, + those `optional` ones the job
        takes); wait up to `wait_started` s for it."""
        defaults = job_parameters(self._job_info(job))
        taken = {k: v for k, v in (optional or {}).items() if k in (defaults or {})}
        given = {**taken, **(params or {})}
        if given and defaults is None:
            raise JenkinsError(f"job {job} takes no parameters, got {', '.join(given)}: drop them")
        unknown = sorted(set(given) - set(defaults or {}))
        if unknown:
            allowed = ", ".join(defaults or {})
            raise JenkinsError(f"job {job} has no parameter {unknown[0]} (it takes {allowed})")
        values = {**{k: v for k, v in (defaults or {}).items() if v is not None}, **given}
        build = self._server.build_job
        queued = self._call(f"building job {job}", build, job, values or None, missing=_no_job(job))
        number, url = self._wait_started(job, int(queued), wait_started)
        return TriggerResult(job, int(queued), number, url, values)

    def _wait_started(self, job: str, queued: int, seconds: float) -> tuple[int | None, str | None]:
        deadline = time.monotonic() + seconds
        while seconds > 0:
            item = self._call(f"reading queue item {queued}", self._server.get_queue_item, queued)
            if item.get("cancelled"):
                raise JenkinsError(f"Jenkins cancelled queue item {queued} of job {job}")
            started = item.get("executable") or {}
            if started.get("number") is not None:
                return int(started["number"]), started.get("url")
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        return None, None

    def last_builds(self, jobs: Sequence[str]) -> list[BuildInfo]:
        """The last build of each job, in the order given."""
        found = []
        for job in jobs:
            last = self._job_info(job).get("lastBuild")
            if not last:
                found.append(BuildInfo(job, None, None, None, False))
                continue
            build = self._build_info(job, int(last["number"]))
            found.append(
                BuildInfo(
                    job,
                    int(build["number"]),
                    build.get("result"),
                    build.get("url"),
                    bool(build.get("building")),
                )
            )
        return found

    def describe(self, build_url: str, text: str, display_name: str | None = None) -> None:
        """The description (and, given, the display name: what the Build Pipeline view's
        cards show) of the build at `build_url`, a page of this server."""
        url = build_url.rstrip("/") + "/configSubmit"
        form = {"description": text, "displayName": display_name or ""}
        request = requests.Request("POST", url, data={"json": json.dumps(form)})
        self._call(f"describing {build_url}", self._server.jenkins_open, request)

    def build_started(self, build_url: str) -> float:
        """When the build at `build_url` started, in seconds since the epoch."""
        url = build_url.rstrip("/") + "/api/json?tree=timestamp"
        request = requests.Request("GET", url)
        body = self._call(f"reading {build_url}", self._server.jenkins_open, request)
        return float(json.loads(body)["timestamp"]) / 1000

    def console(self, job: str, number: int) -> str:
        read, missing = self._server.get_build_console_output, _no_build(job, number)
        return str(self._call(f"reading {job} #{number}", read, job, number, missing=missing))

    def rerun(
        self, job: str, wait_started: float = 0, changes: Mapping[str, str] | None = None
    ) -> TriggerResult:
        """Build `job` again with the parameters of its last build (that it still takes),
        `changes` applied."""
        info = self._job_info(job)
        params = self.last_build(job)[0] if info.get("lastBuild") else {}
        defined = job_parameters(info) or {}
        kept = {k: v for k, v in {**params, **(changes or {})}.items() if k in defined}
        return self.trigger(job, kept, wait_started)

    def last_build(self, job: str) -> tuple[dict[str, str], str]:
        """The parameters and the description of the job's last build ({}, "" if none)."""
        last = self._job_info(job).get("lastBuild")
        if not last:
            return {}, ""
        build = self._build_info(job, int(last["number"]))
        return build_parameters(build), str(build.get("description") or "")

    def _job_info(self, job: str) -> dict[str, Any]:
        read = self._server.get_job_info
        return dict(self._call(f"reading job {job}", read, job, missing=_no_job(job)))

    def _build_info(self, job: str, number: int) -> dict[str, Any]:
        read, missing = self._server.get_build_info, _no_build(job, number)
        return dict(self._call(f"reading {job} #{number}", read, job, number, missing=missing))

    def _load_cache(self) -> dict[str, Any]:
        try:
            data = json.loads(self._cache_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _call(self, what: str, func: Callable[..., T], *args: Any, missing: str = "") -> T:
        """Run one python-jenkins call; its failures become a one-line JenkinsError
        (`missing` is the message for a 404, else _NotFound)."""
        try:
            return func(*args)
        except (requests.Timeout, jenkins.TimeoutException):
            raise self._unreachable(f"no answer in {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise self._unreachable(_connection_reason(exc)) from None
        except jenkins.JenkinsException as exc:
            text = str(exc)
            status = re.search(r"\[(\d{3})\]", text)
            if not status and (isinstance(exc, jenkins.NotFoundException) or "not exist" in text):
                raise (JenkinsError(missing) if missing else _NotFound(what)) from None
            raise self._refused(what, int(status.group(1)) if status else None, text) from None
        except requests.RequestException as exc:
            raise self._refused(what, None, f"{type(exc).__name__}: {exc}") from None

    def _maybe(self, what: str, func: Callable[..., T], *args: Any) -> T | None:
        """Like _call, but None when the item does not exist."""
        try:
            return self._call(what, func, *args)
        except _NotFound:
            return None

    def _unreachable(self, reason: str) -> JenkinsError:
        return JenkinsError(
            f"Jenkins at {self.conn.url} is unreachable ({reason}): "
            "check JENKINS_URL and that Jenkins is running"
        )

    def _refused(self, what: str, status: int | None, text: str) -> JenkinsHTTPError:
        user, url = self.conn.user, self.conn.url
        if status == 401:
            message = (
                f"Jenkins refused the credentials for user {user or 'anonymous'} (401): check "
                "JENKINS_USER and JENKINS_API_TOKEN "
                f"(a token from {url}/user/{user or 'NAME'}/configure)"
            )
        elif status == 403 and "No valid crumb" in text:
            message = f"Jenkins refused the CSRF crumb (403) for {what}: retry"
        elif status == 403:
            who = f"Jenkins user {user}" if user else "anonymous access to Jenkins"
            fix = GRANTS if user else "set JENKINS_USER and JENKINS_API_TOKEN"
            message = f"{who} lacks permission (403) for {what}: {fix}"
        else:
            first = self._redact(text.replace("\n", " ").strip())[:200]
            message = f"Jenkins failed {what} (HTTP {status or '?'}: {first}): see {url}/log/all"
        return JenkinsHTTPError(message, status)

    def _redact(self, text: str) -> str:
        return text.replace(self.conn.token, "***") if self.conn.token else text


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if any(s in text for s in ("NameResolution", "Name or service", "getaddrinfo", "resolve")):
        return "host name not found"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return "connection failed"
