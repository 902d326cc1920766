"""sync / trigger / status / rerun against a REAL Jenkins, when JENKINS_URL (and JENKINS_USER,
JENKINS_API_TOKEN) name one; skipped otherwise. The jobs and the view get a unique prefix and
are deleted afterwards. Builds run `tweakops ...` on an agent and may fail there: these tests
check the REST calls, not the pipeline."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tweakops.cli_jenkins import sync_jobs
from tweakops.errors import JenkinsError
from tweakops.jenkins_client import JenkinsClient, JenkinsConnection, connection_from_env
from tweakops.jenkins_jobs import JenkinsSettings, chain, load_settings, render

pytestmark = pytest.mark.skipif(
    not os.environ.get("JENKINS_URL"),
    reason="JENKINS_URL not set: no real Jenkins here; the stand-in tests cover the REST calls",
)
START_TIMEOUT = float(os.environ.get("TWEAKOPS_JENKINS_START_TIMEOUT", "120"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> JenkinsSettings:
    unique = f"tweakops-test-{uuid.uuid4().hex[:8]}-"
    path = tmp_path_factory.mktemp("real-jenkins") / "settings.yaml"
    path.write_text(
        f"prefix: {unique}\nview_name: {unique}view\nrepo_url: https://example.org/ml.git\n"
        "agent_label: ''\ntrigger_token: none\nwatchdog_schedule: '@daily'\n"
    )
    return load_settings(path)


@pytest.fixture(scope="module")
def client(
    settings: JenkinsSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JenkinsClient]:
    client = JenkinsClient(connection_from_env(), cache_dir=tmp_path_factory.mktemp("cache"))
    rendered = render(settings, pipeline_view=False)
    try:
        yield client
    finally:
        client.delete(list(rendered.jobs), list(rendered.views))


def test_real_jenkins_answers_with_its_version(client: JenkinsClient) -> None:
    assert client.check()[:1].isdigit()


def test_real_sync_creates_then_changes_nothing(
    client: JenkinsClient, settings: JenkinsSettings
) -> None:
    first = sync_jobs(client, settings)
    assert {c.action for c in first.changes} == {"created"} and len(first.changes) == 7
    second = sync_jobs(client, settings)
    assert {c.action for c in second.changes} == {"unchanged"}


def test_real_trigger_status_console_rerun(
    client: JenkinsClient, settings: JenkinsSettings
) -> None:
    sync_jobs(client, settings)
    job = f"{settings.prefix}job2-inspect"
    queued = client.trigger(job, wait_started=START_TIMEOUT)
    assert queued.queue_id > 0
    if queued.number is None:
        pytest.skip(f"{job} did not start within {START_TIMEOUT:g} s: no free executor")
    deadline = time.monotonic() + START_TIMEOUT
    while (build := client.last_builds([job])[0]).building and time.monotonic() < deadline:
        time.sleep(1)
    assert build.number == queued.number and build.result is not None
    assert "Finished:" in client.console(job, queued.number)
    ordered = chain(render(settings, pipeline_view=False))
    assert [b.job for b in client.last_builds(ordered)] == ordered
    assert client.rerun(job).params == queued.params


def test_real_jenkins_refuses_a_wrong_token(client: JenkinsClient, tmp_path: Path) -> None:
    if not client.conn.user:
        pytest.skip("JENKINS_USER not set: anonymous access, no token to get wrong")
    wrong = JenkinsConnection(client.conn.url, client.conn.user, "wrong-token")
    with pytest.raises(JenkinsError, match=r"refused the credentials .* \(401\)"):
        JenkinsClient(wrong, cache_dir=tmp_path).check()
