"""The Jenkinsfile, parsed with Debian's groovy (never run by it), then its `sh` steps run.

(a) jenkinsfile_ast.groovy turns the Jenkinsfile into JSON (parameters, options, stages,
    steps, sh scripts, credential bindings, post); the tests check it against the CLI.
(b) The `sh` steps run in order with bash on examples/iris-sklearn, with the Jenkinsfile's
    glue emulated (run id capture, tune's exit 3, the post step), to a run that meets its
    threshold and a JUnit report that says so.

Without `groovy` the (a)/(b) tests are skipped, unless TWEAKOPS_REQUIRE_GROOVY=1 (CI).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from tests.conftest import skip_or_require
from tweakops.cli import cli as tweakops_cli
from tweakops.records import STAGES

ROOT = Path(__file__).resolve().parents[2]
JENKINSFILE = ROOT / "Jenkinsfile"
AST_SCRIPT = Path(__file__).with_name("jenkinsfile_ast.groovy")
JUNIT_FILE = "tweakops-junit.xml"
ARTIFACTS = "tweakops-artifacts"  # what `tweakops artifacts --to` fills; the only archive
SMTP_SECRET = "jenkins-bound-S3cret-9f3a"  # stands in for the bound credential's password


# --- groovy --------------------------------------------------------------------------------


def _java_home() -> str | None:
    """JAVA_HOME for Debian's groovy script, which defaults to /usr/lib/jvm/default-java
    (missing when the JDK came without default-jre): the JDK of `java` on PATH."""
    current = os.environ.get("JAVA_HOME")
    if current and Path(current, "bin", "java").exists():
        return current
    if Path("/usr/lib/jvm/default-java/bin/java").exists():
        return None
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def groovy_parse(jenkinsfile: Path) -> dict[str, Any]:
    """Run jenkinsfile_ast.groovy on `jenkinsfile`; skip (or fail under CI) without groovy."""
    groovy = shutil.which("groovy")
    if groovy is None:
        reason = "groovy is not installed (Debian: apt-get install groovy)"
        skip_or_require("TWEAKOPS_REQUIRE_GROOVY", "groovy", reason)
    env = dict(os.environ)
    java_home = _java_home()
    if java_home:
        env["JAVA_HOME"] = java_home
    proc = subprocess.run(
        [groovy, str(AST_SCRIPT), str(jenkinsfile)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, f"groovy failed ({proc.returncode}):\n{proc.stderr}"
    parsed: dict[str, Any] = json.loads(proc.stdout)
    return parsed


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return groovy_parse(JENKINSFILE)


def _stage(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in pipeline["stages"] if s["name"] == name)
    return found


def _steps(section: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in section["steps"] if s["step"] == name]


def _post(pipeline: dict[str, Any], condition: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in pipeline["post"] if p["condition"] == condition)
    return found


# --- the CLI as the checker sees it ----------------------------------------------------------


def cli_call(script: str) -> tuple[str, dict[str, list[str]], list[str]]:
    """Check that `script` is one `tweakops SUBCOMMAND ...` call that the CLI accepts.

    Returns (subcommand, {option: values}, positional args); raises AssertionError naming
    what does not exist. `|| true` is stripped; `${VAR:+words}` is checked as its words.
    """
    text = re.sub(r"\s*\|\|\s*true\s*$", "", script.strip())
    text = re.sub(r"\$\{\w+:\+(.*?)\}", r"\1", text)
    assert not re.search(r"[;&|`<>\n]|\$\(", text), f"not one plain command: {script!r}"
    tokens = shlex.split(text)
    assert tokens and tokens[0] == "tweakops", f"not a tweakops call: {script!r}"
    rest = tokens[1:]
    rest = _consume_options(tweakops_cli, rest, {}, script, stop_at_positional=True)
    assert rest, f"no subcommand in {script!r}"
    name, rest = rest[0], rest[1:]
    assert isinstance(tweakops_cli, click.Group)
    command = tweakops_cli.commands.get(name)
    assert command is not None, f"`tweakops {name}` does not exist (in {script!r})"
    assert not isinstance(command, click.Group), f"`tweakops {name}` needs a subcommand"
    options: dict[str, list[str]] = {}
    positional = _consume_options(command, rest, options, script, stop_at_positional=False)
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    least = sum(a.nargs if a.nargs > 0 else 0 for a in arguments if a.required)
    most = float("inf") if any(a.nargs < 0 for a in arguments) else sum(a.nargs for a in arguments)
    assert least <= len(positional) <= most, (
        f"`tweakops {name}` takes {least}..{most} argument(s), got {positional} in {script!r}"
    )
    return name, options, positional


def _consume_options(
    command: click.Command,
    tokens: list[str],
    options: dict[str, list[str]],
    script: str,
    stop_at_positional: bool,
) -> list[str]:
    known: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                known[opt] = param
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or token == "-":
            if stop_at_positional:
                return tokens[i:]
            positional.append(token)
            i += 1
            continue
        flag, _, inline = token.partition("=")
        if flag in ("-h", "--help"):
            raise AssertionError(f"--help in a pipeline step: {script!r}")
        option = known.get(flag)
        assert option is not None, (
            f"`{command.name}` has no option {flag} (has {sorted(known)}) in {script!r}"
        )
        if option.is_flag or option.count:
            assert not inline, f"{flag} takes no value in {script!r}"
            options.setdefault(flag, []).append("")
            i += 1
            continue
        if inline:
            options.setdefault(flag, []).append(inline)
            i += 1
            continue
        assert i + 1 < len(tokens), f"{flag} needs a value in {script!r}"
        options.setdefault(flag, []).append(tokens[i + 1])
        i += 2
    return positional if not stop_at_positional else []


def test_checker_accepts_real_calls_and_rejects_made_up_ones() -> None:
    name, options, args = cli_call(
        'tweakops pull "$REPO_URL" ${REF:+--ref "$REF"} --threshold "$THRESHOLD"'
    )
    assert (name, args) == ("pull", ["$REPO_URL"])
    assert options == {"--ref": ["$REF"], "--threshold": ["$THRESHOLD"]}
    assert cli_call('tweakops --json status --run "$X" --junit=out.xml || true')[0] == "status"
    for bad, why in [
        ('tweakops tune --run "$X" --budget 3', "no option --budget"),
        ('tweakops deploy --run "$X"', "does not exist"),
        ("tweakops pull", "argument"),
        ('tweakops inspect --run "$X" extra', "argument"),
        ("make train", "not a tweakops call"),
        ('tweakops train --run "$X"; rm -rf /', "not one plain command"),
        ('tweakops train --run "$(cat id)"', "not one plain command"),
    ]:
        with pytest.raises(AssertionError, match=re.escape(why)):
            cli_call(bad)


# --- (a) the parsed Jenkinsfile ----------------------------------------------------------------


def test_stages_are_the_six_in_order(pipeline: dict[str, Any]) -> None:
    assert [s["name"] for s in pipeline["stages"]] == list(STAGES)
    assert list(STAGES) == ["pull", "inspect", "train", "tune", "notify", "watch"]


def test_parameters_left_empty_mean_the_repository_decides(pipeline: dict[str, Any]) -> None:
    params = {p["name"]: p for p in pipeline["parameters"]}
    assert set(params) == {"REPO_URL", "REF", "BRANCH", "THRESHOLD", "MAX_TRIALS"}
    assert all(p["type"] == "string" for p in params.values())
    # Empty: the repo's tweakops.yaml (THRESHOLD, MAX_TRIALS), its default branch (REF), the
    # repository the Jenkinsfile came from (REPO_URL). A flag would beat the file.
    assert all(p["default"] == "" for p in params.values())


def test_a_build_without_parameters_uses_its_own_checkout_or_stops_at_once(
    pipeline: dict[str, Any],
) -> None:
    """The first build of a new Pipeline job has no parameters yet; from SCM it has a
    checkout: pull that, else stop with one line that says what to do."""
    pull = _stage(pipeline, "pull")
    (error,) = _steps(pull, "error")
    assert error["conditions"] == ["!(env.REPO_URL?.trim())", "!(this.fileExists(.git))"]
    (check,) = _steps(pull, "fileExists")
    assert check["conditions"] == ["!(env.REPO_URL?.trim())"]
    text = pipeline_text()
    assert "env.PULL_SOURCE = env.WORKSPACE" in text
    assert "run Build with Parameters and give REPO_URL" in text


def test_options(pipeline: dict[str, Any]) -> None:
    assert {"timeout", "buildDiscarder", "disableConcurrentBuilds"} <= set(pipeline["options"])


def test_run_store_lives_in_the_workspace(pipeline: dict[str, Any]) -> None:
    home = pipeline["environment"]["TWEAKOPS_HOME"]
    assert home["text"] == "${WORKSPACE}/.tweakops"  # what the archive patterns assume


def pipeline_text() -> str:
    return JENKINSFILE.read_text()


def test_each_stage_is_one_tweakops_call_of_that_stage(pipeline: dict[str, Any]) -> None:
    for stage in pipeline["stages"]:
        calls = _steps(stage, "sh")
        scripts = {c["script"] for c in calls}  # notify: with or without the credential
        assert len(scripts) == 1, f"stage {stage['name']}: {len(scripts)} different sh steps"
        name, options, args = cli_call(calls[0]["script"])
        assert name == stage["name"]
        if name == "pull":
            assert args == ["$PULL_SOURCE"]
            assert options == {
                "--ref": ["$PULL_REF"],
                "--branch": ["$PULL_BRANCH"],
                "--threshold": ["$THRESHOLD"],
                "--max-trials": ["$MAX_TRIALS"],
            }
        else:
            assert options.get("--run") == ["$TWEAKOPS_RUN_ID"], calls[0]["script"]


def test_every_sh_step_exists_in_the_cli(pipeline: dict[str, Any]) -> None:
    assert len(pipeline["sh"]) >= 7  # six stages and the post step
    for step in pipeline["sh"]:
        cli_call(step["script"])
        # Jenkins runs `sh` scripts with /bin/sh: POSIX syntax only.
        proc = subprocess.run(["sh", "-n", "-c", step["script"]], capture_output=True, text=True)
        assert proc.returncode == 0, f"line {step['line']}: {proc.stderr}"


def test_no_groovy_interpolation_into_shell(pipeline: dict[str, Any]) -> None:
    assert pipeline["findings"] == []
    allowed = {p["name"] for p in pipeline["parameters"]} | set(pipeline["environment"])
    allowed |= {"TWEAKOPS_RUN_ID", "PULL_SOURCE", "PULL_REF", "PULL_BRANCH"}  # set by the glue
    for step in pipeline["sh"]:
        script = step["script"]
        assert step["scriptKind"] == "constant", step
        assert step["quote"] == "'", f"line {step['line']}: not single-quoted"
        # The shell expands variables, always inside double quotes (no word splitting).
        bare = re.sub(r'"\$\w+"', "", re.sub(r"\$\{\w+:\+", "", script))
        assert "$" not in bare, f"line {step['line']}: unquoted expansion in {script!r}"
        used = set(re.findall(r"\$\{?(\w+)", script))
        assert used <= allowed, f"line {step['line']}: {used - allowed} are not set"
        assert "TWEAKOPS_SMTP" not in script  # credentials only through the environment


def test_the_checker_finds_interpolation(tmp_path: Path) -> None:
    bad = tmp_path / "Jenkinsfile"
    bad.write_text(
        "pipeline {\n"
        "    agent any\n"
        "    stages {\n"
        "        stage('inspect') {\n"
        "            steps {\n"
        '                sh "tweakops inspect --run ${params.RUN}"\n'
        '                sh "tweakops train"\n'
        "                sh(script: 'tweakops tune ' + params.X)\n"
        "            }\n"
        "        }\n"
        "    }\n"
        "}\n"
    )
    findings = groovy_parse(bad)["findings"]
    assert len(findings) == 3, findings
    assert findings[0].startswith("line 6: sh script in stage inspect is a GString")
    assert "params.RUN" in findings[0]
    assert findings[1].startswith("line 7:") and "not single-quoted" in findings[1]
    assert findings[2].startswith("line 8:") and "not a string literal" in findings[2]


def test_pull_captures_the_run_id(pipeline: dict[str, Any]) -> None:
    (step,) = _steps(_stage(pipeline, "pull"), "sh")
    assert step["returnStdout"] is True
    assert step["assignedTo"] == "env.TWEAKOPS_RUN_ID"
    assert step["chain"][-1] == "last"  # `pull` prints the run id as its last line


def test_tune_not_reached_is_unstable_not_an_abort(pipeline: dict[str, Any]) -> None:
    tune = _stage(pipeline, "tune")
    (step,) = _steps(tune, "sh")
    assert step["returnStatus"] is True
    code = step["assignedTo"]
    assert code
    (unstable,) = _steps(tune, "unstable")
    assert unstable["conditions"] == [f"({code} == 3)"]
    (error,) = _steps(tune, "error")
    assert error["conditions"][-1] == f"({code} != 0)"


def test_smtp_credentials_are_bound_for_notify_only(pipeline: dict[str, Any]) -> None:
    bound = {
        stage["name"]: _steps(stage, "withCredentials")
        for stage in pipeline["stages"]
        if _steps(stage, "withCredentials")
    }
    assert list(bound) == ["notify"]
    assert not any(_steps(p, "withCredentials") for p in pipeline["post"])
    (wrapper,) = bound["notify"]
    (binding,) = wrapper["bindings"]
    assert binding["type"] == "usernamePassword"
    assert binding["credentialsId"] == "tweakops-smtp"
    assert binding["arguments"]["passwordVariable"] == "TWEAKOPS_SMTP_PASSWORD"
    assert binding["arguments"]["usernameVariable"] == "TWEAKOPS_SMTP_USER"
    with_secret = [s["where"] for s in pipeline["sh"] if s["credentials"]]
    assert with_secret == ["stage notify"]
    # Nothing that could print or store the secret runs inside the binding.
    bound, unbound = _steps(_stage(pipeline, "notify"), "sh")
    assert bound["credentials"] == ["TWEAKOPS_SMTP_USER", "TWEAKOPS_SMTP_PASSWORD"]
    inside = [s["step"] for s in _stage(pipeline, "notify")["steps"] if s["credentials"]]
    assert sorted(set(inside)) == ["sh", "usernamePassword"]
    # No such credential: the same call, without a login, only when the binding failed.
    assert unbound["credentials"] == [] and unbound["script"] == bound["script"]
    (fallback,) = [s for s in _stage(pipeline, "notify")["steps"] if s["step"] == "sh"][1:]
    assert fallback["conditions"] == ["catch (err)"]
    assert "if (bound) {\n                            throw err" in pipeline_text()


def test_a_failed_email_makes_the_build_unstable_not_failed(pipeline: dict[str, Any]) -> None:
    notify = _stage(pipeline, "notify")
    calls = _steps(notify, "sh")
    assert all(c["returnStatus"] and c["assignedTo"] == "mailed" for c in calls)
    (unstable,) = _steps(notify, "unstable")
    assert unstable["conditions"] == ["(mailed != 0)"]


def test_post_always_reports_and_archives_only_the_exported_folder(
    pipeline: dict[str, Any],
) -> None:
    always = _post(pipeline, "always")
    status, report, artifacts = _steps(always, "sh")
    name, options, _ = cli_call(status["script"])
    assert name == "status"
    assert options["--run"] == ["$TWEAKOPS_RUN_ID"]
    assert options["--junit"] == [JUNIT_FILE]
    name, options, _ = cli_call(report["script"])
    assert (name, options["--run"]) == ("report", ["$TWEAKOPS_RUN_ID"])
    assert report["returnStatus"]  # a report that cannot be written never fails the build
    name, options, _ = cli_call(artifacts["script"])
    assert (name, options["--to"]) == ("artifacts", [ARTIFACTS])
    assert artifacts["returnStatus"]
    (junit,) = _steps(always, "junit")
    assert junit["named"]["testResults"]["text"] == JUNIT_FILE
    assert junit["named"]["allowEmptyResults"]["text"] is True
    (archive,) = _steps(always, "archiveArtifacts")
    assert _archive_patterns(archive) == [f"{ARTIFACTS}/**"]  # never the run folder itself
    assert archive["named"]["allowEmptyArchive"]["text"] is True
    assert archive["named"]["followSymlinks"]["text"] is False


STRING = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')


def block_offenders(text: str) -> list[str]:
    """Lines where a `{` does not end the line (strings and comments aside)."""
    offenders = []
    for number, line in enumerate(text.splitlines(), 1):
        code = STRING.sub("''", line).split("//")[0]
        if re.search(r"\{\s*\S", code):
            offenders.append(f"{number}: {line.strip()}")
    return offenders


def test_one_block_per_line() -> None:
    """Jenkins' declarative parser is strict: `steps { sh 'x' }` on one line is refused."""
    assert block_offenders(JENKINSFILE.read_text()) == []
    sample = "steps {\n    sh 'a { b }'\n    echo \"${x} {\" // c { d }\n}\nsteps { sh 'x' }\n"
    assert block_offenders(sample) == ["5: steps { sh 'x' }"]


def _archive_patterns(step: dict[str, Any]) -> list[str]:
    artifacts = step["named"]["artifacts"]["text"]
    return [p.strip() for p in artifacts.split(",") if p.strip()]


# --- (b) the sh steps, run ------------------------------------------------------------------


def _groovy_text(text: str, values: dict[str, str]) -> str:
    """Evaluate a GString as written (`${expr}`) with `values` for its expressions."""
    return re.sub(r"\$\{([^}]*)\}", lambda m: values[m.group(1)], text)


def _sh(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _agent_env(pipeline: dict[str, Any], repo: Path, tmp_path: Path) -> dict[str, str]:
    """An agent's environment: `tweakops` on PATH running this checkout, the build's
    parameters, and the Jenkinsfile's environment {} block evaluated over them."""
    bin_dir = tmp_path / "bin"  # `tweakops` on PATH, running this checkout
    bin_dir.mkdir()
    shim = bin_dir / "tweakops"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tweakops "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEAKOPS_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        WORKSPACE=str(tmp_path / "workspace"),
        REPO_URL=str(repo),
        REF="main",
        THRESHOLD="0.95",
        MAX_TRIALS="10",
        TWEAKOPS_RUNTIME="local",
    )
    for name, value in pipeline["environment"].items():  # the environment {} block
        env[name] = _groovy_text(str(value["text"]), env)
    return env


def _run_stages(
    pipeline: dict[str, Any], env: dict[str, str], workspace: Path, logs: list[str]
) -> str:
    """Each stage's sh step as Jenkins runs it (credentials bound around the notify step only),
    judged as the Jenkinsfile judges its exit code; the build's result. The run id the first
    stage prints goes into env, as `env.TWEAKOPS_RUN_ID = sh(returnStdout: true, ...)`."""
    result = "SUCCESS"
    env.update(PULL_SOURCE=env["REPO_URL"], PULL_REF=env["REF"], PULL_BRANCH="")  # the glue
    for stage in pipeline["stages"]:
        step = _steps(stage, "sh")[0]  # notify: the one with the credential bound
        stage_env = dict(env)
        for variable in step["credentials"]:  # withCredentials: only around this step
            stage_env[variable] = SMTP_SECRET if "PASSWORD" in variable else "ci-bot"
        proc = _sh(step["script"], stage_env, workspace)
        logs += [proc.stdout, proc.stderr]
        where = f"stage {stage['name']} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        if step["returnStdout"]:
            assert proc.returncode == 0, where
            assert step["assignedTo"] == "env.TWEAKOPS_RUN_ID"
            env["TWEAKOPS_RUN_ID"] = proc.stdout.strip().splitlines()[-1]
        elif step["returnStatus"] and stage["name"] == "notify":
            assert proc.returncode == 0, where  # else UNSTABLE: the email was not sent
        elif step["returnStatus"]:
            assert proc.returncode in (0, 3), where  # other codes: error(), build fails
            if proc.returncode == 3:
                result = "UNSTABLE"
        else:
            assert proc.returncode == 0, where
    return result


def _run_post_always(
    pipeline: dict[str, Any], env: dict[str, str], workspace: Path, logs: list[str]
) -> None:
    """post { always { ... } }: the status step, then what it guards."""
    always = _post(pipeline, "always")
    assert all(s["conditions"][0] == "env.TWEAKOPS_RUN_ID" for s in always["steps"])
    status, report, artifacts = _steps(always, "sh")
    for step in (status, report, artifacts):
        proc = _sh(step["script"], env, workspace)
        logs += [proc.stdout, proc.stderr]
        assert proc.returncode == 0, proc.stderr


def _assert_junit_and_artifacts(workspace: Path, run_id: str) -> None:
    """A JUnit case per stage and the threshold, all passed; the report, metric, plot, logs and
    model exported for archiving; the run's accuracy over the threshold."""
    suite = ET.parse(workspace / JUNIT_FILE).getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == [*STAGES, "threshold"]
    assert cases["threshold"].find("failure") is None, ET.tostring(cases["threshold"])
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "0")

    exported = workspace / ARTIFACTS
    for wanted in ("report.html", "accuracy.txt", "accuracy.png", "trials/000/log.txt"):
        assert (exported / wanted).is_file(), wanted
    assert [p for p in (exported / "model").rglob("*") if p.is_file()]  # the best checkpoints
    accuracy = float((workspace / f".tweakops/runs/{run_id}/accuracy.txt").read_text())
    assert accuracy >= 0.95


def test_sh_steps_run_an_example_to_its_threshold(
    pipeline: dict[str, Any], make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo("iris-sklearn")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = _agent_env(pipeline, repo, tmp_path)
    assert env["TWEAKOPS_HOME"] == str(workspace / ".tweakops")
    logs: list[str] = []

    result = _run_stages(pipeline, env, workspace, logs)

    run_id = env["TWEAKOPS_RUN_ID"]
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id), run_id
    assert result == "SUCCESS"  # tune exited 0: the threshold was reached
    _run_post_always(pipeline, env, workspace, logs)
    _assert_junit_and_artifacts(workspace, run_id)

    # The bound password was never printed nor written anywhere in the workspace.
    assert not any(SMTP_SECRET in log for log in logs)
    secret = SMTP_SECRET.encode()
    leaked = [p for p in workspace.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert leaked == []
