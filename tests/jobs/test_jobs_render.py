"""Golden-file tests of jobs/: every job and both views render to the checked-in XML.

Regenerate the golden files on purpose with `python -m pytest tests/jobs --regen`.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.jenkinsfile.test_jenkinsfile import cli_call
from tests.jobs.golden import FIXTURES, regenerate_fixtures
from tweakops.errors import ConfigError
from tweakops.jenkins.jobs import (
    DROPPED_FIELDS,
    JOBS_DIR,
    PARAMETERIZED_CONFIG,
    RUN_FILE,
    JenkinsSettings,
    RenderedJobs,
    canonical_xml,
    chain,
    load_settings,
    main,
    render,
    write_rendered,
)

STAGES = ["job1-pull", "job2-inspect", "job3-train", "job4-tune", "job5-notify", "job6-watchdog"]
JENKINS_VARS = {"WORKSPACE"}  # set by Jenkins in every freestyle build
PARAMETERIZED = PARAMETERIZED_CONFIG
REGEN = "run `python -m pytest tests/jobs --regen` if the change is intended"


@pytest.fixture(scope="module")
def settings() -> JenkinsSettings:
    return load_settings(FIXTURES / "settings.yaml")


@pytest.fixture(scope="module")
def rendered(settings: JenkinsSettings) -> dict[str, RenderedJobs]:
    return {"pipeline": render(settings), "list": render(settings, pipeline_view=False)}


@pytest.fixture(scope="module")
def jobs(rendered: dict[str, RenderedJobs]) -> dict[str, ET.Element]:
    return {name: ET.fromstring(xml) for name, xml in rendered["pipeline"].jobs.items()}


def job(jobs: dict[str, ET.Element], stage: str) -> ET.Element:
    return jobs[f"fx-{stage}"]


def commands(element: ET.Element) -> list[str]:
    return [c.text or "" for c in element.findall("builders/hudson.tasks.Shell/command")]


def parameter_names(element: ET.Element) -> set[str]:
    path = "properties/hudson.model.ParametersDefinitionProperty/parameterDefinitions/*/name"
    return {n.text or "" for n in element.findall(path)}


def test_every_job_renders_to_its_golden_file(rendered: dict[str, RenderedJobs]) -> None:
    golden = {p.stem: p.read_text(encoding="utf-8") for p in FIXTURES.glob("*.xml")}
    assert sorted(rendered["pipeline"].jobs) == sorted(golden) == [f"fx-{s}" for s in STAGES]
    for name, xml in rendered["pipeline"].jobs.items():
        assert canonical_xml(xml) == canonical_xml(golden[name]), f"{name} changed: {REGEN}"


@pytest.mark.parametrize("kind", ["pipeline", "list"])
def test_each_view_kind_renders_to_its_golden_file(
    rendered: dict[str, RenderedJobs], kind: str
) -> None:
    golden = {p.stem: p.read_text(encoding="utf-8") for p in (FIXTURES / "views" / kind).iterdir()}
    result = rendered[kind]
    assert result.view_kind == kind
    assert sorted(result.views) == sorted(golden) == ["fixture-view"]
    for name, xml in result.views.items():
        assert canonical_xml(xml) == canonical_xml(golden[name]), f"{kind} view changed: {REGEN}"


def test_the_jobs_do_not_depend_on_the_view_kind(rendered: dict[str, RenderedJobs]) -> None:
    assert rendered["pipeline"].jobs == rendered["list"].jobs


def test_every_rendered_and_golden_file_parses(rendered: dict[str, RenderedJobs]) -> None:
    texts = [*rendered["pipeline"].jobs.values(), *rendered["pipeline"].views.values()]
    texts += rendered["list"].views.values()
    texts += [p.read_text(encoding="utf-8") for p in FIXTURES.rglob("*.xml")]
    roots = {ET.fromstring(text).tag for text in texts}
    assert roots == {
        "project",
        "hudson.model.ListView",
        "au.com.centrumsystems.hudson.plugin.buildpipeline.BuildPipelineView",
    }


def test_regenerating_reproduces_the_checked_in_golden_files(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "settings.yaml", tmp_path / "settings.yaml")
    written = regenerate_fixtures(tmp_path)
    relative = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert relative == sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.xml"))
    for path in written:
        golden = FIXTURES / path.relative_to(tmp_path)
        assert path.read_bytes() == golden.read_bytes(), f"{golden.name}: {REGEN}"


def test_the_chain_passes_the_run_from_job1_to_job5_with_parameterized_trigger(
    rendered: dict[str, RenderedJobs], jobs: dict[str, ET.Element]
) -> None:
    """Each job starts the next with its own parameters; job1 adds TWEAKOPS_RUN_ID from the
    file `tweakops pull --properties` wrote, so every later build works on that run."""
    assert chain(rendered["pipeline"]) == [f"fx-{s}" for s in STAGES[:5]]
    for upstream, stage in itertools.pairwise(STAGES[:5]):
        (config,) = job(jobs, upstream).findall(PARAMETERIZED)
        assert config.findtext("projects") == f"fx-{stage}"
        expected = "UNSTABLE_OR_BETTER" if stage == "job5-notify" else "SUCCESS"
        assert config.findtext("condition") == expected
        assert (
            config.find("configs/hudson.plugins.parameterizedtrigger.CurrentBuildParameters")
            is not None
        )
        from_file = config.findtext(
            "configs/hudson.plugins.parameterizedtrigger.FileBuildParameters/propertiesFile"
        )
        assert from_file == (RUN_FILE if upstream == "job1-pull" else None)
        assert "TWEAKOPS_RUN_ID" in parameter_names(job(jobs, stage))
        assert job(jobs, stage).find("triggers/jenkins.triggers.ReverseBuildTrigger") is None
    assert f"--properties {RUN_FILE}" in commands(job(jobs, "job1-pull"))[0]
    for stage in ("job5-notify", "job6-watchdog"):
        assert job(jobs, stage).find(PARAMETERIZED) is None


def test_without_the_plugin_the_chain_is_core_reverse_triggers(settings: JenkinsSettings) -> None:
    """Core triggers pass no parameters: each job takes every run waiting for its stage."""
    core = render(settings, chain_kind="core")
    elements = {name: ET.fromstring(xml) for name, xml in core.jobs.items()}
    assert chain(core) == [f"fx-{s}" for s in STAGES[:5]]
    for upstream, stage in itertools.pairwise(STAGES[:5]):
        triggers = job(elements, stage).findall("triggers/jenkins.triggers.ReverseBuildTrigger")
        assert [t.findtext("upstreamProjects") for t in triggers] == [f"fx-{upstream}"]
        expected = "UNSTABLE" if stage == "job5-notify" else "SUCCESS"
        assert triggers[0].findtext("threshold/name") == expected
        assert job(elements, upstream).find(PARAMETERIZED) is None
        assert any("--waiting" in c for c in commands(job(elements, stage)))
    for stage in ("job1-pull", "job6-watchdog"):
        assert job(elements, stage).find("triggers/jenkins.triggers.ReverseBuildTrigger") is None


def test_descriptions_are_plain_text_and_job1_has_only_current_git_fields(
    rendered: dict[str, RenderedJobs],
) -> None:
    """JJB's "Managed by" HTML comment shows as literal text in Jenkins; the git plugin has
    dropped these fields and flags a job that has them as "Old Data Format"."""
    for xml in [*rendered["pipeline"].jobs.values(), *rendered["pipeline"].views.values()]:
        assert "Managed by Jenkins Job Builder" not in xml
    pull = ET.fromstring(rendered["pipeline"].jobs["fx-job1-pull"])
    for dropped in DROPPED_FIELDS:
        assert pull.find(dropped) is None, dropped
    notify = ET.fromstring(rendered["pipeline"].jobs["fx-job5-notify"])
    assert notify.find("publishers/hudson.tasks.junit.JUnitResultArchiver/keepLongStdio") is None
    assert notify.find("publishers/hudson.tasks.ArtifactArchiver/latestOnly") is None


def test_tune_exit_3_makes_job4_unstable_so_job5_still_reports(jobs: dict[str, ET.Element]) -> None:
    shells = job(jobs, "job4-tune").findall("builders/hudson.tasks.Shell")
    assert [s.findtext("unstableReturn") for s in shells] == ["3"]


def test_job5_publishes_the_junit_file_that_status_writes(jobs: dict[str, ET.Element]) -> None:
    notify = job(jobs, "job5-notify")
    publisher = "publishers/hudson.tasks.junit.JUnitResultArchiver"
    report = notify.findtext(f"{publisher}/testResults")
    assert report == "tweakops-junit.xml"
    assert notify.findtext(f"{publisher}/allowEmptyResults") == "true"  # a build of no run
    assert any(f'--this-build --junit "$WORKSPACE/{report}"' in c for c in commands(notify))


def test_job5_writes_junit_and_artifacts_after_the_email(jobs: dict[str, ET.Element]) -> None:
    """A failed email is a failed test: the JUnit file is written after notify ran, and
    notify's failure does not stop the build before it (the JUnit result says why)."""
    notify = job(jobs, "job5-notify")
    archiver = notify.find("publishers/hudson.tasks.ArtifactArchiver")
    assert archiver is not None and archiver.findtext("artifacts") == "tweakops-artifacts/**"
    assert archiver.findtext("allowEmptyArchive") == "true"  # a run with no report: no red
    steps = [shlex.split(c)[1] for c in commands(notify)]
    assert steps == ["notify", "status", "artifacts"]
    assert commands(notify)[0].startswith("tweakops notify --waiting || ")


def test_job6_publishes_the_runs_it_resumed(jobs: dict[str, ET.Element]) -> None:
    watchdog = job(jobs, "job6-watchdog")
    (command,) = commands(watchdog)
    assert command == 'tweakops watch --all --report-to "$WORKSPACE/tweakops-resumed"'
    publisher = "publishers/hudson.tasks.junit.JUnitResultArchiver"
    assert watchdog.findtext(f"{publisher}/testResults") == "tweakops-resumed/*/tweakops-junit.xml"
    assert watchdog.findtext(f"{publisher}/allowEmptyResults") == "true"  # mostly nothing
    archiver = watchdog.find("publishers/hudson.tasks.ArtifactArchiver")
    assert archiver is not None and archiver.findtext("artifacts") == "tweakops-resumed/**"


def test_job6_watchdog_runs_on_the_timer_from_settings(
    jobs: dict[str, ET.Element], settings: JenkinsSettings
) -> None:
    spec = job(jobs, "job6-watchdog").findtext("triggers/hudson.triggers.TimerTrigger/spec")
    assert spec == settings.watchdog_schedule == "H/7 * * * *"


def test_job1_polls_the_repo_and_takes_the_remote_trigger_token(
    jobs: dict[str, ET.Element], settings: JenkinsSettings
) -> None:
    pull = job(jobs, "job1-pull")
    assert pull.findtext("triggers/hudson.triggers.SCMTrigger/spec") == settings.poll_schedule
    assert pull.findtext("scm/userRemoteConfigs/*/url") == settings.repo_url
    assert pull.findtext("scm/branches/*/name") == f"*/{settings.branch}"
    assert pull.findtext("authToken") == settings.trigger_token == "fixture-token-42"
    wanted = {"REF", "BRANCH", "THRESHOLD", "MAX_TRIALS", "REPO_URL", "TWEAKOPS_HOME"}
    assert wanted <= parameter_names(pull)


def test_no_token_means_no_remote_trigger(settings: JenkinsSettings) -> None:
    pull = render(replace(settings, trigger_token=None)).jobs["fx-job1-pull"]
    assert ET.fromstring(pull).find("authToken") is None


def test_every_job_runs_on_the_agent_label_one_at_a_time(
    jobs: dict[str, ET.Element], settings: JenkinsSettings
) -> None:
    for element in jobs.values():
        assert element.findtext("assignedNode") == settings.agent_label
        assert element.findtext("concurrentBuild") == "false"
        assert element.find("properties/jenkins.model.BuildDiscarderProperty") is not None


def test_settings_reach_the_shell_only_as_parameter_defaults(
    jobs: dict[str, ET.Element], settings: JenkinsSettings
) -> None:
    values = [v for v in settings.variables().values() if v and len(v) > 3]
    for name, element in jobs.items():
        defaults = element.findall(".//hudson.model.StringParameterDefinition/defaultValue")
        assert {d.text for d in defaults} >= {settings.repo_url, settings.tweakops_home}
        for command in commands(element):
            assert not [v for v in values if v in command], f"{name}: {command}"
            assert "{" not in command.replace("${", ""), f"{name}: {command}"


def test_shell_commands_use_only_the_jobs_own_variables(jobs: dict[str, ET.Element]) -> None:
    for name, element in jobs.items():
        known = parameter_names(element) | JENKINS_VARS
        for command in commands(element):
            used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", command))
            assert used <= known, f"{name}: {sorted(used - known)} in {command}"


def test_every_shell_command_is_a_tweakops_command_the_cli_accepts(
    jobs: dict[str, ET.Element],
) -> None:
    seen = set()
    for name, element in jobs.items():
        for command in commands(element):
            tolerated = re.sub(r' \|\| echo "[^"$`]*"$', "", command)  # notify: JUnit says why
            try:  # parse only: unknown options or a missing SOURCE fail here
                subcommand, _, _ = cli_call(tolerated)
            except AssertionError as error:
                pytest.fail(f"{name}: `{command}` is refused by the CLI: {error}")
            seen.add(subcommand)
    assert seen == {"pull", "inspect", "train", "tune", "status", "notify", "artifacts", "watch"}


def test_changing_the_prefix_renames_every_job_and_the_view_lists(
    settings: JenkinsSettings,
) -> None:
    renamed = replace(settings, prefix="acme-")
    pipeline, listed = render(renamed), render(renamed, pipeline_view=False)
    assert sorted(pipeline.jobs) == [f"acme-{s}" for s in STAGES]
    assert chain(pipeline) == [f"acme-{s}" for s in STAGES[:5]]
    assert not [x for x in pipeline.jobs.values() if "fx-" in x]
    pipeline_view = ET.fromstring(pipeline.views["fixture-view"])
    assert pipeline_view.findtext("gridBuilder/firstJob") == "acme-job1-pull"
    names = [s.text for s in ET.fromstring(listed.views["fixture-view"]).findall("jobNames/string")]
    assert names == [f"acme-{s}" for s in STAGES]


def test_an_empty_prefix_gives_the_seeds_job_names(settings: JenkinsSettings) -> None:
    assert sorted(render(replace(settings, prefix="")).jobs) == STAGES


def test_a_view_named_like_a_job_is_refused(settings: JenkinsSettings) -> None:
    with pytest.raises(ConfigError, match="view_name 'fx-job1-pull' is also a job name"):
        render(replace(settings, view_name="fx-job1-pull"))


def test_a_template_with_an_unknown_variable_is_a_config_error(
    tmp_path: Path, settings: JenkinsSettings
) -> None:
    for path in JOBS_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        (tmp_path / path.name).write_text(text.replace("{agent_label}", "{agent_lable}"))
    where = r"do not render at .*tweakops-jobs\.yaml:\d+: .*'agent_lable'"
    with pytest.raises(ConfigError, match=where):
        render(settings, jobs_dir=tmp_path)


def test_write_rendered_writes_one_xml_file_per_job_and_view(
    tmp_path: Path, rendered: dict[str, RenderedJobs]
) -> None:
    written = write_rendered(rendered["list"], tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        [f"fx-{s}.xml" for s in STAGES] + ["fixture-view.xml"]
    )
    assert (tmp_path / "out" / "fixture-view.xml").read_text() == rendered["list"].views[
        "fixture-view"
    ]


def test_the_module_command_renders_the_shipped_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--out", str(tmp_path), "--list-view"])
    shipped = load_settings()
    printed = capsys.readouterr().out.split()
    assert f"{tmp_path / shipped.view_name}.xml" in printed
    assert len(printed) == 7
    root = ET.fromstring((tmp_path / f"{shipped.view_name}.xml").read_text())
    assert root.tag == "hudson.model.ListView"


def test_jobs_folder_holds_yaml_and_its_readme_only() -> None:
    names = {p.name for p in JOBS_DIR.iterdir()}
    assert "settings.yaml" in names
    assert {p.suffix for p in JOBS_DIR.iterdir()} <= {".yaml", ".md"}
