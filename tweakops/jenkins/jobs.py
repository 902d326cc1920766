"""Jenkins jobs as data: jobs/settings.yaml + jobs/*.yaml rendered to XML by jenkins-job-builder."""

from __future__ import annotations

import argparse
import io
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from tweakops.config import parse_config
from tweakops.errors import ConfigError, RepoError
from tweakops.files import atomic_write
from tweakops.pull.git import check_ref, check_source

ROOT = Path(__file__).resolve().parents[2]
JOBS_DIR = ROOT / "jobs"
SETTINGS_FILE = "settings.yaml"
JOB_GROUP = "tweakops-chain"  # the job-group in jobs/tweakops-jobs.yaml
VIEW_TEMPLATES = {"pipeline": "tweakops-pipeline-view", "list": "tweakops-list-view"}
REVERSE_TRIGGER = "triggers/jenkins.triggers.ReverseBuildTrigger"
PARAMETERIZED_CONFIG = (
    "publishers/hudson.plugins.parameterizedtrigger.BuildTrigger/configs/"
    "hudson.plugins.parameterizedtrigger.BuildTriggerConfig"
)

ViewKind = Literal["pipeline", "list"]
ChainKind = Literal["parameterized", "core"]
PARAMETERIZED_PLUGIN = "parameterized-trigger"
RUN_FILE = "tweakops-run.properties"  # job1 writes TWEAKOPS_RUN_ID=<run> there
# Each link of the chain: (upstream job, downstream job, the upstream results that go on).
LINKS: tuple[tuple[str, str, str], ...] = (
    ("job1-pull", "job2-inspect", "SUCCESS"),
    ("job2-inspect", "job3-train", "SUCCESS"),
    ("job3-train", "job4-tune", "SUCCESS"),
    ("job4-tune", "job5-notify", "UNSTABLE_OR_BETTER"),
)
# Fields that Jenkins (its current plugins) no longer has and drops when it loads a job:
# rendered without them, the job loads as written ("Old Data Format" never shows) and a sync
# after a restart finds nothing changed.
DROPPED_FIELDS = (
    "scm/doGenerateSubmoduleConfigurations",
    "scm/submoduleCfg",
    "publishers/hudson.tasks.junit.JUnitResultArchiver/keepLongStdio",
    "publishers/hudson.tasks.ArtifactArchiver/latestOnly",
)
MANAGED = "<!-- Managed by Jenkins Job Builder -->"
# Parameters that a build cannot do without (an empty value fails later, in the build).
REQUIRED_PARAMS = {
    "REPO_URL": "is the repository to pull",
    "REF": "is the branch, tag or commit to pull",
    "TWEAKOPS_HOME": "is the run store the jobs share",
    "TWEAKOPS_RUNTIME": "says where trials run (docker, auto or local)",
}  # JJB's mark: literal text on a page


@dataclass(frozen=True)
class JenkinsSettings:
    """The values users change, from jobs/settings.yaml; the templates get them as variables."""

    repo_url: str
    prefix: str = "tweakops-"
    branch: str = "main"
    agent_label: str = ""
    tweakops_home: str = "/var/lib/tweakops"
    threshold: str = ""  # job1's THRESHOLD default; empty: the repository's tweakops.yaml
    max_trials: str = ""  # job1's MAX_TRIALS default; empty: the repository's tweakops.yaml
    watchdog_schedule: str = "H/5 * * * *"
    poll_schedule: str = "H/2 * * * *"
    trigger_token: str | None = None
    view_name: str = "tweakops"
    runtime: str = "docker"  # docker: trials only in containers, the local runtime forbidden

    def variables(self) -> dict[str, Any]:
        """The settings as jenkins-job-builder project variables."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["local_runtime"] = "forbid" if self.runtime == "docker" else "allow"
        return values


@dataclass(frozen=True)
class RenderedJobs:
    """Rendered config.xml text by job name and by view name, and which view kind was chosen."""

    jobs: dict[str, str]
    views: dict[str, str]
    view_kind: ViewKind
    chain_kind: ChainKind = "parameterized"


def _is_cron(value: str) -> bool:
    parts = value.split()
    aliases = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
    fields_ok = len(parts) == 5 and all(re.fullmatch(r"[0-9*H()/,-]+", p) for p in parts)
    return value.strip() in aliases or fields_ok


_CRON = "a Jenkins cron spec: 5 fields like 'H/5 * * * *', or @hourly, @daily ..."
_RULES: dict[str, tuple[Callable[[str], object], str]] = {
    "agent_label": (lambda v: True, "any label expression; empty: any agent"),
    "prefix": (re.compile(r"[A-Za-z0-9._-]*").fullmatch, "letters, digits, '.', '_', '-' only"),
    "tweakops_home": (lambda v: v.startswith("/"), "an absolute path on the agent"),
    "watchdog_schedule": (_is_cron, _CRON),
    "poll_schedule": (_is_cron, _CRON),
    "trigger_token": (re.compile(r"[A-Za-z0-9._~-]+").fullmatch, "URL-safe text, or none"),
    "runtime": (lambda v: v in ("docker", "auto", "local"), "docker, auto or local"),
    "threshold": (lambda v: True, "empty, or a threshold like 0.97"),
    "max_trials": (lambda v: True, "empty, or a whole number"),
    "view_name": (
        re.compile(r"[A-Za-z0-9._-]([A-Za-z0-9 ._-]*[A-Za-z0-9._-])?").fullmatch,
        "letters, digits, inner spaces, '.', '_' and '-'",
    ),
}
_GIT_CHECKS: dict[str, Callable[[str], None]] = {"repo_url": check_source, "branch": check_ref}


def _as_text(key: str, value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{key} in {where} must be text, got {value!r}")
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text) or "{" in text or "}" in text:
        raise ConfigError(
            f"{key} in {where} must be one line without {{ or }} "
            f"(jenkins-job-builder reads braces as variables), got {text!r}"
        )
    return text


def _parse_value(key: str, value: object, where: str) -> str | None:
    if key == "trigger_token" and (value is None or str(value).lower() == "none"):
        return None
    empty_ok = key in ("agent_label", "threshold", "max_trials")
    text = _as_text(key, "" if value is None and empty_ok else value, where)
    accepts, expected = _RULES.get(key, (str.strip, "a non-empty value"))
    if not accepts(text):
        raise ConfigError(f"{key} in {where} is {text!r}: expected {expected}")
    try:
        _GIT_CHECKS.get(key, lambda v: None)(text)
    except RepoError as error:
        raise ConfigError(f"{key} in {where}: {error}") from None
    if key in ("threshold", "max_trials") and text:
        parse_config({key: text}, where)  # the same rules as `tweakops pull --threshold ...`
    return text


def load_settings(path: Path | None = None) -> JenkinsSettings:
    """Read and validate the settings file (default jobs/settings.yaml)."""
    path = path or JOBS_DIR / SETTINGS_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read Jenkins settings {path}: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of settings, got {type(raw).__name__}")
    allowed = [f.name for f in fields(JenkinsSettings)]
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {path}: allowed are {', '.join(allowed)}")
    if raw.get("repo_url") is None:
        raise ConfigError(f"repo_url is missing in {path}: give the Git URL of the ML code")
    values: dict[str, Any] = {k: _parse_value(k, v, str(path)) for k, v in raw.items()}
    return JenkinsSettings(**values)


def _project_yaml(settings: JenkinsSettings, view_kind: ViewKind, chain_kind: ChainKind) -> str:
    project = {
        "name": "tweakops",
        "jobs": [JOB_GROUP],
        "views": [VIEW_TEMPLATES[view_kind]],
        **settings.variables(),
        **chain_links(settings.prefix, chain_kind),
    }
    return yaml.safe_dump([{"project": project}], sort_keys=False)


def chain_links(prefix: str, kind: ChainKind) -> dict[str, list[Any]]:
    """The triggers_<job> and publishers_<job> variables of the templates for a chain kind:
    parameterized-trigger publishers that pass the run on, or core reverse triggers."""
    links: dict[str, list[Any]] = {}
    for upstream, downstream, condition in LINKS:
        up, down = upstream.split("-")[0], downstream.split("-")[0]
        publishers: list[Any] = []
        triggers: list[Any] = []
        if kind == "parameterized":
            trigger: dict[str, Any] = {
                "project": [prefix + downstream],
                "condition": condition,
                "current-parameters": True,
            }
            if upstream == "job1-pull":
                trigger.update({"property-file": RUN_FILE, "fail-on-missing": True})
            publishers.append({"trigger-parameterized-builds": [trigger]})
        else:
            result = "unstable" if condition == "UNSTABLE_OR_BETTER" else "success"
            triggers.append({"reverse": {"jobs": prefix + upstream, "result": result}})
        links[f"publishers_{up}"] = publishers
        links[f"triggers_{down}"] = triggers
    return links


def modernize(xml: str) -> str:
    """A rendered job or view as Jenkins keeps it: JJB's HTML comment out of the description
    (plain text there), and the fields current plugins drop left out."""
    root = ET.fromstring(xml)
    description = root.find("description")
    if description is not None and description.text:
        description.text = description.text.replace(MANAGED, "")
    for path in DROPPED_FIELDS:
        parent_path, _, name = path.rpartition("/")
        for parent in root.findall(parent_path):
            for child in parent.findall(name):
                parent.remove(child)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _jjb_config() -> Any:
    """A jenkins-job-builder config with its defaults only (no user or system jenkins_jobs.ini)."""
    from jenkins_jobs.config import JJBConfig

    with tempfile.TemporaryDirectory(prefix="tweakops-jjb-") as tmp:
        ini = Path(tmp) / "jenkins_jobs.ini"
        ini.write_text("[job_builder]\n", encoding="utf-8")
        config = JJBConfig(str(ini))
    config.validate()
    return config


def _generate(sources: list[Any]) -> tuple[list[Any], list[Any]]:
    """Run jenkins-job-builder as `jenkins-jobs test` does: load, expand, generate XML."""
    from jenkins_jobs.loader import load_files
    from jenkins_jobs.registry import ModuleRegistry
    from jenkins_jobs.roots import Roots
    from jenkins_jobs.xml_config import XmlJobGenerator, XmlViewGenerator

    config = _jjb_config()
    roots = Roots(config)
    load_files(config, roots, sources)
    registry = ModuleRegistry(config, [])  # no plugin versions: the same XML for every server
    registry.set_macros(roots.macros)
    jobs, views = roots.generate_jobs(), roots.generate_views()
    registry.amend_job_dicts(jobs)
    return XmlJobGenerator(registry).generateXML(jobs), XmlViewGenerator(registry).generateXML(
        views
    )


def render(
    settings: JenkinsSettings | None = None,
    pipeline_view: bool = True,
    jobs_dir: Path = JOBS_DIR,
    chain_kind: ChainKind = "parameterized",
) -> RenderedJobs:
    """Render jobs_dir's templates with the settings: six jobs linked the `chain_kind` way and
    one view (pipeline or list)."""
    from jenkins_jobs.errors import JenkinsJobsException

    settings = settings or load_settings(jobs_dir / SETTINGS_FILE)
    kind: ViewKind = "pipeline" if pipeline_view else "list"
    templates = sorted(
        p for p in jobs_dir.glob("*.yaml") if p.is_file() and p.name != SETTINGS_FILE
    )
    if not templates:
        raise ConfigError(f"no job templates (*.yaml besides {SETTINGS_FILE}) in {jobs_dir}")
    try:
        project = io.StringIO(_project_yaml(settings, kind, chain_kind))
        xml_jobs, xml_views = _generate([*templates, project])
    except JenkinsJobsException as error:
        pos: Any = error.pos
        where = f" at {pos.path}:{pos.line + 1}" if pos is not None and pos.path else ""
        raise ConfigError(f"jobs in {jobs_dir} do not render{where}: {error}") from None
    jobs = {x.name: modernize(x.output().decode("utf-8")) for x in xml_jobs}
    views = {x.name: modernize(x.output().decode("utf-8")) for x in xml_views}
    clash = sorted(set(jobs) & set(views))
    if clash:
        raise ConfigError(f"view_name {clash[0]!r} is also a job name: choose another view_name")
    return RenderedJobs(jobs, views, kind, chain_kind)


def write_rendered(rendered: RenderedJobs, out_dir: Path) -> list[Path]:
    """Write <name>.xml for every job and view into out_dir; return the paths written."""
    items = {**rendered.jobs, **rendered.views}
    return [atomic_write(out_dir / f"{name}.xml", xml) for name, xml in sorted(items.items())]


def canonical_xml(text: str) -> str:
    """XML in C14N form with insignificant whitespace stripped, for comparing renders."""
    return ET.canonicalize(text, strip_text=True)


def upstream_edges(rendered: RenderedJobs) -> dict[str, list[str]]:
    """Each job's upstream jobs, read from its ReverseBuildTrigger or from the upstream's
    parameterized-trigger publishers."""
    edges: dict[str, list[str]] = {}
    for name, xml in rendered.jobs.items():
        root = ET.fromstring(xml)
        for trigger in root.findall(REVERSE_TRIGGER):
            names = (trigger.findtext("upstreamProjects") or "").split(",")
            edges.setdefault(name, []).extend(n.strip() for n in names if n.strip())
        for config in root.findall(PARAMETERIZED_CONFIG):
            for downstream in (config.findtext("projects") or "").split(","):
                if downstream.strip():
                    edges.setdefault(downstream.strip(), []).append(name)
    return edges


def chain(rendered: RenderedJobs) -> list[str]:
    """Jobs linked by reverse triggers, upstream first (ties by name)."""
    edges = upstream_edges(rendered)
    members = set(edges) | {up for ups in edges.values() for up in ups}
    waiting = {job: set(edges.get(job, [])) for job in members}
    order: list[str] = []
    while waiting:
        ready = sorted(job for job, ups in waiting.items() if not ups - set(order))
        if not ready:
            raise ConfigError(f"the reverse triggers form a cycle among {sorted(waiting)}")
        order.append(ready[0])
        del waiting[ready[0]]
    return order


def main(argv: list[str] | None = None) -> None:
    """`python -m tweakops.jenkins.jobs --out DIR`: render the jobs and the view to a folder."""
    parser = argparse.ArgumentParser(prog="python -m tweakops.jenkins.jobs", description=__doc__)
    parser.add_argument(
        "--out", type=Path, required=True, help="write <name>.xml of the jobs and view here"
    )
    parser.add_argument("--settings", type=Path, help="settings file (default jobs/settings.yaml)")
    parser.add_argument("--list-view", action="store_true", help="a list view, not the pipeline")
    args = parser.parse_args(argv)
    try:
        rendered = render(load_settings(args.settings), pipeline_view=not args.list_view)
        paths = write_rendered(rendered, args.out)
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
