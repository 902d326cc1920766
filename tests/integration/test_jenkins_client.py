"""`tweakops jenkins sync|trigger|status|rerun` and JenkinsClient against the stand-in Jenkins
(tests/jenkins_standin.py: a stand-in for Jenkins' REST API on 127.0.0.1, not Jenkins)."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.jenkins_standin import PIPELINE_VIEW_CLASS, StandInJenkins, standin_jenkins_factory
from tweakops.cli import cli, main
from tweakops.cli.jenkins import jenkins_group, sync_jobs
from tweakops.errors import JenkinsError
from tweakops.jenkins.client import JenkinsClient, JenkinsConnection, connection_from_env
from tweakops.jenkins.jobs import RenderedJobs, load_settings, render

assert standin_jenkins_factory  # the `standin_jenkins` fixture
if "jenkins" not in cli.commands:  # until cli.py registers the group
    cli.add_command(jenkins_group)

TOKEN = "s3cret-token-value"
PREFIX = "t-"
CHAIN = [f"{PREFIX}job{n}" for n in ("1-pull", "2-inspect", "3-train", "4-tune", "5-notify")]
JOB1 = CHAIN[0]
StartStandIn = Callable[..., StandInJenkins]


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "settings.yaml"
    path.write_text(
        f"prefix: {PREFIX}\nrepo_url: https://example.org/ml.git\nview_name: chain\n"
        "trigger_token: none\nagent_label: ''\n"
    )
    return path


@pytest.fixture(scope="module")
def rendered(settings_file: Path) -> RenderedJobs:
    return render(load_settings(settings_file), pipeline_view=True)


@pytest.fixture
def standin(standin_jenkins: StartStandIn) -> StandInJenkins:
    return standin_jenkins(users={"admin": TOKEN, "reader": "reader-token"}, readers=["reader"])


@pytest.fixture
def client(standin: StandInJenkins, tmp_path: Path) -> JenkinsClient:
    return JenkinsClient(JenkinsConnection(standin.url, "admin", TOKEN), cache_dir=tmp_path)


@pytest.fixture(autouse=True)
def jenkins_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN", "JENKINS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TWEAKOPS_JENKINS_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def tweakops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings_file: Path
) -> Callable[..., tuple[int, str, str]]:
    """`tweakops jenkins ARGS` in-process, as a user at `url` with `token`: (exit, out, err)."""

    def run(
        *args: str, url: str = "", user: str = "admin", token: str = TOKEN
    ) -> tuple[int, str, str]:
        monkeypatch.setenv("JENKINS_URL", url)
        monkeypatch.setenv("JENKINS_USER", user)
        monkeypatch.setenv("JENKINS_API_TOKEN", token)
        head, *rest = args
        argv = [a for a in args if a == "--json"] + [
            "jenkins",
            head,
            "--settings",
            str(settings_file),
        ]
        try:
            main(argv + [a for a in rest if a != "--json"])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def posts(standin: StandInJenkins, since: int = 0) -> list[str]:
    return [r.path for r in standin.requests[since:] if r.method == "POST"]


# -- sync ------------------------------------------------------------------------------------


def test_sync_creates_every_job_and_the_view_then_a_second_sync_changes_nothing(
    standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs
) -> None:
    first = client.sync(rendered.jobs, rendered.views)
    assert [(c.kind, c.name, c.action) for c in first] == [
        *[("job", n, "created") for n in rendered.jobs],
        ("view", "chain", "created"),
    ]
    assert standin.jobs == rendered.jobs and standin.views == rendered.views
    assert len(rendered.jobs) == 6 and set(CHAIN) < set(standin.jobs)
    assert standin.seen("GET", "/crumbIssuer/api/json")  # POSTs carried Jenkins' CSRF crumb

    done = len(standin.requests)
    second = client.sync(rendered.jobs, rendered.views)
    assert {c.action for c in second} == {"unchanged"} and len(second) == 7
    assert posts(standin, since=done) == []


def test_sync_pushes_only_the_job_that_changed(
    standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs
) -> None:
    client.sync(rendered.jobs, rendered.views)
    jobs = dict(rendered.jobs)
    jobs[CHAIN[2]] = jobs[CHAIN[2]].replace("<concurrentBuild>false", "<concurrentBuild>true")
    done = len(standin.requests)
    changes = client.sync(jobs, rendered.views)
    assert [c.name for c in changes if c.action == "updated"] == [CHAIN[2]]
    assert [c.action for c in changes].count("unchanged") == 6
    assert posts(standin, since=done) == [f"/job/{CHAIN[2]}/config.xml"]
    assert "<concurrentBuild>true" in standin.jobs[CHAIN[2]]


def test_sync_ignores_how_the_server_formats_the_same_xml(
    standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs
) -> None:
    client.sync(rendered.jobs, rendered.views)
    job = standin.jobs[JOB1]  # as Jenkins writes it back: XML 1.1, other spacing, plugin versions
    body = job.split("?>", 1)[1].replace("\n  ", "\n\t").replace("<scm ", '<scm plugin="git@5.2" ')
    standin.jobs[JOB1] = "<?xml version='1.1' encoding='UTF-8'?>" + body
    assert {c.action for c in client.sync(rendered.jobs, rendered.views)} == {"unchanged"}


def test_sync_remembers_what_it_pushed_when_the_server_rewrites_it(
    standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs, tmp_path: Path
) -> None:
    """Real Jenkins re-serialises a view it stores; that is no change, a hand edit after is."""
    standin.rewrite = lambda xml: xml.replace("<cssUrl />", "<cssUrl /><owner/>")
    assert client.sync({}, rendered.views)[0].action == "created"
    assert client.sync({}, rendered.views)[0].action == "unchanged"
    view = standin.views["chain"]
    standin.views["chain"] = view.replace("<refreshFrequency>5", "<refreshFrequency>60")
    assert client.sync({}, rendered.views)[0].action == "updated"
    assert standin.views["chain"] == view
    assert client.sync({}, rendered.views)[0].action == "unchanged"
    elsewhere = JenkinsClient(client.conn, cache_dir=tmp_path / "other-machine")
    assert [elsewhere.sync({}, rendered.views)[0].action for _ in range(2)] == [
        "unchanged", "unchanged"
    ]  # fmt: skip  # <owner/> is a field only the server has: its default, not a change


def test_sync_compares_what_jenkins_keeps_not_the_text(
    standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs, tmp_path: Path
) -> None:
    """After a restart Jenkins writes each job as its plugins hold it: fields of their own
    filled in with defaults. A sync from anywhere finds nothing changed; a hand edit at one of
    our fields (a value, one more step) is put back."""
    client.sync(rendered.jobs, rendered.views)
    job5 = CHAIN[4]
    restarted = (
        standin.jobs[job5]
        .replace("<testResults>", "<skipOldReports>false</skipOldReports><testResults>")
        .replace("<allowEmptyArchive>", "<excludes></excludes><allowEmptyArchive>")
    )
    assert restarted != standin.jobs[job5]
    standin.jobs[job5] = restarted
    fresh = JenkinsClient(client.conn, cache_dir=tmp_path / "fresh")
    for syncing in (client, fresh):
        assert {c.action for c in syncing.sync(rendered.jobs, rendered.views)} == {"unchanged"}
    step = "<hudson.tasks.Shell><command>curl evil</command></hudson.tasks.Shell>"
    standin.jobs[job5] = restarted.replace("<builders>", "<builders>" + step)
    assert [c.name for c in fresh.sync(rendered.jobs, {}) if c.action == "updated"] == [job5]
    standin.jobs[job5] = standin.jobs[job5].replace("tweakops-junit.xml", "other.xml")
    assert [c.name for c in fresh.sync(rendered.jobs, {}) if c.action == "updated"] == [job5]


def test_sync_without_the_build_pipeline_plugin_makes_a_list_view_and_says_why(
    standin_jenkins: StartStandIn, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    standin = standin_jenkins(users={"admin": TOKEN}, plugins=["git"])
    code, out, err = tweakops("sync", url=standin.url)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:7]] == ["created"] * 7
    assert lines[6].split() == ["created", "view", "chain"]
    assert "list view" in lines[7] and "build-pipeline-plugin" in lines[7]
    assert standin.views["chain"].lstrip().split("\n")[1].startswith("<hudson.model.ListView")

    standin.plugins.append("build-pipeline-plugin")  # installed later: the view becomes one
    code, out, _ = tweakops("sync", url=standin.url)
    assert code == 0 and "updated    view  chain" in out and "list view" not in out
    assert PIPELINE_VIEW_CLASS in standin.views["chain"]


def test_sync_links_the_chain_by_what_the_server_has(
    standin_jenkins: StartStandIn, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    """parameterized-trigger passes the run down; without it (or when this user may not
    list plugins) core reverse triggers link the chain and say what is lost."""
    standin = standin_jenkins(users={"admin": TOKEN}, plugins=["build-pipeline-plugin", "git"])
    code, out, err = tweakops("sync", url=standin.url)
    assert code == 0, err
    assert out.splitlines()[-1].startswith("chain: core triggers (no parameterized-trigger")
    assert "jenkins.triggers.ReverseBuildTrigger" in standin.jobs[CHAIN[1]]
    assert "parameterizedtrigger" not in standin.jobs[JOB1]

    standin.plugins.append("parameterized-trigger")  # installed later: the links change
    code, out, _ = tweakops("sync", url=standin.url)
    assert code == 0 and out.splitlines()[-1] == (
        "chain: each job starts the next with its run (parameterized-trigger)"
    )
    updated = [line.split()[2] for line in out.splitlines() if line.startswith("updated")]
    assert updated == CHAIN  # job1-job4 publish, job2-job5 lose their reverse trigger
    assert "ReverseBuildTrigger" not in standin.jobs[CHAIN[1]]
    assert "hudson.plugins.parameterizedtrigger.BuildTrigger" in standin.jobs[JOB1]


def test_a_pipeline_view_without_its_plugin_is_refused_with_what_to_do(
    standin_jenkins: StartStandIn, tmp_path: Path, rendered: RenderedJobs
) -> None:
    standin = standin_jenkins(users={"admin": TOKEN}, plugins=[])
    client = JenkinsClient(JenkinsConnection(standin.url, "admin", TOKEN), cache_dir=tmp_path)
    with pytest.raises(JenkinsError, match=r"^Jenkins cannot load view chain: .*build-pipeline"):
        client.sync({}, rendered.views)
    assert standin.views == {}


@pytest.mark.parametrize("installed", [True, False])
def test_a_user_who_may_not_list_plugins_still_gets_the_right_view(
    standin_jenkins: StartStandIn, tmp_path: Path, settings_file: Path, installed: bool
) -> None:
    """Listing plugins takes Overall/Administer: without it, try the pipeline view and fall
    back to a list view when Jenkins cannot load it."""
    plugins = ["build-pipeline-plugin"] if installed else []
    standin = standin_jenkins(users={"dev": TOKEN}, admins=[], plugins=plugins)
    client = JenkinsClient(JenkinsConnection(standin.url, "dev", TOKEN), cache_dir=tmp_path)
    report = sync_jobs(client, load_settings(settings_file))
    assert [c.action for c in report.changes] == ["created"] * 7
    assert report.view_kind == ("pipeline" if installed else "list")
    assert (report.fallback is None) == installed
    assert (PIPELINE_VIEW_CLASS in standin.views["chain"]) == installed


def test_sync_json_reports_changes_and_the_view_kind(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, _ = tweakops("sync", "--json", url=standin.url)
    report = json.loads(out)
    assert code == 0 and report["view_kind"] == "pipeline" and report["fallback"] is None
    assert report["chain_kind"] == "parameterized"
    assert report["changes"][0] == {"kind": "job", "name": JOB1, "action": "created"}


def test_dry_run_writes_the_xml_and_contacts_no_server(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    out_dir = tmp_path / "xml"
    code, out, err = tweakops("sync", "--dry-run", str(out_dir), url=standin.url)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{n}.xml" for n in CHAIN] + [f"{PREFIX}job6-watchdog.xml", "chain.xml"]
    )
    assert PIPELINE_VIEW_CLASS in (out_dir / "chain.xml").read_text()
    assert "no server contacted" in out and standin.requests == []


# -- trigger, status, rerun, console ----------------------------------------------------------


@pytest.fixture
def synced(standin: StandInJenkins, client: JenkinsClient, rendered: RenderedJobs) -> None:
    client.sync(rendered.jobs, rendered.views)


@pytest.mark.usefixtures("synced")
def test_trigger_with_a_parameter_queues_a_build_and_waits_for_its_number(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, err = tweakops(
        "trigger", "job1-pull", "--param", "REF=feature/x", "--wait", url=standin.url
    )
    assert code == 0, err
    assert out.startswith(f"{JOB1} started #1: {standin.url}/job/{JOB1}/1/ (queue item 1)")
    (request,) = standin.seen("POST", f"/job/{JOB1}/buildWithParameters")
    assert request.params["REF"] == "feature/x"
    assert request.params.get("THRESHOLD", "") == ""  # empty: the repository's tweakops.yaml
    assert standin.builds[JOB1][0].params["REF"] == "feature/x"


@pytest.mark.usefixtures("synced")
def test_trigger_without_wait_returns_the_queue_item(
    standin: StandInJenkins, client: JenkinsClient
) -> None:
    result = client.trigger(CHAIN[1])
    assert (result.queue_id, result.number) == (1, None)
    assert result.params == {
        "REPO_URL": "https://example.org/ml.git",
        "TWEAKOPS_HOME": "/var/lib/tweakops",
        "TWEAKOPS_RUNTIME": "docker",
        "TWEAKOPS_LOCAL_RUNTIME": "forbid",  # trials in containers only: the default settings
        "TWEAKOPS_RUN_ID": "",  # job1 passes its run down; empty: every run waiting
        "TWEAKOPS_NOTIFY_AGAIN": "",
    }


@pytest.mark.usefixtures("synced")
def test_trigger_refuses_a_parameter_the_job_does_not_take(client: JenkinsClient) -> None:
    with pytest.raises(JenkinsError, match=rf"^job {JOB1} has no parameter NOPE \(it takes "):
        client.trigger(JOB1, {"NOPE": "main"})


@pytest.mark.usefixtures("synced")
def test_trigger_refuses_an_empty_value_a_build_cannot_do_without(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    code, _, err = tweakops("trigger", "job1-pull", "--param", "REF=", url=standin.url)
    assert code == 2
    assert err.strip() == (
        "error: --param REF= is empty, and REF is the branch, tag or commit to pull: give a "
        "value, or leave the parameter out for its default"
    )
    assert standin.seen("POST", f"/job/{JOB1}/buildWithParameters") == []
    code, _, err = tweakops("trigger", "job1-pull", "--param", "THRESHOLD=", url=standin.url)
    assert code == 0, err  # empty: the repository's tweakops.yaml decides


@pytest.mark.usefixtures("synced")
def test_status_shows_the_chain_upstream_first_with_results_and_urls(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    for job, result in zip(CHAIN, ["SUCCESS", "SUCCESS", "UNSTABLE", None], strict=False):
        standin.add_build(job, "FAILURE")
        standin.add_build(job, result)
    code, out, err = tweakops("status", url=standin.url)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == [*CHAIN, f"{PREFIX}job6-watchdog"]
    assert [r[1:3] for r in rows[:4]] == [
        ["#2", "SUCCESS"], ["#2", "SUCCESS"], ["#2", "UNSTABLE"], ["#2", "building"]
    ]  # fmt: skip
    assert rows[0][3] == f"{standin.url}/job/{JOB1}/2/"
    assert out.splitlines()[2 + 4].split()[1:] == ["—", "never", "built"]

    code, out, _ = tweakops("status", "--json", url=standin.url)
    builds = json.loads(out)
    assert [b["job"] for b in builds][:5] == CHAIN and builds[3]["building"] is True
    assert builds[2] == {
        "job": CHAIN[2], "number": 2, "result": "UNSTABLE",
        "url": f"{standin.url}/job/{CHAIN[2]}/2/", "building": False,
    }  # fmt: skip


@pytest.mark.usefixtures("synced")
def test_rerun_uses_the_parameters_of_the_last_build(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    standin.add_build(JOB1, "FAILURE", {"REF": "abc123", "THRESHOLD": "0.9", "GONE": "x"})
    code, out, err = tweakops("rerun", "job1-pull", "--wait", url=standin.url)
    assert code == 0, err
    assert out.startswith(f"{JOB1} started #2:") and "REF=abc123" in out and "THRESHOLD=0.9" in out
    assert out.splitlines()[-1] == "email: as for any run, when the run ends"  # a new run
    (request,) = standin.seen("POST", f"/job/{JOB1}/buildWithParameters")
    assert request.params["REF"] == "abc123" and "GONE" not in request.params
    assert standin.builds[JOB1][1].result == "SUCCESS"


@pytest.mark.usefixtures("synced")
def test_rerun_redoes_the_same_run_and_says_it_is_not_emailed_twice(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    train = CHAIN[2]
    standin.add_build(train, "FAILURE", {"TWEAKOPS_RUN_ID": "20261206-101010-abcdef"})
    code, out, err = tweakops("rerun", "job3-train", url=standin.url)
    assert code == 0, err
    (request,) = standin.seen("POST", f"/job/{train}/buildWithParameters")
    assert request.params["TWEAKOPS_RUN_ID"] == "20261206-101010-abcdef"
    assert "TWEAKOPS_NOTIFY_AGAIN" not in request.params  # empty
    assert out.splitlines()[-1] == (
        "email: only if the result of run 20261206-101010-abcdef changes (it was emailed "
        "already); --email-again sends it anyway"
    )
    code, out, err = tweakops("rerun", "job3-train", "--email-again", url=standin.url)
    assert code == 0, err
    assert (
        standin.seen("POST", f"/job/{train}/buildWithParameters")[1].params["TWEAKOPS_NOTIFY_AGAIN"]
        == "true"
    )
    assert out.splitlines()[-1] == (
        "email: run 20261206-101010-abcdef is emailed again when it reaches notify"
    )


@pytest.mark.usefixtures("synced")
def test_rerun_of_a_build_that_took_waiting_runs_reads_its_run_from_the_description(
    standin: StandInJenkins, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    """A core-chain build has no TWEAKOPS_RUN_ID: its description names the run(s)."""
    tune = CHAIN[3]
    standin.add_build(tune, "FAILURE", {}, description="run r-1: tune failed (engine gone)")
    code, _, err = tweakops("rerun", "job4-tune", url=standin.url)
    assert code == 0, err
    assert (
        standin.seen("POST", f"/job/{tune}/buildWithParameters")[0].params["TWEAKOPS_RUN_ID"]
        == "r-1"
    )
    standin.add_build(tune, "FAILURE", {}, description="run r-2: tune failed\nrun r-3: tune failed")
    code, _, err = tweakops("rerun", "job4-tune", url=standin.url)
    assert code == 2
    assert err.strip() == (
        f"error: the last build of {tune} worked on runs r-2, r-3: say which with --run ID"
    )
    code, _, err = tweakops("rerun", "job4-tune", "--run", "r-3", url=standin.url)
    assert code == 0, err


@pytest.mark.usefixtures("synced")
def test_rerun_of_a_job_never_built_uses_its_defaults(
    standin: StandInJenkins, client: JenkinsClient
) -> None:
    assert client.rerun(JOB1).params["REF"] == "main"


@pytest.mark.usefixtures("synced")
def test_console_returns_the_build_log(standin: StandInJenkins, client: JenkinsClient) -> None:
    number = client.trigger(JOB1, {"REF": "v1"}, wait_started=5).number
    assert number == 1
    assert (
        client.console(JOB1, number)
        == "Started by remote API\n"
        + "".join(f"{k}={v}\n" for k, v in standin.builds[JOB1][0].params.items())
        + "Finished: SUCCESS\n"
    )
    with pytest.raises(JenkinsError, match=rf"^job {JOB1} has no build #7: see `tweakops"):
        client.console(JOB1, 7)


# -- errors: one line each, what to do, never the token ---------------------------------------


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def error_of(call: Callable[[], object]) -> str:
    with pytest.raises(JenkinsError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and TOKEN not in message and "wrong-" not in message
    return message


def test_bad_credentials_are_a_401_that_names_the_user_and_where_to_get_a_token(
    standin: StandInJenkins, tmp_path: Path, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    conn = JenkinsConnection(standin.url, "admin", "wrong-token")
    message = error_of(JenkinsClient(conn, cache_dir=tmp_path).check)
    assert message == (
        "Jenkins refused the credentials for user admin (401): check JENKINS_USER and "
        f"JENKINS_API_TOKEN (a token from {standin.url}/user/admin/configure)"
    )
    code, out, err = tweakops("status", url=standin.url, token="wrong-token")
    assert code == 1 and out == "" and err == f"error: {message}\n"


def test_a_user_without_permission_gets_a_403_naming_what_to_grant(
    standin: StandInJenkins, tmp_path: Path, rendered: RenderedJobs
) -> None:
    reader = JenkinsClient(
        JenkinsConnection(standin.url, "reader", "reader-token"), cache_dir=tmp_path
    )
    assert reader.check() == "2.528.1"  # may read
    message = error_of(lambda: reader.sync(rendered.jobs, {}))
    assert message == (
        f"Jenkins user reader lacks permission (403) for creating job {JOB1}: "
        "grant Job/Build, Job/Configure, View/Configure"
    )
    anonymous = JenkinsClient(JenkinsConnection(standin.url), cache_dir=tmp_path)
    assert error_of(anonymous.check) == (
        "anonymous access to Jenkins lacks permission (403) for reading the current user: "
        "set JENKINS_USER and JENKINS_API_TOKEN"
    )


def test_an_unreachable_jenkins_says_to_check_the_url(
    tweakops: Callable[..., tuple[int, str, str]], silent_url: str, tmp_path: Path
) -> None:
    url = closed_port_url()
    code, _, err = tweakops("sync", url=url)
    assert code == 1 and err == (
        f"error: Jenkins at {url} is unreachable (connection refused): "
        "check JENKINS_URL and that Jenkins is running\n"
    )
    slow = JenkinsClient(
        JenkinsConnection(silent_url, "admin", TOKEN), timeout=0.3, cache_dir=tmp_path
    )
    assert error_of(slow.check) == (
        f"Jenkins at {silent_url} is unreachable (no answer in 0.3 s): "
        "check JENKINS_URL and that Jenkins is running"
    )


def test_a_missing_job_says_to_sync_first(
    standin: StandInJenkins, client: JenkinsClient, tweakops: Callable[..., tuple[int, str, str]]
) -> None:
    assert error_of(lambda: client.trigger("nope")) == (
        "job nope not found: run `tweakops jenkins sync` first"
    )
    assert error_of(lambda: client.last_builds(["nope"])).startswith("job nope not found")
    assert error_of(lambda: client.rerun("nope")).startswith("job nope not found")
    code, _, err = tweakops("trigger", "job1-pull", url=standin.url)
    assert code == 1
    assert err == f"error: job {JOB1} not found: run `tweakops jenkins sync` first\n"


def test_the_standin_refuses_a_post_without_a_crumb_like_jenkins(standin: StandInJenkins) -> None:
    request = urllib.request.Request(
        f"{standin.url}/createItem?name=x", b"<project/>", method="POST"
    )
    basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403 and b"No valid crumb" in caught.value.read()
    assert standin.jobs == {}


# -- where the connection comes from ------------------------------------------------------------


def test_connection_comes_from_the_environment_and_hides_the_token() -> None:
    env = {
        "JENKINS_URL": "http://127.0.0.1:8080/jenkins/",
        "JENKINS_USER": "ci",
        "JENKINS_TOKEN": TOKEN,
    }
    conn = connection_from_env(env)
    assert conn == JenkinsConnection("http://127.0.0.1:8080/jenkins", "ci", TOKEN)
    assert TOKEN not in repr(conn) and TOKEN not in repr(JenkinsClient(conn))
    inline = connection_from_env({"JENKINS_URL": f"http://ci:{TOKEN}@127.0.0.1:8080"})
    assert inline == JenkinsConnection("http://127.0.0.1:8080", "ci", TOKEN)


def test_connection_falls_back_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "jenkins.yaml"
    path.write_text(f"url: http://127.0.0.1:9090\nuser: ci\ntoken: {TOKEN}\n")
    conn = connection_from_env({"TWEAKOPS_JENKINS_CONFIG": str(path)})
    assert conn == JenkinsConnection("http://127.0.0.1:9090", "ci", TOKEN)
    home = tmp_path / "home"
    (home / ".config/tweakops").mkdir(parents=True)
    (home / ".config/tweakops/jenkins.yaml").write_text(path.read_text())
    assert connection_from_env({"HOME": str(home)}) == conn


def test_no_jenkins_configured_says_how_to_configure_one(tmp_path: Path) -> None:
    message = error_of(lambda: connection_from_env({"HOME": str(tmp_path)}))
    assert message == (
        "no Jenkins configured: set JENKINS_URL (and JENKINS_USER, JENKINS_API_TOKEN) "
        "or write ~/.config/tweakops/jenkins.yaml"
    )
    with pytest.raises(JenkinsError, match="JENKINS_USER and the API token go together"):
        connection_from_env({"JENKINS_URL": "http://127.0.0.1:1", "JENKINS_USER": "ci"})
