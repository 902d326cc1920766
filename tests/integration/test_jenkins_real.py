"""The whole Jenkins story against a REAL Jenkins, when JENKINS_URL (and JENKINS_USER,
JENKINS_API_TOKEN, of an administrator) name one; skipped otherwise (CI has the stand-in and
the golden files). Loopback only: the ML repository is a bare repo in a temp folder
(file://, so Jenkins needs -Dhudson.plugins.git.GitSCM.ALLOW_LOCAL_CHECKOUT=true), the SMTP
server is aiosmtpd on 127.0.0.1 without AUTH, and the agent is the built-in node, which must
find `tweakops` on its PATH.

In file order, on one set of jobs with a unique prefix (deleted afterwards):
`tweakops jenkins sync` twice and across a Jenkins restart (TWEAKOPS_JENKINS_RESTART: a shell
command that restarts it; else POST /reload, which loads every job from disk the same way);
a push through the installed hook emailed with its branch; two pushes 1 s apart and three in
5 s, each run emailed exactly once and each build described with its own run; the repo's
threshold honoured and a THRESHOLD parameter overriding it; `jenkins rerun` not emailing the
same result twice unless asked; a killed `tweakops tune` finished by job6 with its email and a
green build with JUnit and report; the Jenkinsfile accepted by the declarative validator and
run as a Pipeline job with parameters and from the ML repository's SCM, with and without an
SMTP credential, against a relay without AUTH.

For the jobs' build descriptions the test gives the agent JENKINS_USER / JENKINS_API_TOKEN as
global environment variables (restored afterwards), as the README tells an admin to.
TWEAKOPS_JENKINS_SCREENSHOT=<png> also saves the Build Pipeline view after the overlapping
pushes (docs/make_jenkins_screenshot.py, headless Chromium).
"""

from __future__ import annotations

import email
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests

from notify.message import RUN_HEADER
from tests.conftest import run_tweakops
from tests.integration.conftest import SmtpServer, running_smtp
from tests.integration.test_notify_e2e import bodies, text_summary
from tests.integration.test_resume import COUNTER_SCRIPT
from tweakops.cli.jenkins import sync_jobs
from tweakops.errors import JenkinsError
from tweakops.jenkins.client import JenkinsClient, JenkinsConnection, connection_from_env
from tweakops.jenkins.jobs import JenkinsSettings, chain, load_settings, render
from tweakops.store import RunStore

pytestmark = pytest.mark.skipif(
    not os.environ.get("JENKINS_URL"),
    reason="JENKINS_URL not set: no real Jenkins here; the stand-in tests cover the REST calls",
)
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("TWEAKOPS_JENKINS_START_TIMEOUT", "120"))
CHAIN_TIMEOUT = 600.0
# test_resume's: accuracy 0.5 + quality; epochs sleep (a trial can be killed mid-way).
SCRIPT = COUNTER_SCRIPT.replace('"epochs", 20', '"epochs", 2').replace(
    '"epoch_seconds", 0.2', '"epoch_seconds", 0.05'
)
SLOW_TUNE = """\
threshold: 0.6
max_trials: 3
search_space:
  quality: [0.2]
  epochs: [16]
  epoch_seconds: [0.5]
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass
class Story:
    """The Jenkins, the jobs, the ML repository and what arrived by email."""

    client: JenkinsClient
    settings: JenkinsSettings
    settings_file: Path
    bare: Path
    work: Path
    home: Path  # the jobs' run store (TWEAKOPS_HOME)
    smtp: SmtpServer
    env: dict[str, str]  # the pusher's and the CLI's environment
    measured: dict[str, float] = field(default_factory=dict)

    @property
    def server(self) -> Any:
        return self.client._server

    def job(self, name: str) -> str:
        return self.settings.prefix + name

    def tweakops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_tweakops(self.home, *args, env=self.env, timeout=300)

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.work / name).write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self) -> list[str]:
        done = subprocess.run(
            ["git", "push", "-q", "origin", "main"],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        said = [line.removeprefix("remote:").strip() for line in done.stderr.splitlines()]
        lines = [line for line in said if line.startswith("tweakops:")]
        assert lines and lines[0].startswith("tweakops: triggered "), done.stderr
        return lines

    def mails(self) -> list[EmailMessage]:
        found = []
        for mail in list(self.smtp.messages):
            message = email.message_from_bytes(mail.content, policy=default_policy)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def mails_of(self, run_id: str) -> list[EmailMessage]:
        return [m for m in self.mails() if m[RUN_HEADER] == run_id]

    def runs(self) -> list[Any]:
        return RunStore(self.home, read_only=True).list_runs(limit=1000)

    def builds(self, job: str) -> list[dict[str, Any]]:
        info = self.server.get_job_info(self.job(job))
        return [
            self.server.get_build_info(self.job(job), int(b["number"]))
            for b in sorted(info.get("builds") or [], key=lambda b: b["number"])
        ]

    def wait_idle(self, timeout: float = CHAIN_TIMEOUT) -> None:
        """Until nothing of ours is queued or building (and stays so for 3 s)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            busy = any(
                self.settings.prefix in item["task"].get("name", "")
                for item in self.server.get_queue_info()
            )
            busy = busy or any(
                b.building for b in self.client.last_builds([self.job(n) for n in JOBS])
            )
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 3:
                return
            time.sleep(1)
        raise AssertionError(f"the chain was still busy after {timeout:g} s")


JOBS = ["job1-pull", "job2-inspect", "job3-train", "job4-tune", "job5-notify", "job6-watchdog"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = CHAIN_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def param(build: dict[str, Any], name: str) -> str | None:
    for action in build.get("actions") or []:
        for p in (action or {}).get("parameters") or []:
            if p.get("name") == name:
                return str(p.get("value"))
    return None


def groovy(server: Any, script: str) -> str:
    return str(server.run_script(script))


def set_global_env(server: Any, values: dict[str, str | None]) -> dict[str, str | None]:
    """Set (or, for None, remove) global environment variables; return their old values."""
    entries = json.dumps(values)
    script = f"""
import groovy.json.JsonSlurper
import hudson.slaves.EnvironmentVariablesNodeProperty
def j = jenkins.model.Jenkins.get()
def prop = j.globalNodeProperties.get(EnvironmentVariablesNodeProperty)
if (prop == null) {{
  prop = new EnvironmentVariablesNodeProperty()
  j.globalNodeProperties.add(prop)
}}
def old = [:]
new JsonSlurper().parseText('''{entries}''').each {{ k, v ->
  old[k] = prop.envVars.get(k)
  if (v == null) {{ prop.envVars.remove(k) }} else {{ prop.envVars.put(k, v) }}
}}
j.save()
print(groovy.json.JsonOutput.toJson(old))
"""
    old, _ = json.JSONDecoder().raw_decode(groovy(server, script))
    return dict(old)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    scratch = tmp_path_factory.mktemp("real-jenkins")
    client = JenkinsClient(connection_from_env(), cache_dir=scratch / "cache")
    client.check()
    bare, work, home = scratch / "ml.git", scratch / "work", scratch / "store"
    git(scratch, "init", "-q", "--bare", "-b", "main", str(bare))
    git(scratch, "clone", "-q", str(bare), str(work))
    for key, value in (("user.name", "data scientist"), ("user.email", "ds@example.org")):
        git(work, "config", key, value)
    unique = f"tweakops-test-{uuid.uuid4().hex[:6]}-"
    settings_file = scratch / "settings.yaml"
    settings_file.write_text(
        f"prefix: {unique}\nview_name: {unique}view\nrepo_url: file://{bare}\n"
        f"agent_label: ''\ntrigger_token: none\ntweakops_home: {home}\nruntime: local\n"
        "watchdog_schedule: '@yearly'\npoll_schedule: '@yearly'\n"
    )
    settings = load_settings(settings_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEAKOPS_", "GIT_"))}
    env.update(CI="true", TWEAKOPS_HOME=str(home))
    conn = client.conn
    remove_smtp_credential(client._server)  # left by an interrupted run of this file
    old_env = set_global_env(
        client._server, {"JENKINS_USER": conn.user, "JENKINS_API_TOKEN": conn.token}
    )
    with running_smtp() as smtp:
        story = Story(client, settings, settings_file, bare, work, home, smtp, env)
        try:
            yield story
        finally:
            rendered = render(settings, pipeline_view=False)
            client.delete([*rendered.jobs, *PIPELINES.values()], list(rendered.views))
            client.delete([], [settings.view_name])
            set_global_env(client._server, old_env)
            print("\nmeasured:", json.dumps(story.measured))


def repo_config(story: Story, extra: str = "threshold: 0.5\n") -> str:
    """The ML repository's own tweakops.yaml: its threshold, and the relay to mail through."""
    return extra + (
        f"notify:\n  to: [ml-team@example.org]\n  smtp:\n    host: 127.0.0.1\n"
        f"    port: {story.smtp.port}\n"
    )


def restart(story: Story) -> None:
    command = os.environ.get("TWEAKOPS_JENKINS_RESTART")
    if command:
        subprocess.run(command, shell=True, check=True, timeout=300)
    else:
        try:
            story.server.jenkins_open(requests.Request("POST", story.client.conn.url + "/reload"))
        except requests.HTTPError as exc:  # it redirects to a page that says "reloading" (503)
            assert exc.response is not None and exc.response.status_code == 503, exc
    wait_for("Jenkins to answer again", lambda: _answers(story), timeout=300)
    wait_for(
        "the jobs to load",
        lambda: story.job("job1-pull") in [j["name"] for j in story.server.get_all_jobs()],
        timeout=300,
    )


def _answers(story: Story) -> bool:
    try:
        story.client.check()
        return True
    except JenkinsError:
        return False


# -- sync ------------------------------------------------------------------------------------


def test_real_jenkins_answers_with_its_version(story: Story) -> None:
    assert story.client.check()[:1].isdigit()


def test_real_sync_is_idempotent_twice_and_across_a_restart(story: Story) -> None:
    first = sync_jobs(story.client, story.settings)
    assert {c.action for c in first.changes} == {"created"} and len(first.changes) == 7
    assert (first.chain_kind, first.view_kind) == ("parameterized", "pipeline")
    assert {c.action for c in sync_jobs(story.client, story.settings).changes} == {"unchanged"}
    restart(story)
    after = sync_jobs(story.client, story.settings)
    assert {c.action for c in after.changes} == {"unchanged"}, after.changes
    fresh = JenkinsClient(story.client.conn, cache_dir=story.home.parent / "other-cache")
    assert {c.action for c in sync_jobs(fresh, story.settings).changes} == {"unchanged"}
    # Descriptions are text, not a literal HTML comment; no job is "Old Data Format".
    info = story.server.get_job_info(story.job("job1-pull"))
    assert info["description"].startswith("tweakops stage 1:") and "<!--" not in info["description"]
    old = groovy(
        story.server,
        "print(jenkins.model.Jenkins.get().getAdministrativeMonitor('OldData').data.keySet()"
        ".collect { it.toString() })",
    )
    assert story.settings.prefix not in old, old


# -- pushes ----------------------------------------------------------------------------------


def install_hook(story: Story) -> None:
    done = story.tweakops(
        "hook", "install", str(story.bare), "--jenkins-job", story.job("job1-pull"),
        "--jenkins-url", story.client.conn.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_real_push_is_emailed_with_its_branch(story: Story) -> None:
    sync_jobs(story.client, story.settings)
    install_hook(story)
    sha = story.commit({"train.py": SCRIPT, "tweakops.yaml": repo_config(story)}, "first model")
    pushed = time.monotonic()
    (said,) = story.push()
    assert said.startswith(f"tweakops: triggered {story.job('job1-pull')} for main@{sha[:12]} (")
    (mail,) = wait_for("the email of the push", lambda: story.mails())
    story.measured["push_to_email_s"] = round(time.monotonic() - pushed, 1)
    summary = text_summary(bodies(mail)[0])
    assert summary["Branch"] == "main" and summary["Commit"] == sha[:10]
    assert summary["Result"] == "reached"
    assert summary["Settings from"].startswith("threshold 0.5 from tweakops.yaml")
    story.wait_idle()
    (run,) = story.runs()
    for job in JOBS[:5]:
        (build,) = story.builds(job)
        assert build["result"] == "SUCCESS", (job, build["result"])
        assert (build.get("description") or "").startswith(f"run {run.id}: "), (job, build)


def test_real_overlapping_pushes_are_each_emailed_once(story: Story) -> None:
    before = {r.id for r in story.runs()}
    shas: list[str] = []
    for burst, gap in ((2, 1.0), (3, 2.0)):  # two pushes 1 s apart, three in 5 s
        for n in range(burst):
            shas.append(story.commit({"train.py": SCRIPT + f"# change {len(shas)}\n"}, "tweak"))
            story.push()
            if n < burst - 1:
                time.sleep(gap)
    new = wait_for(
        "a run per push",
        lambda: (
            (runs := [r for r in story.runs() if r.id not in before]) and len(runs) == 5 and runs
        ),
    )
    wait_for("an email per run", lambda: all(story.mails_of(r.id) for r in new))
    story.wait_idle()
    time.sleep(5)  # a second email would come now
    ended = {r.id: r for r in story.runs()}  # again: a run is listed before pull stores its sha
    assert sorted(ended[r.id].sha for r in new) == sorted(shas)
    for run in new:
        assert len(story.mails_of(run.id)) == 1, run.id
        assert ended[run.id].status == "reached", ended[run.id]
    for job in JOBS[1:5]:
        described = {}
        for build in story.builds(job)[-5:]:
            run_id = param(build, "TWEAKOPS_RUN_ID")
            assert build["description"] == build["description"].strip()
            assert build["description"].startswith(f"run {run_id}: "), (job, build["description"])
            assert build["displayName"] == f"#{build['number']} run {run_id}"  # the view's card
            described[run_id] = build["number"]
        assert set(described) == {r.id for r in new}, job
    shot = os.environ.get("TWEAKOPS_JENKINS_SCREENSHOT")
    if shot:
        subprocess.run(
            [sys.executable, str(ROOT / "docs" / "make_jenkins_screenshot.py"),
             f"view/{story.settings.view_name}/", "--out", shot],
            check=True, env=story.env, timeout=300,
        )  # fmt: skip


def test_real_threshold_parameter_overrides_the_repository(story: Story) -> None:
    before = {r.id for r in story.runs()}
    done = story.tweakops(
        "jenkins", "trigger", "job1-pull", "--param", "THRESHOLD=0.45",
        "--settings", str(story.settings_file),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = wait_for("the triggered run", lambda: [r for r in story.runs() if r.id not in before])
    (mail,) = wait_for("its email", lambda: story.mails_of(run.id))
    summary = text_summary(bodies(mail)[0])
    assert summary["Threshold"] == "accuracy ≥ 0.45"
    assert summary["Settings from"].startswith(
        "threshold 0.45 from --threshold (Jenkins: THRESHOLD); max_trials 10 from default"
    )
    story.wait_idle()


def test_real_rerun_does_not_email_the_same_result_twice_unless_asked(story: Story) -> None:
    run_id = param(story.builds("job3-train")[-1], "TWEAKOPS_RUN_ID")
    assert run_id
    sent = len(story.mails_of(run_id))
    done = story.tweakops("jenkins", "rerun", "job3-train", "--settings", str(story.settings_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"email: only if the result of run {run_id} changes (it was emailed already); "
        "--email-again sends it anyway"
    )
    wait_for(
        "the rerun to reach job5",
        lambda: (
            param(story.builds("job5-notify")[-1], "TWEAKOPS_RUN_ID") == run_id
            and not story.builds("job5-notify")[-1]["building"]
        ),
    )
    story.wait_idle()
    job5 = story.builds("job5-notify")[-1]
    assert job5["result"] == "SUCCESS"
    assert "this result was emailed already" in job5["description"], job5["description"]
    assert len(story.mails_of(run_id)) == sent

    done = story.tweakops(
        "jenkins", "rerun", "job5-notify", "--email-again", "--settings", str(story.settings_file)
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[-1]
        == f"email: run {run_id} is emailed again when it reaches notify"
    )
    wait_for("the email sent again", lambda: len(story.mails_of(run_id)) == sent + 1)
    story.wait_idle()


# -- the watchdog ----------------------------------------------------------------------------


def _tune_pids(story: Story) -> list[int]:
    """`tweakops tune` processes of our store (a job4 build's)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"tune" in argv
            and any(a.endswith(b"tweakops") for a in argv)
            and (f"TWEAKOPS_HOME={story.home}".encode() in environ)
        ):
            found.append(int(proc.name))
    return found


def test_real_killed_tune_is_finished_by_job6(story: Story) -> None:
    before = {r.id for r in story.runs()}
    sha = story.commit({"tweakops.yaml": repo_config(story, SLOW_TUNE)}, "slower tuning")
    story.push()
    (run,) = wait_for(  # a run is listed before pull stores its sha
        "the pulled run", lambda: [r for r in story.runs() if r.id not in before and r.sha]
    )
    assert run.sha == sha
    epochs = story.home / "runs" / run.id / "trials" / "001" / "output" / "epochs.jsonl"
    wait_for(
        "trial 1 to be half-way",
        lambda: epochs.exists() and len(epochs.read_text().splitlines()) >= 3,
    )
    pids = _tune_pids(story)
    assert pids, "no tweakops tune process found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # the agent dies mid-tune
    story.wait_idle()
    job4 = story.builds("job4-tune")[-1]
    assert param(job4, "TWEAKOPS_RUN_ID") == run.id and job4["result"] == "FAILURE"
    assert param(story.builds("job5-notify")[-1], "TWEAKOPS_RUN_ID") != run.id
    assert not story.mails_of(run.id)

    queued = story.client.trigger(story.job("job6-watchdog"), wait_started=START_TIMEOUT)
    (mail,) = wait_for("the resumed run's email", lambda: story.mails_of(run.id))
    assert text_summary(bodies(mail)[0])["Result"] == "reached"
    story.wait_idle()
    (job6,) = [b for b in story.builds("job6-watchdog") if b["number"] == queued.number]
    assert job6["result"] == "SUCCESS"
    assert job6["description"].startswith(f"run {run.id}: notify succeeded")
    report = story.server.jenkins_open(requests.Request("GET", f"{job6['url']}testReport/api/json"))
    tests = json.loads(report)
    assert (tests["failCount"], tests["passCount"]) == (0, 6), tests  # 5 stages + threshold
    archived = [a["relativePath"] for a in job6["artifacts"]]
    assert f"tweakops-resumed/{run.id}/report.html" in archived
    assert RunStore(story.home, read_only=True).get_run(run.id).status == "reached"


# -- the Jenkinsfile -------------------------------------------------------------------------

PIPELINES = {"params": "tweakops-test-jenkinsfile-params", "scm": "tweakops-test-jenkinsfile-scm"}
OUR_CREDENTIAL = "made by tweakops' test_jenkins_real"


def pipeline_xml(definition: str) -> str:
    return (
        "<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition>\n"
        "  <description>tweakops test</description>\n  <keepDependencies>false</keepDependencies>\n"
        f"  <properties/>\n  {definition}\n  <triggers/>\n  <disabled>false</disabled>\n"
        "</flow-definition>\n"
    )


def run_pipeline(story: Story, name: str, params: dict[str, str] | None) -> dict[str, Any]:
    if params is None:
        queued = story.server.build_job(name)
    else:
        queued = story.server.build_job(name, params)
    number = wait_for(
        f"{name} to start",
        lambda: (story.server.get_queue_item(queued).get("executable") or {}).get("number"),
        timeout=START_TIMEOUT,
    )
    return wait_for(
        f"{name} #{number} to end",
        lambda: (b := story.server.get_build_info(name, number)) and not b["building"] and b,
    )


def test_real_jenkinsfile_passes_the_declarative_validator(story: Story) -> None:
    answer = story.server.jenkins_open(
        requests.Request(
            "POST",
            story.client.conn.url + "/pipeline-model-converter/validate",
            data={"jenkinsfile": (ROOT / "Jenkinsfile").read_text()},
        )
    )
    assert answer.strip() == "Jenkinsfile successfully validated.", answer


def test_real_jenkinsfile_with_parameters(story: Story) -> None:
    script = escape((ROOT / "Jenkinsfile").read_text())
    definition = (
        '<definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition">'
        f"<script>{script}</script><sandbox>true</sandbox></definition>"
    )
    name = PIPELINES["params"]
    story.client.delete([name])
    story.server.create_job(name, pipeline_xml(definition))
    first = run_pipeline(story, name, None)  # a new job has no parameters yet
    assert first["result"] == "FAILURE"
    console = story.server.get_build_console_output(name, first["number"])
    assert "REPO_URL is empty and this job checked out no repository: run Build with " in console
    assert "tweakops pull" not in console

    sent = len(story.mails())
    green = run_pipeline(story, name, {"REPO_URL": f"file://{story.bare}", "REF": "main"})
    console = story.server.get_build_console_output(name, green["number"])
    assert green["result"] == "SUCCESS", console[-3000:]
    # With no credential, no login and the mail goes; the server's own one is bound.
    unbound = "no credential tweakops-smtp here" in console
    assert unbound != has_smtp_credential(story.server), console[-3000:]
    run_id = green["description"].removeprefix("run ").split(":")[0].split()[0]
    assert [m[RUN_HEADER] for m in story.mails()[sent:]] == [run_id]

    unreachable = run_pipeline(
        story, name, {"REPO_URL": f"file://{story.bare}", "THRESHOLD": "0.99", "MAX_TRIALS": "2"}
    )
    assert unreachable["result"] == "UNSTABLE"


def has_smtp_credential(server: Any) -> bool:
    script = """
import com.cloudbees.plugins.credentials.*
import com.cloudbees.plugins.credentials.domains.Domain
def store = SystemCredentialsProvider.getInstance().getStore()
print(store.getCredentials(Domain.global()).any { it.id == 'tweakops-smtp' })
"""
    return groovy(server, script).strip() == "true"


def add_smtp_credential(story: Story) -> bool:
    """A `tweakops-smtp` credential, unless one exists; whether this test made it."""
    made = groovy(
        story.server,
        """
import com.cloudbees.plugins.credentials.*
import com.cloudbees.plugins.credentials.domains.Domain
import com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl
def store = SystemCredentialsProvider.getInstance().getStore()
if (store.getCredentials(Domain.global()).any { it.id == 'tweakops-smtp' }) {
    print('exists')
} else {
    store.addCredentials(Domain.global(), new UsernamePasswordCredentialsImpl(
        CredentialsScope.GLOBAL, 'tweakops-smtp', OURS, 'relay-user', 'relay-Pa55-test'))
    print('made')
}
""".replace("OURS", repr(OUR_CREDENTIAL)),
    )
    return made.strip() == "made"


def remove_smtp_credential(server: Any) -> None:
    """Remove the `tweakops-smtp` credential this test makes (never one of the server's own)."""
    groovy(
        server,
        """
import com.cloudbees.plugins.credentials.*
import com.cloudbees.plugins.credentials.domains.Domain
def store = SystemCredentialsProvider.getInstance().getStore()
store.getCredentials(Domain.global()).findAll {
    it.id == 'tweakops-smtp' && it.description == OURS
}.each { store.removeCredentials(Domain.global(), it) }
""".replace("OURS", repr(OUR_CREDENTIAL)),
    )


def test_real_jenkinsfile_from_the_ml_repository_with_a_credential_and_a_relay_without_auth(
    story: Story,
) -> None:
    done = story.tweakops("jenkins", "init", str(story.work))
    assert done.returncode == 0, done.stderr
    story.commit({}, "Jenkinsfile from tweakops jenkins init")
    story.push()  # the hook starts the freestyle chain as well: that run is emailed too
    name = PIPELINES["scm"]
    definition = (
        '<definition class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition">'
        '<scm class="hudson.plugins.git.GitSCM"><configVersion>2</configVersion>'
        "<userRemoteConfigs><hudson.plugins.git.UserRemoteConfig>"
        f"<url>file://{escape(str(story.bare))}</url>"
        "</hudson.plugins.git.UserRemoteConfig></userRemoteConfigs>"
        "<branches><hudson.plugins.git.BranchSpec><name>*/main</name>"
        "</hudson.plugins.git.BranchSpec></branches><extensions/></scm>"
        "<scriptPath>Jenkinsfile</scriptPath><lightweight>false</lightweight></definition>"
    )
    story.client.delete([name])
    story.server.create_job(name, pipeline_xml(definition))
    made = add_smtp_credential(story)
    try:
        sent = len(story.mails())
        build = run_pipeline(story, name, None)  # the first build: no parameters, from SCM
        console = story.server.get_build_console_output(name, build["number"])
        assert build["result"] == "SUCCESS", console[-3000:]
        assert "no credential tweakops-smtp" not in console  # bound, and the relay took the
        assert "offers no login (AUTH); sending without the login of relay-user" in console
        run_id = build["description"].removeprefix("run ").split(":")[0].split()[0]
        (mail,) = wait_for(
            "its email", lambda: [m for m in story.mails()[sent:] if m[RUN_HEADER] == run_id]
        )
        summary = text_summary(bodies(mail)[0])
        assert summary["Branch"] == "main"
        assert summary["Repository"].endswith(f"/workspace/{name}")
        assert "relay-Pa55-test" not in console
    finally:
        if made:
            remove_smtp_credential(story.server)
    story.wait_idle()


def test_real_jenkins_refuses_a_wrong_token(story: Story, tmp_path: Path) -> None:
    if not story.client.conn.user:
        pytest.skip("JENKINS_USER not set: anonymous access, no token to get wrong")
    wrong = JenkinsConnection(story.client.conn.url, story.client.conn.user, "wrong-token")
    with pytest.raises(JenkinsError, match=r"refused the credentials .* \(401\)"):
        JenkinsClient(wrong, cache_dir=tmp_path).check()


def test_real_status_lists_the_chain(story: Story) -> None:
    ordered = chain(render(story.settings, pipeline_view=False))
    builds = story.client.last_builds(ordered)
    assert [b.job for b in builds] == ordered and all(b.number for b in builds)
    assert ET.fromstring(story.server.get_job_config(ordered[0])).tag == "project"
    assert re.match(r"\d", story.client.check())
