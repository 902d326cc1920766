"""What a Jenkins chain relies on, with real parts: the real CLI in a subprocess, real git repos,
a real SMTP server (aiosmtpd) and the REST stand-in for the build descriptions.

A result is emailed once (a rerun does not mail everyone again, --again / TWEAKOPS_NOTIFY_AGAIN
does); a stage run again reopens its run so that the stages after it are taken up again; a
failed stage fails its run, which no `--waiting` job then takes; a pushed commit keeps the
branch it was pushed to; the email says where each setting came from; each build's
description names its run; the watchdog job publishes the runs it resumed.
"""

from __future__ import annotations

import email
import json
import os
import signal
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import train_in_background
from tests.integration.test_notify_e2e import bodies, text_summary
from tests.integration.test_resume import COUNTER_SCRIPT, wait_for_epoch
from tests.jenkins_standin import StandInJenkins, standin_jenkins_factory

assert standin_jenkins_factory  # the `standin_jenkins` fixture
SmtpServer = Any
Cli = Callable[..., subprocess.CompletedProcess[str]]
# Accuracy 0.5 + quality: trial 0 (quality 0.0) meets a threshold of 0.5 at once.
QUICK = COUNTER_SCRIPT.replace('"epochs", 20', '"epochs", 2').replace("0.2)", "0.01)")
TOKEN = "standin-token-1"


def mail_env(server: SmtpServer) -> dict[str, str]:
    return {
        "TWEAKOPS_SMTP_HOST": server.host,
        "TWEAKOPS_SMTP_PORT": str(server.port),
        "TWEAKOPS_NOTIFY_TO": "ml@example.org",
    }


def run_id_of(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def status(cli: Cli, run_id: str) -> dict[str, Any]:
    shown = cli("--json", "status", "--run", run_id)
    assert shown.returncode == 0, shown.stderr
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def stage_states(cli: Cli, run_id: str) -> dict[str, str]:
    return {s["name"]: s["status"] for s in status(cli, run_id)["stages"]}


def chain(cli: Cli, run_id: str, **env: str) -> None:
    """inspect, train, tune, notify on one run, as jobs 2-5 do."""
    for stage in ("inspect", "train", "tune", "notify"):
        done = cli(stage, "--run", run_id, **env)
        assert done.returncode == 0, f"{stage}: {done.stderr}"


def emailed_run(make_repo: Callable[..., Path], cli: Cli, env: dict[str, str]) -> str:
    """A run that reached its threshold of 0.5 and was emailed, stage by stage as the jobs do."""
    repo = make_repo(files={"train.py": QUICK, "tweakops.yaml": "threshold: 0.5\n"})
    run_id = run_id_of(cli("pull", str(repo)))
    chain(cli, run_id, **env)
    return run_id


def test_a_result_is_emailed_once_unless_asked_again(
    make_repo: Callable[..., Path], cli: Cli, smtp_server: SmtpServer
) -> None:
    env = mail_env(smtp_server)
    run_id = emailed_run(make_repo, cli, env)
    assert len(smtp_server.messages) == 1

    again = cli("notify", "--run", run_id, **env)  # job5 rerun by hand: same result
    assert again.returncode == 0, again.stderr
    assert "this result was emailed already (ml@example.org at " in again.stdout + again.stderr
    assert len(smtp_server.messages) == 1
    assert cli("notify", "--run", run_id, "--again", **env).returncode == 0
    assert len(smtp_server.messages) == 2
    assert cli("notify", "--run", run_id, TWEAKOPS_NOTIFY_AGAIN="", **env).returncode == 0
    assert len(smtp_server.messages) == 2  # the job parameter left empty: not again
    assert cli("notify", "--run", run_id, TWEAKOPS_NOTIFY_AGAIN="true", **env).returncode == 0
    assert len(smtp_server.messages) == 3


def test_a_stage_run_again_reopens_the_run_for_the_jobs_after_it(
    make_repo: Callable[..., Path], cli: Cli, smtp_server: SmtpServer
) -> None:
    env = mail_env(smtp_server)
    run_id = emailed_run(make_repo, cli, env)
    assert status(cli, run_id)["run"]["status"] == "reached"

    assert cli("train", "--run", run_id, "--again").returncode == 0  # job3 rerun
    states = stage_states(cli, run_id)
    assert (states["train"], states["tune"], states["notify"]) == (
        "succeeded",
        "pending",
        "pending",
    )
    shown = status(cli, run_id)
    assert shown["run"]["status"] == "running"
    reopened = [e for e in shown["events"] if e["kind"] == "run_reopened"]
    assert reopened[-1]["message"] == (
        "train runs again: the run was reached; tune, notify will run again"
    )
    for stage in ("tune", "notify"):  # what core-chain jobs 4 and 5 do
        done = cli(stage, "--waiting", **env)
        assert done.returncode == 0, done.stderr
    assert status(cli, run_id)["run"]["status"] == "reached"
    assert len(smtp_server.messages) == 1  # the same result: not emailed twice


def test_a_failed_stage_fails_its_run_and_no_waiting_job_takes_it(
    make_repo: Callable[..., Path], cli: Cli
) -> None:
    broken = "import sklearn\nraise SystemExit('no data here')\n"
    repo = make_repo(files={"train.py": broken, "tweakops.yaml": "threshold: 0.5\n"})
    run_id = run_id_of(cli("pull", str(repo)))
    assert cli("inspect", "--run", run_id).returncode == 0
    assert cli("train", "--run", run_id).returncode != 0
    shown = status(cli, run_id)
    assert shown["run"]["status"] == "failed"
    assert shown["run"]["verdict"].startswith("train failed: ")
    waiting = cli("tune", "--waiting")
    assert (waiting.returncode, waiting.stdout.strip()) == (0, "no run waits for tune")
    swept = json.loads(cli("--json", "watch", "--all").stdout)
    assert swept["runs"] == []  # not "running": the watchdog leaves it alone


def test_a_pushed_commit_keeps_its_branch_and_the_email_says_where_settings_came_from(
    make_repo: Callable[..., Path], cli: Cli, smtp_server: SmtpServer, home: Path
) -> None:
    repo = make_repo(files={"train.py": QUICK, "tweakops.yaml": "threshold: 0.5\n"})
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    env = mail_env(smtp_server)
    pulled = cli("pull", str(repo), "--ref", sha, "--branch", "main", "--max-trials", "2")
    run_id = run_id_of(pulled)
    chain(cli, run_id, **env)
    (mail,) = smtp_server.messages
    message = email.message_from_bytes(mail.content, policy=default_policy)
    summary = text_summary(bodies(message)[0])  # type: ignore[arg-type]
    assert summary["Branch"] == "main" and summary["Commit"] == sha[:10]
    assert summary["Settings from"] == (
        "threshold 0.5 from tweakops.yaml; max_trials 2 from --max-trials (Jenkins: "
        "MAX_TRIALS); time_budget 3600 s from default"
    )
    report = (home / "runs" / run_id / "report.html").read_text()
    assert "threshold 0.5 from tweakops.yaml" in report

    overridden = run_id_of(cli("pull", str(repo), "--threshold", "0.45"))
    chain(cli, overridden, **env)
    message = email.message_from_bytes(smtp_server.messages[-1].content, policy=default_policy)
    summary = text_summary(bodies(message)[0])  # type: ignore[arg-type]
    assert summary["Settings from"].startswith(
        "threshold 0.45 from --threshold (Jenkins: THRESHOLD); max_trials 10 from default"
    )


@pytest.fixture
def standin(standin_jenkins: Callable[..., StandInJenkins]) -> StandInJenkins:
    server = standin_jenkins(users={"agent": TOKEN})
    for job in ("job1-pull", "job6-watchdog"):
        server.jobs[job] = "<project><properties/></project>"
    return server


def build_env(standin: StandInJenkins, job: str) -> dict[str, str]:
    """What Jenkins gives a build of `job` (its next number) and what the agent has."""
    number = standin.add_build(job, None)  # building
    return {
        "BUILD_URL": f"{standin.url}/job/{job}/{number}/",
        "JOB_NAME": job,
        "BUILD_NUMBER": str(number),
        "JENKINS_URL": standin.url,
        "JENKINS_USER": "agent",
        "JENKINS_API_TOKEN": TOKEN,
    }


def test_each_build_describes_the_run_it_worked_on(
    make_repo: Callable[..., Path], cli: Cli, standin: StandInJenkins
) -> None:
    repo = make_repo(files={"train.py": QUICK})
    run_id = run_id_of(cli("pull", str(repo), **build_env(standin, "job1-pull")))
    (build,) = standin.builds["job1-pull"]
    assert build.description.startswith(f"run {run_id}: pull succeeded (")
    assert build.display_name == f"#1 run {run_id}"  # what the Build Pipeline view's card shows
    assert status(cli, run_id)["run"]["build_url"] == f"{standin.url}/job/job1-pull/1/"


def test_a_job_made_again_does_not_inherit_the_runs_of_its_old_builds(
    make_repo: Callable[..., Path], cli: Cli, home: Path, standin: StandInJenkins, tmp_path: Path
) -> None:
    """A deleted and recreated job counts from #1 again: its build URLs name old builds too."""
    repo = make_repo(files={"train.py": QUICK})
    old = run_id_of(cli("pull", str(repo), **build_env(standin, "job1-pull")))
    with sqlite3.connect(home / "tweakops.db") as db:  # that build ran an hour ago
        db.execute("UPDATE tw_events SET time = time - 3600 WHERE run_id = ?", (old,))
    standin.builds["job1-pull"] = []  # the job is deleted and made again

    env = build_env(standin, "job1-pull")
    assert env["BUILD_URL"].endswith("/job1-pull/1/")
    new = run_id_of(cli("pull", str(repo), **env))
    (build,) = standin.builds["job1-pull"]
    assert build.description.startswith(f"run {new}: pull succeeded (")
    assert old not in build.description and build.display_name == f"#1 run {new}"
    junit = tmp_path / "junit.xml"
    shown = cli("status", "--this-build", "--junit", str(junit), **env)
    assert shown.returncode == 0, shown.stderr
    runs = [p.get("value") for p in ET.parse(junit).iter("property") if p.get("name") == "run_id"]
    assert runs == [new]


def test_the_watchdog_job_finishes_a_killed_run_and_publishes_it(
    make_repo: Callable[..., Path], cli: Cli, home: Path, standin: StandInJenkins, tmp_path: Path
) -> None:
    repo = make_repo(files={"train.py": COUNTER_SCRIPT, "tweakops.yaml": "threshold: 0.5\n"})
    run_id, train = train_in_background(cli, home, repo)
    trainer = wait_for_epoch(home / "runs" / run_id / "trials" / "000" / "output", 2)
    train.kill()  # job3's build is aborted with its agent process...
    train.wait()
    os.kill(trainer, signal.SIGKILL)  # ...and the training with it

    published = tmp_path / "workspace" / "tweakops-resumed"
    watched = cli(
        "watch", "--all", "--report-to", str(published), **build_env(standin, "job6-watchdog")
    )
    assert watched.returncode == 0, watched.stderr
    assert f"run {run_id}: resumed: resumed from train: threshold 0.5 reached" in watched.stdout
    suite = ET.parse(published / run_id / "tweakops-junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["threshold"].find("failure") is None  # the job6 build shows it green
    assert cases["notify"].find("failure") is None and cases["notify"].find("skipped") is None
    assert (published / run_id / "report.html").is_file()
    (build,) = standin.builds["job6-watchdog"]
    assert build.description.startswith(f"run {run_id}: notify succeeded")


def test_jenkins_init_writes_the_jenkinsfile_into_an_ml_repository(
    make_repo: Callable[..., Path], cli: Cli
) -> None:
    repo = make_repo(files={"train.py": QUICK})
    ours = (Path(__file__).resolve().parents[2] / "Jenkinsfile").read_text()
    done = cli("jenkins", "init", str(repo))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"wrote {repo / 'Jenkinsfile'}"
    assert "Pipeline script from SCM" in done.stdout
    assert (repo / "Jenkinsfile").read_text() == ours
    assert cli("jenkins", "init", str(repo)).stdout.startswith("unchanged ")
    (repo / "Jenkinsfile").write_text("pipeline {}\n")
    refused = cli("jenkins", "init", str(repo))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {repo / 'Jenkinsfile'} exists and differs from ours: keep it, or pass --force"
    )
    assert cli("jenkins", "init", str(repo), "--force").returncode == 0
    assert (repo / "Jenkinsfile").read_text() == ours
