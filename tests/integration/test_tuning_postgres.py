"""tuning.storage on a real PostgreSQL server: machines share one study; tuning resumes.

A "machine" is its own run store (TWEAKOPS_HOME): its run is pulled, inspected and trained
in-process, then `tweakops tune` runs as a real CLI subprocess with the local runtime.
The study lives on a loopback server that postgres_fixtures starts (skipped without
PostgreSQL unless TWEAKOPS_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_tweakops, start_tweakops, tweakops_env
from tests.integration.postgres_fixtures import (
    PASSWORD,
    PASSWORD_ROLE,
    PostgresServer,
    free_port,
    running_postgres,
)
from tests.integration.test_resume import wait_for_epoch
from tweakops.context import RunContext, run_stage
from tweakops.report.console import Console
from tweakops.stages import inspect, pull, train
from tweakops.store import RunStore

EXIT_NOT_REACHED = 3
STUDY = "shared-one"
# test_resume's COUNTER_SCRIPT with quicker defaults (the baseline trial 0 takes ~0.2 s)
SCRIPT = """\
import time
import sklearn  # noqa: F401  (picks the sklearn image)
import training

epochs = training.param("epochs", 3)
checkpoint = training.SklearnCheckpoint()
state = checkpoint.load()
start = state[1] + 1 if state else 1
for epoch in range(start, epochs + 1):
    time.sleep(training.param("epoch_seconds", 0.05))
    checkpoint.save({"epoch": epoch}, epoch)
    training.log_epoch(epoch, accuracy=epoch / epochs)
training.write_metric(0.5 + training.param("quality", 0.0))
"""
# Known product bugs, reported with their evidence; remove a marker once its bug is fixed.


def tuning_yaml(url: str, max_trials: int, study: str = STUDY, epochs: int = 4) -> str:
    """Threshold 1.0 is never reached (the metric is at most 0.9): max_trials ends tuning.
    Each machine runs one trial at a time, so the tests can count what each one asked."""
    return f"""\
threshold: 1.0
max_trials: {max_trials}
search_space:
  quality: {{type: float, low: 0.0, high: 0.4}}
  epoch_seconds: [0.1]
  epochs: [{epochs}]
tuning:
  storage: {url}
  study: {study}
  pruning: false
  parallel: 1
"""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real server for the session, stopped and removed at its end."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    """A fresh database owned by the trusted role: each test's studies start empty."""
    return postgres.new_database()


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = tweakops_env(home)
    for name in ("TWEAKOPS_RUN_ID", "PGPASSWORD", "PGPASSFILE", "PGSERVICE"):
        env.pop(name, None)  # the machine's own libpq settings must not leak into a test
    return {**env, **(extra or {})}


def tweakops(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`tweakops ARGS` on the machine whose run store is `home`."""
    return run_tweakops(home, *args, env=_env(home, env), timeout=timeout)


@dataclass
class Tune:
    """`tweakops --json tune` running in the background; its output goes to files."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float = 120) -> tuple[int, str, str]:
        code = self.process.wait(timeout)
        return code, self.out.read_text(), self.err.read_text()


@pytest.fixture
def start_tune() -> Iterator[Callable[[Path, str], Tune]]:
    """Start `tweakops --json tune --run RUN_ID` on the machine HOME; killed if left running."""
    started: list[Tune] = []

    def start(home: Path, run_id: str) -> Tune:
        out, err = home.parent / f"{home.name}-tune.out", home.parent / f"{home.name}-tune.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            tune = ("--json", "tune", "--run", run_id)
            process = start_tweakops(home, *tune, env=_env(home), stdout=stdout, stderr=stderr)
        started.append(Tune(process, out, err))
        return started[-1]

    yield start
    for tune in started:
        if tune.process.poll() is None:
            tune.process.kill()
            tune.process.wait()


def trained_run(home: Path, repo: Path) -> str:
    """pull, inspect and train (trial 0) on the machine `home`; the run's id."""
    store = RunStore(home)
    ctx = RunContext(store, store.create_run(str(repo)), Console(quiet=True), "local")
    for name, stage in (("pull", pull), ("inspect", inspect), ("train", train)):
        run_stage(ctx, name, stage)
    return ctx.run.id


def load_study(url: str, name: str = STUDY) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def finish(tunes: dict[str, Tune]) -> dict[str, dict[str, Any]]:
    """Wait for each machine's tune; both end with a verdict: budget spent (exit 3)."""
    outputs = {name: tune.wait() for name, tune in tunes.items()}
    results = {}
    for name, (code, out, err) in outputs.items():
        assert code == EXIT_NOT_REACHED, f"machine {name} ({code}): {err}"
        results[name] = json.loads(out)
        assert "max_trials" in results[name]["verdict"], results[name]
    return results


def check_one_study(
    url: str,
    homes: dict[str, Path],
    runs: dict[str, str],
    results: dict[str, dict[str, Any]],
    max_trials: int,
) -> None:
    """The server's study holds every machine's trials, each run once, on one budget."""
    study = load_study(url)
    in_study = {t.number + 1: t for t in study.trials}  # tweakops numbers trials from 1
    mine = {
        name: {t.number: t for t in RunStore(home).trials(runs[name]) if t.number > 0}
        for name, home in homes.items()
    }
    assert all(mine.values()), f"a machine ran no trial: {mine}"
    assert not set(mine["a"]) & set(mine["b"]), f"trials run on both machines: {mine}"
    assert set(mine["a"]) | set(mine["b"]) == set(in_study)  # each in its own run store
    for records in mine.values():
        for number, record in records.items():
            assert record.status == "succeeded", record
            assert record.params == in_study[number].params
            assert record.accuracy == pytest.approx(in_study[number].value)
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    # one budget for the model: max_trials counts every machine's trials (baseline included);
    # one trial of slack for the other machine's trial in flight when a machine decides
    assert len(study.trials) <= max_trials, sorted(in_study)
    for name, result in results.items():
        # the history is shared: each verdict counts trials the other machine ran
        assert result["trials"] > 1 + len(mine[name]), (name, result, sorted(mine[name]))
        # the best trial may be the other machine's: then there is no model here to publish
        if result["best_trial"] in mine[name] or result["best_trial"] == 0:
            assert str(homes[name]) in result["model_dir"], result
        else:
            assert result["model_dir"] is None, result


def two_machines_trained(
    make_repo: Any, tmp_path: Path, url: str, max_trials: int
) -> tuple[dict[str, Path], dict[str, str]]:
    """Machines a and b, each with its own store and a trained run of one repo on `url`."""
    repo = make_repo(files={"train.py": SCRIPT, "tweakops.yaml": tuning_yaml(url, max_trials)})
    homes = {"a": tmp_path / "machine-a", "b": tmp_path / "machine-b"}
    return homes, {name: trained_run(home, repo) for name, home in homes.items()}


def test_two_machines_start_tuning_one_model_together(
    postgres: PostgresServer, database: str, make_repo, tmp_path: Path, start_tune
) -> None:
    url, max_trials = postgres.url(database), 7
    homes, runs = two_machines_trained(make_repo, tmp_path, url, max_trials)
    tunes = {name: start_tune(home, runs[name]) for name, home in homes.items()}  # at once
    results = finish(tunes)
    check_one_study(url, homes, runs, results, max_trials)


def test_a_machine_joins_a_study_while_another_runs_a_trial(
    postgres: PostgresServer, database: str, make_repo, tmp_path: Path, start_tune
) -> None:
    url, max_trials = postgres.url(database), 7
    homes, runs = two_machines_trained(make_repo, tmp_path, url, max_trials)
    tunes = {"a": start_tune(homes["a"], runs["a"])}
    output = homes["a"] / "runs" / runs["a"] / "trials" / "001" / "output"
    wait_for_epoch(output, 1)  # a's trial 1 is running on the server's study...
    tunes["b"] = start_tune(homes["b"], runs["b"])  # ...when b joins: b must leave it to a
    results = finish(tunes)
    check_one_study(url, homes, runs, results, max_trials)


def test_a_password_in_the_storage_url_is_refused(
    postgres: PostgresServer, make_repo, tmp_path: Path
) -> None:
    url = postgres.url("studies", role=PASSWORD_ROLE, password=PASSWORD)
    repo = make_repo(files={"train.py": SCRIPT, "tweakops.yaml": tuning_yaml(url, 3)})
    home = tmp_path / "machine"
    pulled = tweakops(home, "pull", str(repo))
    assert pulled.returncode == 0, pulled.stderr
    refused = tweakops(home, "inspect", "--run", pulled.stdout.strip().splitlines()[-1])
    assert refused.returncode == 2, refused.stderr
    (line,) = error_lines(refused.stderr)
    assert "tuning.storage" in line and "PGPASSWORD" in line, line
    assert PASSWORD not in refused.stderr + refused.stdout


def test_pgpassword_opens_a_study_whose_role_needs_a_password(
    postgres: PostgresServer, make_repo, tmp_path: Path
) -> None:
    database = postgres.new_database(owner=PASSWORD_ROLE)
    url = postgres.url(database, role=PASSWORD_ROLE)  # scram-sha-256 for this role
    repo = make_repo(files={"train.py": SCRIPT, "tweakops.yaml": tuning_yaml(url, 3)})
    home = tmp_path / "machine"
    run_id = trained_run(home, repo)
    denied = tweakops(home, "tune", "--run", run_id)  # no PGPASSWORD: the server says no
    assert denied.returncode == 1, denied.stderr
    assert "Traceback" not in denied.stderr, denied.stderr
    (line,) = error_lines(denied.stderr)
    assert "PGPASSWORD" in line and "password" in line.split(";")[0], line
    tuned = tweakops(home, "--json", "tune", "--run", run_id, env={"PGPASSWORD": PASSWORD})
    assert tuned.returncode == EXIT_NOT_REACHED, tuned.stderr
    assert json.loads(tuned.stdout)["trials"] == 3  # the baseline and two trials
    study = load_study(postgres.url(database, PASSWORD_ROLE, PASSWORD))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_killed_tuner_resumes_the_server_study_without_repeating_a_trial(
    postgres: PostgresServer, database: str, make_repo, tmp_path: Path, start_tune
) -> None:
    url = postgres.url(database)
    yaml = tuning_yaml(url, 5, study="resumed", epochs=8)
    repo = make_repo(files={"train.py": SCRIPT, "tweakops.yaml": yaml})
    home = tmp_path / "machine"
    run_id = trained_run(home, repo)
    tuner = start_tune(home, run_id)
    store = RunStore(home)
    deadline = time.monotonic() + 90
    while len([t for t in store.trials(run_id) if t.status == "succeeded"]) < 3:
        assert time.monotonic() < deadline and tuner.process.poll() is None, tuner.err.read_text()
        time.sleep(0.05)
    wait_for_epoch(home / "runs" / run_id / "trials" / "003" / "output", 2)
    tuner.process.kill()
    tuner.process.wait()
    finished = {t.number: t for t in store.trials(run_id) if t.status == "succeeded"}
    assert sorted(finished) == [0, 1, 2]
    study = load_study(url, "resumed")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    resumed = tweakops(home, "tune", "--run", run_id)
    assert resumed.returncode == EXIT_NOT_REACHED, resumed.stderr
    trials = store.trials(run_id)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    for number, before in finished.items():
        assert trials[number] == before  # finished trials are never run again
    assert trials[3].params == study.trials[2].params  # the cut-off trial kept its params
    study = load_study(url, "resumed")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert "max_trials (5) spent" in (store.get_run(run_id).verdict or "")


def test_an_unreachable_server_is_one_clear_error(
    postgres: PostgresServer, make_repo, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there (the fixture's server is elsewhere)
    url = f"postgresql://{PASSWORD_ROLE}@127.0.0.1:{port}/studies"
    repo = make_repo(files={"train.py": SCRIPT, "tweakops.yaml": tuning_yaml(url, 3)})
    home = tmp_path / "machine"
    run_id = trained_run(home, repo)
    started = time.monotonic()
    failed = tweakops(home, "tune", "--run", run_id)
    assert time.monotonic() - started < 30  # a refused connection is not waited out
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr, failed.stderr
    (line,) = error_lines(failed.stderr)
    assert f"127.0.0.1:{port}" in line and "tuning.storage" in line, line
    assert PASSWORD_ROLE not in line  # where, not who
    stage = RunStore(home).get_stage(run_id, "tune")
    assert stage.status == "failed" and f"127.0.0.1:{port}" in (stage.error or "")


def test_the_stop_rules_count_trials_that_other_machines_finish(
    postgres: PostgresServer, database: str
) -> None:
    """Two tuners on one study, each with its own connection as on two machines.

    Each waits (in its clock, the loop's first decision) until both have read the study,
    so neither sees the other's trial running: only the shared history is under test.
    """
    from tuning import Observation, ParamSpec, StopRules, open_study, run_study

    url, max_trials = postgres.url(database), 7
    open_study(url, "budget", seed=0, startup_trials=2)  # the schema and the study exist
    space = [ParamSpec("x", "float", low=0.0, high=0.9)]
    rules = StopRules(threshold=2.0, max_trials=max_trials, time_budget=60)  # never reached
    both_read = threading.Barrier(2, timeout=30)
    outcomes: dict[str, Any] = {}
    asked: dict[str, list[int]] = {"a": [], "b": []}

    def machine(name: str, seed: int) -> None:
        calls = iter(range(1_000_000))

        def clock() -> float:
            if next(calls) == 1:  # 0: run_study's start; 1: the loop's first judge
                both_read.wait()
            return time.monotonic()

        def evaluate(number: int, params: dict[str, Any], control: object) -> float:
            asked[name].append(number)
            time.sleep(0.2)
            return float(params["x"])

        study = open_study(url, "budget", seed=seed, startup_trials=2)
        baseline = Observation(0, {}, 0.05)
        outcomes[name] = run_study(space, evaluate, rules, study, baseline, clock=clock)

    threads = [threading.Thread(target=machine, args=(n, s)) for n, s in (("a", 1), ("b", 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(outcomes) == {"a", "b"}
    assert not set(asked["a"]) & set(asked["b"]), asked
    trials = load_study(url, "budget").trials
    assert len(trials) <= max_trials, f"{len(trials)} trials for max_trials {max_trials}: {asked}"
    for name, outcome in outcomes.items():
        assert len(outcome.history) > 1 + len(asked[name]), (name, outcome.verdict, asked)


def open_at_once(url: str, machines: int) -> tuple[list[str], list[str]]:
    """open_study by `machines` threads released together; (study names, errors)."""
    from tuning import open_study

    at_once = threading.Barrier(machines, timeout=30)
    opened: list[str] = []
    errors: list[str] = []

    def open_it() -> None:
        at_once.wait()
        try:
            opened.append(open_study(url, "first-use", seed=0, startup_trials=2).study_name)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_it) for _ in range(machines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return opened, errors


def test_machines_that_open_a_new_study_at_once_all_get_it(postgres: PostgresServer) -> None:
    """The first use of a fresh database by three machines at once (threads, each with its
    own connection); three rounds, each on a new database."""
    for _ in range(3):
        url = postgres.url(postgres.new_database())
        opened, errors = open_at_once(url, 3)
        assert not errors, errors
        assert opened == ["first-use"] * 3
        assert load_study(url, "first-use").trials == []
