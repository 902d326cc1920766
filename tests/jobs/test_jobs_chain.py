"""The freestyle chain's shell steps run as Jenkins runs them, in chain order, on a real repo.

No Jenkins here: each job's `hudson.tasks.Shell` commands from the rendered XML run with
`sh -xe` in the job's own workspace, with the job's parameters (their defaults, REPO_URL
pointed at a real git repo) and WORKSPACE set, as Jenkins would. Then the files the job's
publishers pick up must be in its workspace.
"""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from tests.jobs.test_jobs_render import FIXTURES, commands
from tweakops.jenkins_jobs import chain, load_settings, render

PARAMETER_DEFAULTS = "properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions/*"


def parameters(element: ET.Element) -> dict[str, str]:
    """Each string parameter's default: what a build started by its upstream job gets."""
    return {p.findtext("name") or "": p.findtext("defaultValue") or "" for p in element.findall(PARAMETER_DEFAULTS)}


def run_job(element: ET.Element, workspace: Path, env: dict[str, str]) -> list[str]:
    """Every shell step of the job, stopping at the first that fails (as Jenkins does)."""
    workspace.mkdir(parents=True, exist_ok=True)
    job_env = {**env, **parameters(element), "WORKSPACE": str(workspace)}
    outputs = []
    for command in commands(element):
        done = subprocess.run(
            ["sh", "-xe", "-c", command],
            cwd=workspace,
            env=job_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"{command}\n{outputs[-1][-3000:]}"
    return outputs


def test_the_chain_pulls_trains_tunes_mails_and_archives_the_report(
    make_repo, tmp_path: Path
) -> None:
    repo = make_repo("iris-sklearn")
    home = tmp_path / "store"
    settings = replace(
        load_settings(FIXTURES / "settings.yaml"),
        repo_url=str(repo),
        branch="main",
        tweakops_home=str(home),
        threshold="0.95",
        max_trials="6",
    )
    rendered = render(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEAKOPS_")}
    env.update(CI="true", TWEAKOPS_RUNTIME="local")

    for name in chain(rendered):
        run_job(ET.fromstring(rendered.jobs[name]), tmp_path / "workspace" / name, env)

    job5 = tmp_path / "workspace" / "fx-job5-notify"
    report = job5 / "report.html"  # what the ArtifactArchiver of job5 archives
    html = report.read_text(encoding="utf-8")
    assert 'class="stage stage-succeeded" data-stage="notify"' in html  # written after the email
    assert '<img id="accuracy-plot" src="data:image/png;base64,' in html
    assert (job5 / "tweakops-junit.xml").is_file()
    status = subprocess.run(
        ["tweakops", "--json", "status", "--source", str(repo)],
        env={**env, "TWEAKOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(status.stdout)
    assert shown["run"]["status"] == "reached"
    stages = {s["name"]: s["status"] for s in shown["stages"]}
    assert [stages[s] for s in ("pull", "inspect", "train", "tune", "notify")] == ["succeeded"] * 5
    assert report.read_bytes() == (home / "runs" / shown["run"]["id"] / "report.html").read_bytes()
