"""Jenkins jobs as data: jobs/settings.yaml + jobs/*.yaml rendered to XML by jenkins-job-builder."""

from __future__ import annotations

import argparse
import io
import re
import shutil
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
from tweakops.gitpull import check_ref, check_source

ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = ROOT / "jobs"
SETTINGS_FILE = "settings.yaml"
FIXTURES_DIR = ROOT / "tests" / "jobs" / "fixtures"
JOB_GROUP = "tweakops-chain"  # the job-group in jobs/tweakops-jobs.yaml
VIEW_TEMPLATES = {"pipeline": "tweakops-pipeline-view", "list": "tweakops-list-view"}
REVERSE_TRIGGER = "triggers/jenkins.triggers.ReverseBuildTrigger"

ViewKind = Literal["pipeline", "list"]


@dataclass(frozen=True)
class JenkinsSettings:
    """The values users change, from jobs/settings.yaml; the templates get them as variables."""

    repo_url: str
    prefix: str = "tweakops-"
    branch: str = "main"
    agent_label: str = ""
    tweakops_home: str = "/var/lib/tweakops"
    threshold: str = "0.97"
    max_trials: str = "12"
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
    text = _as_text(key, "" if value is None and key == "agent_label" else value, where)
    accepts, expected = _RULES.get(key, (str.strip, "a non-empty value"))
    if not accepts(text):
        raise ConfigError(f"{key} in {where} is {text!r}: expected {expected}")
    try:
        _GIT_CHECKS.get(key, lambda v: None)(text)
    except RepoError as error:
        raise ConfigError(f"{key} in {where}: {error}") from None
    if key in ("threshold", "max_trials"):
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


def _project_yaml(settings: JenkinsSettings, view_kind: ViewKind) -> str:
    project = {
        "name": "tweakops",
        "jobs": [JOB_GROUP],
        "views": [VIEW_TEMPLATES[view_kind]],
        **settings.variables(),
    }
    return yaml.safe_dump([{"project": project}], sort_keys=False)


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
    settings: JenkinsSettings | None = None, pipeline_view: bool = True, jobs_dir: Path = JOBS_DIR
) -> RenderedJobs:
    """Render jobs_dir's templates with the settings: six jobs and one view (pipeline or list)."""
    from jenkins_jobs.errors import JenkinsJobsException

    settings = settings or load_settings(jobs_dir / SETTINGS_FILE)
    kind: ViewKind = "pipeline" if pipeline_view else "list"
    templates = sorted(
        p for p in jobs_dir.glob("*.yaml") if p.is_file() and p.name != SETTINGS_FILE
    )
    if not templates:
        raise ConfigError(f"no job templates (*.yaml besides {SETTINGS_FILE}) in {jobs_dir}")
    try:
        xml_jobs, xml_views = _generate([*templates, io.StringIO(_project_yaml(settings, kind))])
    except JenkinsJobsException as error:
        pos: Any = error.pos
        where = f" at {pos.path}:{pos.line + 1}" if pos is not None and pos.path else ""
        raise ConfigError(f"jobs in {jobs_dir} do not render{where}: {error}") from None
    jobs = {x.name: x.output().decode("utf-8") for x in xml_jobs}
    views = {x.name: x.output().decode("utf-8") for x in xml_views}
    clash = sorted(set(jobs) & set(views))
    if clash:
        raise ConfigError(f"view_name {clash[0]!r} is also a job name: choose another view_name")
    return RenderedJobs(jobs, views, kind)


def write_rendered(rendered: RenderedJobs, out_dir: Path) -> list[Path]:
    """Write <name>.xml for every job and view into out_dir; return the paths written."""
    items = {**rendered.jobs, **rendered.views}
    return [atomic_write(out_dir / f"{name}.xml", xml) for name, xml in sorted(items.items())]


def canonical_xml(text: str) -> str:
    """XML in C14N form with insignificant whitespace stripped, for comparing renders."""
    return ET.canonicalize(text, strip_text=True)


def upstream_edges(rendered: RenderedJobs) -> dict[str, list[str]]:
    """Each job's upstream jobs, read from its ReverseBuildTrigger."""
    edges: dict[str, list[str]] = {}
    for name, xml in rendered.jobs.items():
        for trigger in ET.fromstring(xml).findall(REVERSE_TRIGGER):
            names = (trigger.findtext("upstreamProjects") or "").split(",")
            edges.setdefault(name, []).extend(n.strip() for n in names if n.strip())
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


def regenerate_fixtures(fixtures_dir: Path = FIXTURES_DIR, jobs_dir: Path = JOBS_DIR) -> list[Path]:
    """Rewrite the golden XML files from jobs_dir with fixtures_dir/settings.yaml (both views)."""
    settings = load_settings(fixtures_dir / SETTINGS_FILE)
    renders = {kind: render(settings, kind == "pipeline", jobs_dir) for kind in VIEW_TEMPLATES}
    for old in fixtures_dir.glob("*.xml"):  # only after both rendered: a failure keeps the old
        old.unlink()
    shutil.rmtree(fixtures_dir / "views", ignore_errors=True)
    written = write_rendered(RenderedJobs(renders["pipeline"].jobs, {}, "pipeline"), fixtures_dir)
    for kind, rendered in renders.items():
        views_only = RenderedJobs({}, rendered.views, rendered.view_kind)
        written += write_rendered(views_only, fixtures_dir / "views" / kind)
    return written


def main(argv: list[str] | None = None) -> None:
    """`python -m tweakops.jenkins_jobs`: regenerate the golden files, or render to a folder."""
    parser = argparse.ArgumentParser(prog="python -m tweakops.jenkins_jobs", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--regenerate-fixtures",
        action="store_true",
        help=f"rewrite {FIXTURES_DIR.relative_to(ROOT)} from jobs/ (on purpose)",
    )
    action.add_argument("--out", type=Path, help="write <name>.xml of the jobs and view here")
    parser.add_argument("--settings", type=Path, help="settings file (default jobs/settings.yaml)")
    parser.add_argument("--list-view", action="store_true", help="a list view, not the pipeline")
    args = parser.parse_args(argv)
    try:
        if args.regenerate_fixtures:
            paths = regenerate_fixtures()
        else:
            rendered = render(load_settings(args.settings), pipeline_view=not args.list_view)
            paths = write_rendered(rendered, args.out)
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
