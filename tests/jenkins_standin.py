"""A stand-in for Jenkins' REST API for tests — not Jenkins.

It answers the calls python-jenkins makes, the way Jenkins 2.528 does: Basic auth with API
tokens (401 for bad ones, 403 for a user without permission or anonymous access), a crumb
required on every POST, createItem / config.xml for jobs and views (a Build Pipeline view is
refused without its plugin), build and buildWithParameters (201 + Location of a queue item
that gets a build after a moment), lastBuild with its parameters and description,
configSubmit (description and display name), and consoleText. Jobs,
views, builds and the queue live in memory; every request is recorded in `.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest

PIPELINE_VIEW_CLASS = "au.com.centrumsystems.hudson.plugin.buildpipeline.BuildPipelineView"
DEFAULT_PLUGINS = ("build-pipeline-plugin", "git", "parameterized-trigger", "ws-cleanup")
Reply = tuple[int, str, dict[str, str]]
NOT_FOUND: Reply = (404, "Not Found", {})


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    user: str | None


@dataclass
class Build:
    number: int
    params: dict[str, str]
    result: str | None = "SUCCESS"  # None: still building
    console: str = ""
    description: str = ""
    display_name: str = ""
    started: float = field(default_factory=time.time)


@dataclass
class QueueItem:
    job: str
    params: dict[str, str]
    since: float = field(default_factory=time.monotonic)
    build: int | None = None


class StandInJenkins:
    """`with StandInJenkins() as jenkins:` serves on 127.0.0.1 at `jenkins.url`."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        readers: Iterable[str] = (),
        admins: Iterable[str] | None = None,
        plugins: Iterable[str] = DEFAULT_PLUGINS,
        start_delay: float = 0.1,
        version: str = "2.528.1",
    ) -> None:
        self.users = {"admin": "admin-token"} if users is None else users
        self.readers = set(readers)  # users who may read but not configure or build
        self.admins = None if admins is None else set(admins)  # may list plugins (None: all)
        self.plugins = list(plugins)
        self.start_delay, self.version = start_delay, version
        self.jobs: dict[str, str] = {}
        self.views: dict[str, str] = {}
        self.builds: dict[str, list[Build]] = {}
        self.queue: dict[int, QueueItem] = {}
        self.rewrite: Callable[[str], str] = lambda xml: xml  # how the server stores config.xml
        self.next_result: dict[str, str] = {}  # job → result of its next build (else SUCCESS)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StandInJenkins:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def add_build(
        self,
        job: str,
        result: str | None = "SUCCESS",
        params: dict[str, str] | None = None,
        cause: str = "Started by user admin",
        description: str = "",
    ) -> int:
        """Record a finished (or, with result None, running) build of `job`; its number."""
        builds = self.builds.setdefault(job, [])
        build = Build(len(builds) + 1, dict(params or {}), result, description=description)
        lines = "".join(f"{k}={v}\n" for k, v in build.params.items())
        build.console = f"{cause}\n{lines}Finished: {result}\n"
        builds.append(build)
        return build.number

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def crumb(self, user: str | None) -> str:
        return hashlib.sha256(f"crumb:{user}".encode()).hexdigest()[:32]

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Reply:
        split = urlsplit(target)
        path, params = unquote(split.path), dict(parse_qsl(split.query))
        user, denied = self._authenticate(headers.get("Authorization"))
        with self._lock:
            self.requests.append(Seen(method, path, params, user))
            if denied:
                return denied
            if method == "POST" and headers.get("Jenkins-Crumb") != self.crumb(user):
                return 403, "No valid crumb was included in the request", {}
            if method == "POST" and user in self.readers:
                return 403, f"{user} is missing the Job/Configure permission", {}
            self._start_queued()
            for pattern, verb, action in ROUTES:
                match = re.fullmatch(pattern, path.rstrip("/") or "/")
                if match and method in verb.split():
                    request = {"params": params, "body": body.decode(), "user": user}
                    return action(self, *match.groups(), method=method, **request)
        return NOT_FOUND

    def _authenticate(self, header: str | None) -> tuple[str | None, Reply | None]:
        if not self.users:
            return None, None
        if not header or not header.startswith("Basic "):
            return None, (403, "Authentication required", {})
        user, _, token = base64.b64decode(header[6:]).decode().partition(":")
        if self.users.get(user) != token:
            return user, (401, "Invalid password/token for user: " + user, {})
        return user, None

    def _start_queued(self) -> None:
        for item in self.queue.values():
            if item.build is None and time.monotonic() - item.since >= self.start_delay:
                result = self.next_result.get(item.job, "SUCCESS")
                item.build = self.add_build(item.job, result, item.params, "Started by remote API")

    def _job_url(self, job: str) -> str:
        return f"{self.url}/job/{quote(job)}/"

    def _json(self, data: Any) -> Reply:
        return 200, json.dumps(data), {"Content-Type": "application/json"}

    def root(self, **_: Any) -> Reply:
        jobs = [{"name": n, "url": self._job_url(n), "color": "blue"} for n in self.jobs]
        views = [{"name": n, "url": f"{self.url}/view/{quote(n)}/"} for n in self.views]
        return self._json({"_class": "hudson.model.Hudson", "jobs": jobs, "views": views})

    def me(self, *, user: str | None, **_: Any) -> Reply:
        return self._json({"_class": "hudson.model.User", "id": user or "anonymous"})

    def crumb_issuer(self, *, user: str | None, **_: Any) -> Reply:
        return self._json({"crumb": self.crumb(user), "crumbRequestField": "Jenkins-Crumb"})

    def plugin_manager(self, *, user: str | None, **_: Any) -> Reply:
        if self.admins is not None and user not in self.admins:
            return 403, f"{user} is missing the Overall/Administer permission", {}
        plugins = [
            {"shortName": p, "longName": p.title(), "version": "1.0", "active": True}
            for p in self.plugins
        ]
        return self._json({"plugins": plugins})

    def create(self, kind: str, *, params: dict[str, str], body: str, **_: Any) -> Reply:
        items, name = self.jobs if kind == "Item" else self.views, params.get("name", "")
        if not name or name in items:
            return 400, f"A job or view already exists with the name {name!r}", {}
        return self._store(items, name, body, None)

    def config(self, kind: str, name: str, *, body: str, method: str, **_: Any) -> Reply:
        items = self.jobs if kind == "job" else self.views
        if name not in items:
            return NOT_FOUND
        if method == "GET":
            return 200, items[name], {"Content-Type": "application/xml"}
        return self._store(items, name, body, ET.fromstring(items[name]).tag)

    def _store(self, items: dict[str, str], name: str, body: str, old: str | None) -> Reply:
        """Like Jenkins: refuse XML it cannot load, a class it lacks, a change of class."""
        try:
            tag = ET.fromstring(body).tag
        except ET.ParseError as exc:
            return 500, f"java.io.IOException: Unable to read: {exc}", {}
        if tag == PIPELINE_VIEW_CLASS and "build-pipeline-plugin" not in self.plugins:
            return 500, f"java.io.IOException: Unable to read\nCannotResolveClass: {tag}", {}
        if old not in (None, tag):
            return 500, f"java.io.IOException: Expecting type: {old} but got: {tag}", {}
        items[name] = self.rewrite(body)
        return 200, "", {}

    def job_info(self, name: str, **_: Any) -> Reply:
        if name not in self.jobs:
            return NOT_FOUND
        refs = [{"number": b.number, "url": self._build_url(name, b)} for b in self._builds(name)]
        definitions = [
            {"name": n, "defaultParameterValue": {"name": n, "value": v}}
            for n, v in _parameters(self.jobs[name]).items()
        ]
        prop = {"_class": "hudson.model.ParametersDefinitionProperty"}
        return self._json(
            {
                "_class": "hudson.model.FreeStyleProject",
                "name": name,
                "url": self._job_url(name),
                "property": [{**prop, "parameterDefinitions": definitions}] if definitions else [],
                "builds": refs[::-1],
                "lastBuild": refs[-1] if refs else None,
            }
        )

    def build(self, name: str, with_params: str | None, *, params: Any, **_: Any) -> Reply:
        if name not in self.jobs:
            return NOT_FOUND
        defaults = _parameters(self.jobs[name])
        if defaults and not with_params:
            return 400, "Nothing is submitted", {}
        number = len(self.queue) + 1
        values = {k: v for k, v in {**defaults, **params}.items() if k in defaults}
        self.queue[number] = QueueItem(name, values)
        return 201, "", {"Location": f"{self.url}/queue/item/{number}/"}

    def queue_item(self, number: str, **_: Any) -> Reply:
        item = self.queue.get(int(number))
        if item is None:
            return NOT_FOUND
        data: dict[str, Any] = {"id": int(number), "task": {"name": item.job}, "cancelled": False}
        if item.build is None:
            data.update({"_class": "hudson.model.Queue$WaitingItem", "why": "Waiting"})
        else:
            build = self._builds(item.job)[item.build - 1]
            data["executable"] = {"number": item.build, "url": self._build_url(item.job, build)}
        return self._json(data)

    def _builds(self, name: str) -> list[Build]:
        return self.builds.get(name, [])

    def _build_url(self, name: str, build: Build) -> str:
        return f"{self._job_url(name)}{build.number}/"

    def _find_build(self, name: str, number: str) -> Build | None:
        builds = self._builds(name)
        index = len(builds) if number == "lastBuild" else int(number)
        return builds[index - 1] if 0 < index <= len(builds) else None

    def build_info(self, name: str, number: str, **_: Any) -> Reply:
        build = self._find_build(name, number)
        if build is None:
            return NOT_FOUND
        parameters = [{"name": k, "value": v} for k, v in build.params.items()]
        return self._json(
            {
                "_class": "hudson.model.FreeStyleBuild",
                "number": build.number,
                "url": self._build_url(name, build),
                "result": build.result,
                "building": build.result is None,
                "description": build.description or None,
                "displayName": build.display_name or f"#{build.number}",
                "timestamp": int(build.started * 1000),
                "actions": [{"_class": "hudson.model.ParametersAction", "parameters": parameters}],
            }
        )

    def describe(self, name: str, number: str, *, body: str, **_: Any) -> Reply:
        build = self._find_build(name, number)
        if build is None:
            return NOT_FOUND
        form = json.loads(dict(parse_qsl(body))["json"])
        build.description, build.display_name = form["description"], form["displayName"]
        return 302, "", {"Location": self._build_url(name, build)}

    def build_page(self, name: str, number: str, **_: Any) -> Reply:
        build = self._find_build(name, number)
        return (200, f"<html>{build.description}</html>", {}) if build else NOT_FOUND

    def console_text(self, name: str, number: str, **_: Any) -> Reply:
        build = self._find_build(name, number)
        return (200, build.console, {}) if build else NOT_FOUND

    def view_info(self, name: str, **_: Any) -> Reply:
        if name not in self.views:
            return NOT_FOUND
        return self._json({"name": name, "url": f"{self.url}/view/{quote(name)}/", "jobs": []})

    def delete(self, kind: str, name: str, **_: Any) -> Reply:
        items = self.jobs if kind == "job" else self.views
        return (200, "", {}) if items.pop(name, None) is not None else NOT_FOUND


def _parameters(config_xml: str) -> dict[str, str | None]:
    """{name: default} of the parameter definitions in a job's config.xml."""
    root = ET.fromstring(config_xml)
    return {
        d.findtext("name", ""): d.findtext("defaultValue")
        for d in root.findall(".//parameterDefinitions/*")
    }


NAME = r"([^/]+)"
ROUTES: list[tuple[str, str, Callable[..., Reply]]] = [
    (r"/|/api/json", "GET", StandInJenkins.root),
    (r"/(?:me|whoAmI)/api/json", "GET", StandInJenkins.me),
    (r"/crumbIssuer/api/json", "GET", StandInJenkins.crumb_issuer),
    (r"/pluginManager/api/json", "GET", StandInJenkins.plugin_manager),
    (r"/create(Item|View)", "POST", StandInJenkins.create),
    (rf"/(job|view)/{NAME}/config\.xml", "GET POST", StandInJenkins.config),
    (rf"/(job|view)/{NAME}/doDelete", "POST", StandInJenkins.delete),
    (rf"/job/{NAME}/api/json", "GET", StandInJenkins.job_info),
    (rf"/job/{NAME}/build(WithParameters)?", "POST", StandInJenkins.build),
    (r"/queue/item/(\d+)/api/json", "GET", StandInJenkins.queue_item),
    (rf"/job/{NAME}/(\d+|lastBuild)/api/json", "GET", StandInJenkins.build_info),
    (rf"/job/{NAME}/(\d+|lastBuild)/consoleText", "GET", StandInJenkins.console_text),
    (rf"/job/{NAME}/(\d+)/configSubmit", "POST", StandInJenkins.describe),
    (rf"/job/{NAME}/(\d+)", "GET", StandInJenkins.build_page),
    (rf"/view/{NAME}/api/json", "GET", StandInJenkins.view_info),
]


def _handler(standin: StandInJenkins) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, text, headers = standin.handle(self.command, self.path, self.headers, body)
            data = text.encode()
            self.send_response(status)
            for key, value in {"X-Jenkins": standin.version, **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(name="standin_jenkins")
def standin_jenkins_factory() -> Iterator[Callable[..., StandInJenkins]]:
    """`standin_jenkins(**options)` starts a StandInJenkins that stops after the test."""
    started: list[StandInJenkins] = []

    def start(**options: Any) -> StandInJenkins:
        started.append(StandInJenkins(**options).__enter__())
        return started[-1]

    yield start
    for standin in started:
        standin.__exit__()
