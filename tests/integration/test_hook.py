"""`tweakops hook`: real bare repositories, real `git push`, the stand-in Jenkins, local runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_tweakops
from tests.jenkins_standin import StandInJenkins
from tweakops.records import RunRecord
from tweakops.store import RunStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USER, TOKEN = "ci-bot", "tok-3f9a-SECRET-c0ffee"
JOB = "job1-pull"
JOB_XML = """<?xml version='1.1' encoding='UTF-8'?>
<project><properties><hudson.model.ParametersDefinitionProperty><parameterDefinitions>
<hudson.model.StringParameterDefinition><name>REF</name><defaultValue>main</defaultValue>
</hudson.model.StringParameterDefinition>
<hudson.model.StringParameterDefinition><name>BRANCH</name><defaultValue></defaultValue>
</hudson.model.StringParameterDefinition></parameterDefinitions>
</hudson.model.ParametersDefinitionProperty></properties></project>
"""
BUILD_PATH = f"/job/{JOB}/buildWithParameters"
LOCAL_LINE = re.compile(
    r"tweakops: running the pipeline locally for (\S+)@([0-9a-f]{12}); log: (.+)"
)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@dataclass
class GitServer:
    """A bare repository with a work clone that pushes to it, and the environment to use."""

    bare: Path
    work: Path
    home: Path
    env: dict[str, str]

    def tweakops(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_tweakops(self.home, *args, env={**self.env, **env}, timeout=120)

    def install(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.tweakops(
            "hook", "install", str(self.bare), "--home", str(self.home), *args, **env
        )

    def commit(self, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", f"change {', '.join(files)}")
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *refspecs: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", "push", "origin", *refspecs],
            cwd=self.work,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The hook's lines, as the pusher sees them (git prefixes them with `remote: `)."""
    text = done.stdout + done.stderr
    lines = (line.removeprefix("remote:").strip() for line in text.splitlines())
    return [line for line in lines if line.startswith("tweakops:")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    bare, work, home, user_home = (tmp_path / n for n in ("srv.git", "work", "home", "user"))
    user_home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "JENKINS_", "TWEAKOPS_", "XDG_"))
    }
    env |= {
        "HOME": str(user_home),  # no ~/.config/tweakops/jenkins.yaml, no global git hooksPath
        "TWEAKOPS_RUNTIME": "local",
        "CI": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    for key, value in (("user.name", "t"), ("user.email", "t@example.org")):
        git(work, "config", key, value)
    yield GitServer(bare, work, home, env)
    _stop_local_runs(home)


def _stop_local_runs(home: Path) -> None:
    """Runs the hook started and a failed test left behind: stop them by their pid."""
    for log in (home / "hook-logs").glob("*.log"):
        sha = log.stem.split("-")[2]
        for pid in re.findall(r"^# pid (\d+)", log.read_text(errors="replace"), re.M):
            with contextlib.suppress(OSError):  # still that run (not a reused pid): stop it
                if sha in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    os.killpg(int(pid), signal.SIGTERM)


def wait_for_run(home: Path, sha: str, log: Path, timeout: float = 180) -> RunRecord:
    """The run the hook started (named in its log) once it has ended; it must be of SHA."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        started = re.search(r"^run (\S+) in ", text, re.M)
        if started:
            run = RunStore(home).get_run(started.group(1))
            if run.status not in ("pending", "running"):
                assert run.sha == sha, f"run {run.id} pulled {run.sha}, not {sha}; log:\n{text}"
                return run
        elif re.search(r"^error: ", text, re.M):
            pytest.fail(f"the run of {sha[:12]} did not start; log:\n{text}")
        time.sleep(0.5)
    pytest.fail(f"no finished run of {sha[:12]} after {timeout:.0f} s; log:\n{log.read_text()}")


@pytest.fixture
def jenkins() -> Iterator[StandInJenkins]:
    with StandInJenkins(users={USER: TOKEN}) as standin:
        standin.jobs[JOB] = JOB_XML
        yield standin


def jenkins_env(standin: StandInJenkins) -> dict[str, str]:
    return {"JENKINS_URL": standin.url, "JENKINS_USER": USER, "JENKINS_API_TOKEN": TOKEN}


# --- (a) Jenkins -------------------------------------------------------------------------------


def copy_iris_example(server: GitServer) -> None:
    """examples/iris-sklearn into the work tree (a repository that reaches 0.95)."""
    shutil.copytree(
        EXAMPLES / "iris-sklearn",
        server.work,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def test_push_triggers_the_jenkins_job_with_the_pushed_sha(
    server: GitServer, jenkins: StandInJenkins
) -> None:
    assert server.install("--jenkins-job", JOB).returncode == 0
    sha = server.commit({"train.py": "print(1)\n"})
    done = server.push("main", **jenkins_env(jenkins))
    assert said(done) == [f"tweakops: triggered {JOB} for main@{sha[:12]} (queue item 1)"]
    posts = jenkins.seen("POST", BUILD_PATH)
    assert [(p.params, p.user) for p in posts] == [({"REF": sha, "BRANCH": "main"}, USER)]
    assert jenkins.seen("GET", "/crumbIssuer/api/json")  # and the POST passed the crumb check
    assert jenkins.queue[1].params == {"REF": sha, "BRANCH": "main"}


def test_a_job_without_parameters_yet_gets_a_plain_build_and_the_pusher_is_told(
    server: GitServer, jenkins: StandInJenkins
) -> None:
    """A new Pipeline job learns its parameters in its first build."""
    jenkins.jobs[JOB] = "<flow-definition><properties/></flow-definition>"
    assert server.install("--jenkins-job", JOB).returncode == 0
    sha = server.commit({"train.py": "print(1)\n"})
    assert said(server.push("main", **jenkins_env(jenkins))) == [
        f"tweakops: triggered {JOB} for main@{sha[:12]} (queue item 1); {JOB} takes no REF "
        "parameter (yet): it builds its own branch"
    ]
    assert jenkins.seen("POST", f"/job/{JOB}/build")


def test_installed_url_takes_the_token_only_from_a_config_file_for_that_url(
    server: GitServer, jenkins: StandInJenkins
) -> None:
    assert server.install("--jenkins-job", JOB, "--jenkins-url", jenkins.url).returncode == 0
    config = Path(server.env["HOME"]) / ".config/tweakops/jenkins.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"url: {jenkins.url}\nuser: {USER}\ntoken: {TOKEN}\n")
    sha = server.commit({"a.py": "1\n"})
    assert said(server.push("main")) == [
        f"tweakops: triggered {JOB} for main@{sha[:12]} (queue item 1)"
    ]
    assert [p.params for p in jenkins.seen("POST", BUILD_PATH)] == [{"REF": sha, "BRANCH": "main"}]

    config.write_text(f"url: http://elsewhere.invalid:8080\nuser: {USER}\ntoken: {TOKEN}\n")
    server.commit({"a.py": "2\n"})
    before = len(jenkins.requests)
    lines = said(server.push("main"))
    assert len(lines) == 1 and lines[0].startswith("tweakops: could not trigger Jenkins: ")
    assert "403" in lines[0]  # anonymous: the token was not sent to the installed URL
    assert {r.user for r in jenkins.requests[before:]} == {None}


def test_push_while_jenkins_is_down_succeeds_and_says_why_in_one_line(
    server: GitServer, unused_port: int
) -> None:
    assert server.install("--jenkins-job", JOB).returncode == 0
    sha = server.commit({"train.py": "print(1)\n"})
    env = {"JENKINS_URL": f"http://127.0.0.1:{unused_port}", "JENKINS_USER": USER}
    done = server.push("main", **env, JENKINS_API_TOKEN=TOKEN)
    assert said(done) == [
        f"tweakops: could not trigger Jenkins: Jenkins at http://127.0.0.1:{unused_port} is "
        "unreachable (connection refused): check JENKINS_URL and that Jenkins is running"
    ]
    assert TOKEN not in done.stdout + done.stderr
    assert git(server.bare, "rev-parse", "main") == sha


# --- (b) no Jenkins: the local pipeline --------------------------------------------------------


def test_push_without_jenkins_runs_the_pipeline_locally_to_its_threshold(
    server: GitServer,
) -> None:
    assert server.install().returncode == 0
    copy_iris_example(server)
    sha = server.commit({})
    started = time.monotonic()
    done = server.push("main")
    pushed_in = time.monotonic() - started
    assert pushed_in < 20, f"push took {pushed_in:.1f} s: the hook must not wait for the run"
    (line,) = said(done)
    match = LOCAL_LINE.fullmatch(line)
    assert match, line
    assert match.groups()[:2] == ("main", sha[:12])
    log = Path(match.group(3))
    assert log.parent == server.home.resolve() / "hook-logs" and log.name.endswith(
        f"{sha[:12]}.log"
    )
    run = wait_for_run(server.home, sha, log)
    assert run.status == "reached", log.read_text()
    assert run.sha == sha and run.source == str(server.bare.resolve())
    assert "threshold 0.95 reached" in log.read_text()


def test_two_pushed_branches_run_one_after_another(server: GitServer) -> None:
    assert server.install().returncode == 0
    copy_iris_example(server)
    shas = [server.commit({})]
    git(server.work, "checkout", "-q", "-b", "feature")
    shas.append(server.commit({"README.md": "a feature\n"}))
    lines = said(server.push("main", "feature"))
    logs = {m.group(2): Path(m.group(3)) for m in map(LOCAL_LINE.fullmatch, lines) if m}
    assert sorted(logs) == sorted(sha[:12] for sha in shas), lines
    runs = [wait_for_run(server.home, sha, logs[sha[:12]]) for sha in shas]
    assert [r.status for r in runs] == ["reached", "reached"]
    waited = [
        i for i, sha in enumerate(shas) if "waiting for the previous" in logs[sha[:12]].read_text()
    ]
    assert len(waited) == 1  # the second run started after the first had ended
    store = RunStore(server.home)
    first, second = runs[1 - waited[0]], runs[waited[0]]
    first_end = max(s.ended or 0 for s in store.stages(first.id))
    assert first_end <= min(s.started or 1e12 for s in store.stages(second.id))


def test_received_by_hand_inside_a_git_hook_environment_still_pulls(server: GitServer) -> None:
    sha = server.commit({"README.md": "no model here\n"})
    server.push("main")  # no hook installed: `received` works with the default settings
    done = server.tweakops(
        "hook", "received", "--bare", str(server.bare), "--ref", "refs/heads/main", "--sha", sha,
        TWEAKOPS_HOME=str(server.home),
        GIT_DIR=str(server.bare), GIT_QUARANTINE_PATH=str(server.bare / "objects"),
    )  # fmt: skip
    assert done.returncode == 0
    match = LOCAL_LINE.fullmatch(done.stdout.strip())
    assert match, done.stdout + done.stderr
    log = Path(match.group(3))
    run = wait_for_run(server.home, sha, log)
    text = log.read_text()
    assert run.sha == sha, text  # pull worked: git's variables did not reach the run
    assert "GIT_DIR is set" not in text


def test_received_refuses_a_sha_that_is_not_a_commit_id_with_exit_0(server: GitServer) -> None:
    done = server.tweakops(
        "hook", "received", "--bare", str(server.bare), "--ref", "main", "--sha", "HEAD~1"
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "tweakops: ignoring main: 'HEAD~1' is not a full commit id"


# --- (c) install checks, secrets, deletions, filters -------------------------------------------


def test_install_refuses_a_work_tree_and_a_folder_that_is_no_repository(
    server: GitServer, tmp_path: Path
) -> None:
    (tmp_path / "plain").mkdir()
    for target, words in (
        (server.work, "is a work tree, not a bare repository"),
        (tmp_path / "plain", "is not a git repository"),
        (tmp_path / "missing", "does not exist"),
    ):
        done = server.tweakops("hook", "install", str(target))
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
        assert words in done.stderr
    assert not (server.work / ".git/hooks/post-receive").exists()


def test_hook_is_executable_and_holds_no_credentials(
    server: GitServer, jenkins: StandInJenkins
) -> None:
    done = server.install(
        "--jenkins-job", JOB, "--jenkins-url", jenkins.url, **jenkins_env(jenkins)
    )
    assert done.returncode == 0, done.stderr
    hook = server.bare / "hooks/post-receive"
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    texts = hook.read_text() + (server.bare / "tweakops-hook.json").read_text()
    assert TOKEN not in texts and USER not in texts
    settings = json.loads((server.bare / "tweakops-hook.json").read_text())
    assert settings == {
        "python": sys.executable,
        "home": str(server.home.resolve()),
        "jenkins_job": JOB,
        "jenkins_url": jenkins.url,
        "branches": [],
    }
    refused = server.install("--jenkins-url", f"http://{USER}:{TOKEN}@127.0.0.1:8080")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "contains a user or password" in refused.stderr and TOKEN not in refused.stderr
    assert json.loads((server.bare / "tweakops-hook.json").read_text()) == settings


def test_deletions_tags_and_unwatched_branches_trigger_nothing(
    server: GitServer, jenkins: StandInJenkins
) -> None:
    assert server.install("--jenkins-job", JOB, "--branch", "main").returncode == 0
    env = jenkins_env(jenkins)
    sha = server.commit({"a.py": "1\n"})
    git(server.work, "branch", "feature")
    git(server.work, "tag", "v1")
    assert said(server.push("feature", **env)) == [
        "tweakops: ignoring feature: the hook watches main"
    ]
    assert said(server.push("v1", **env)) == []
    assert said(server.push("--delete", "feature", **env)) == []
    assert jenkins.seen("POST", BUILD_PATH) == []
    assert said(server.push("main", **env)) == [
        f"tweakops: triggered {JOB} for main@{sha[:12]} (queue item 1)"
    ]
    assert [p.params for p in jenkins.seen("POST", BUILD_PATH)] == [{"REF": sha, "BRANCH": "main"}]


def test_branch_names_reach_tweakops_as_data_never_as_shell_text(
    server: GitServer, tmp_path: Path
) -> None:
    assert server.install("--branch", "main").returncode == 0
    pwned = tmp_path / "pwned"
    branch = f"x$(touch${{IFS}}{pwned})`touch${{IFS}}{pwned}`;touch${{IFS}}{pwned}"
    git(server.work, "check-ref-format", "--branch", branch)
    server.commit({"a.py": "1\n"})
    done = server.push(f"HEAD:refs/heads/{branch}")
    assert said(done) == [f"tweakops: ignoring {branch}: the hook watches main"]
    assert not pwned.exists()


def test_an_existing_hook_is_kept_unless_forced_then_chained(server: GitServer) -> None:
    hook = server.bare / "hooks/post-receive"
    mine = '#!/bin/sh\ncat > "$GIT_DIR/seen.txt"\necho "their hook ran"\n'
    hook.write_text(mine)
    hook.chmod(0o755)
    refused = server.install("--branch", "release")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "--force" in refused.stderr and hook.read_text() == mine
    assert server.install("--branch", "release", "--force").returncode == 0
    assert (server.bare / "hooks/post-receive.pre-tweakops").read_text() == mine
    assert server.install("--branch", "release").returncode == 0  # ours: rewritten in place
    sha = server.commit({"a.py": "1\n"})
    done = server.push("main")
    assert "their hook ran" in done.stderr
    assert said(done) == ["tweakops: ignoring main: the hook watches release"]
    assert (server.bare / "seen.txt").read_text().split() == ["0" * 40, sha, "refs/heads/main"]


def test_unreadable_settings_are_one_line_and_exit_0(server: GitServer) -> None:
    (server.bare / "tweakops-hook.json").write_text("{not json")
    sha = "a" * 40
    done = server.tweakops(
        "hook", "received", "--bare", str(server.bare), "--ref", "main", "--sha", sha
    )
    assert done.returncode == 0
    assert done.stdout.startswith("tweakops: cannot read ") and done.stdout.count("\n") == 1
    assert "run `tweakops hook install" in done.stdout


def test_default_job_is_job1_as_sync_names_it() -> None:
    from tweakops.jenkins.hooks import default_job
    from tweakops.jenkins.jobs import load_settings

    assert default_job() == f"{load_settings().prefix}job1-pull"
