"""The freestyle chain's shell steps run as Jenkins runs them, in chain order, on a real repo.

No Jenkins here (tests/integration/test_jenkins_real.py has one, opt-in): each job's
`hudson.tasks.Shell` commands from the rendered XML run with `sh -xe` in the job's own
workspace, with what Jenkins gives a build: its parameters, WORKSPACE, BUILD_URL, JOB_NAME
and BUILD_NUMBER. How a downstream build gets its parameters follows the chain kind:
parameterized-trigger passes job1's parameters and its tweakops-run.properties down; core
reverse triggers start it with the defaults. Overlapping pushes are played as Jenkins
queues them: two job1 builds before any downstream build, and (core) one downstream build
for both, since Jenkins merges identical queued builds.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.test_jobs_render import FIXTURES, commands
from tweakops.jenkins.jobs import RUN_FILE, ChainKind, RenderedJobs, chain, load_settings, render

PARAMETER_DEFAULTS = "properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions/*"
JENKINS = "http://jenkins.invalid/"  # never contacted: no JENKINS_URL credentials are set
_numbers = itertools.count(1)


def parameters(element: ET.Element) -> dict[str, str]:
    """Each string parameter's default: what a build started without parameters gets."""
    found = element.findall(PARAMETER_DEFAULTS)
    return {p.findtext("name") or "": p.findtext("defaultValue") or "" for p in found}


def run_build(
    name: str, element: ET.Element, workspace: Path, env: dict[str, str], given: dict[str, str]
) -> dict[str, str]:
    """One build: every shell step, stopping at the first that fails (as Jenkins does).
    Returns the parameters it ran with."""
    workspace.mkdir(parents=True, exist_ok=True)
    number = next(_numbers)
    params = {**parameters(element), **{k: v for k, v in given.items() if k in parameters(element)}}
    build_env = {
        **env,
        **params,
        "WORKSPACE": str(workspace),
        "JOB_NAME": name,
        "BUILD_NUMBER": str(number),
        "BUILD_URL": f"{JENKINS}job/{name}/{number}/",
    }
    for command in commands(element):
        done = subprocess.run(
            ["sh", "-xe", "-c", command],
            cwd=workspace,
            env=build_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{(done.stdout + done.stderr)[-3000:]}"
    return params


def passed_down(kind: ChainKind, upstream: dict[str, str], workspace: Path) -> dict[str, str]:
    """What the downstream build gets: the upstream's parameters and job1's property file
    (parameterized-trigger), or nothing (a core trigger: the job's defaults)."""
    if kind == "core":
        return {}
    run_file = workspace / RUN_FILE
    extra = (
        dict(line.split("=", 1) for line in run_file.read_text().split())
        if run_file.exists()
        else {}
    )
    return {**upstream, **extra}


@pytest.fixture
def chain_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEAKOPS_", "JENKINS_"))}
    env.update(CI="true", TWEAKOPS_RUNTIME="local", TWEAKOPS_NOTIFY_TO="ml@example.org")
    return env


def rendered_for(repo: Path, home: Path, kind: ChainKind) -> RenderedJobs:
    settings = replace(
        load_settings(FIXTURES / "settings.yaml"),
        repo_url=str(repo),
        branch="main",
        tweakops_home=str(home),
        threshold="0.9",
        max_trials="3",
    )
    return render(settings, chain_kind=kind)


def stored_runs(home: Path, env: dict[str, str], repo: Path) -> list[dict[str, Any]]:
    shown = subprocess.run(
        ["tweakops", "--json", "runs", "--source", str(repo)],
        env={**env, "TWEAKOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    runs: list[dict[str, Any]] = json.loads(shown.stdout)
    return runs


def snapshot(home: Path, env: dict[str, str], run_id: str) -> dict[str, Any]:
    shown = subprocess.run(
        ["tweakops", "--json", "status", "--run", run_id],
        env={**env, "TWEAKOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


@pytest.mark.parametrize("kind", ["parameterized", "core"])
def test_two_overlapping_pushes_are_two_runs_each_tuned_and_reported_once(
    kind: ChainKind, make_repo, tmp_path: Path, chain_env: dict[str, str]
) -> None:
    repo, home = make_repo("iris-sklearn"), tmp_path / "store"
    rendered = rendered_for(repo, home, kind)
    names = chain(rendered)
    jobs = {name: ET.fromstring(rendered.jobs[name]) for name in names}
    workspace = {name: tmp_path / "workspace" / name for name in names}

    # Two pushes: job1 builds twice before any downstream build starts.
    first = run_build(names[0], jobs[names[0]], workspace[names[0]], chain_env, {})
    queued = [passed_down(kind, first, workspace[names[0]])]
    second = run_build(names[0], jobs[names[0]], workspace[names[0]], chain_env, {})
    queued.append(passed_down(kind, second, workspace[names[0]]))
    if kind == "core":
        queued = queued[:1]  # two identical queued builds: Jenkins keeps one
    for name in names[1:]:
        done = [run_build(name, jobs[name], workspace[name], chain_env, q) for q in queued]
        queued = [passed_down(kind, params, workspace[name]) for params in done]

    runs = stored_runs(home, chain_env, repo)
    assert len(runs) == 2
    for run in runs:
        shown = snapshot(home, chain_env, run["id"])
        assert shown["run"]["status"] == "reached", shown["run"]
        stages = {s["name"]: s["status"] for s in shown["stages"]}
        assert [stages[s] for s in ("pull", "inspect", "train", "tune", "notify")] == [
            "succeeded"
        ] * 5
        emails = list((home / "runs" / run["id"] / "outbox").glob("*.eml"))
        assert len(emails) == 1, emails  # no SMTP server here: kept, exactly one per run

    job5 = workspace[names[-1]]
    junit = ET.parse(job5 / "tweakops-junit.xml").getroot()
    last_run = runs[0]["id"]  # newest first
    if kind == "parameterized":  # the last job5 build worked on its own run only
        assert junit.tag == "testsuite"
        assert {p.get("value") for p in junit.iter("property") if p.get("name") == "run_id"} == {
            last_run
        }
    else:  # one job5 build did both runs: a suite each, told apart by run id
        assert junit.tag == "testsuites"
        assert sorted(s.get("name") for s in junit) == sorted(f"tweakops {r['id']}" for r in runs)
        classes = {c.get("classname") for c in junit.iter("testcase")}
        assert f"{last_run}.tweakops.threshold" in classes
    archived = job5 / "tweakops-artifacts" / last_run
    html = (archived / "report.html").read_text(encoding="utf-8")
    assert 'class="stage stage-succeeded" data-stage="notify"' in html  # written after the email
    assert '<img id="accuracy-plot" src="data:image/png;base64,' in html


def test_a_chain_build_with_nothing_waiting_says_so_and_succeeds(
    make_repo, tmp_path: Path, chain_env: dict[str, str]
) -> None:
    """A core-chain build whose runs an earlier build already took has nothing to do."""
    repo, home = make_repo("iris-sklearn"), tmp_path / "store"
    rendered = rendered_for(repo, home, "core")
    name = chain(rendered)[4]  # job5-notify
    workspace = tmp_path / "workspace" / name
    run_build(name, ET.fromstring(rendered.jobs[name]), workspace, chain_env, {})
    assert not (workspace / "tweakops-junit.xml").exists()  # the JUnit step allows none
