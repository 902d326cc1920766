"""bench/bench_tuning.py's pure part: time to threshold, compute, medians, the best peer, time
splits, and what each tuner is given (bench/_tuning_runs.py, bench/_tuning_setup.py).

No timing thresholds here (house rule): only the arithmetic on made-up trials, and the
configuration handed to the tuners (nothing is trained, TensorFlow is not imported).
The report and the goal lines are in test_bench_tuning_report.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from bench._common import BenchError
from bench._tuning_kt import _Search
from bench._tuning_runs import (
    PARTS,
    Run,
    Summary,
    Trial,
    best_peer,
    compute_seconds,
    first_reaching,
    median_or_none,
    median_startup,
    split_trial,
    summarize,
    time_split,
)
from bench._tuning_setup import (
    ESCALATION,
    EXAMPLE,
    KT_BAYESIAN,
    KT_CLASSES,
    KT_HYPERBAND,
    KT_RANDOM,
    LADDER,
    ROOT,
    TWEAKOPS,
    WIDE,
    Setup,
    example_config,
    hp_declaration,
    hp_declarations,
    most_epochs,
    run_config,
    search_space,
    seeded_source,
    space_specs,
    tuner_kwargs,
    tweakops_args,
    tweakops_config,
)
from training import CNN_DEFAULTS
from tuning.settings import parse_tuning

EXAMPLE_YAML = EXAMPLE / "tweakops.yaml"


def trial(
    number: int,
    began: float,
    ended: float,
    accuracy: float | None,
    status: str = "succeeded",
    epochs: tuple[float, ...] = (),
) -> Trial:
    return Trial(number, began, ended, status, accuracy, epochs)


def run(tuner: str, seed: int, trials: list[Trial], launched: float = 0.0) -> Run:
    return Run(tuner, seed, launched, tuple(trials), "reached", 1.0, 1.5, 12)


def summary(tuner: str, reached: int, wall: float | None, runs: int = 3) -> Summary:
    return Summary(tuner, runs, reached, None, wall, 1.0)


# ---- time to threshold ---------------------------------------------------------------------


def test_first_reaching_counts_the_trials_up_to_the_first_that_scored_the_threshold() -> None:
    trials = [
        trial(0, 1.0, 10.0, 0.89),
        trial(1, 10.5, 20.0, 0.975),
        trial(2, 20.5, 30.0, 0.98),  # exactly the threshold counts
        trial(3, 30.5, 40.0, 0.99),
    ]
    reach = first_reaching(trials, 0.98)
    assert reach is not None and (reach.trials, reach.ended) == (3, 30.0)
    assert run(TWEAKOPS, 0, trials, launched=0.5).wall(0.98) == pytest.approx(29.5)
    assert first_reaching(trials, 0.995) is None
    assert run(TWEAKOPS, 0, trials).wall(0.995) is None


def test_a_pruned_failed_or_timed_out_trial_never_reaches_whatever_its_number() -> None:
    trials = [
        trial(0, 0.0, 5.0, 0.99, status="pruned"),
        trial(1, 5.0, 9.0, 0.99, status="timeout"),
        trial(2, 9.0, 12.0, None, status="failed"),
        trial(3, 12.0, 20.0, 0.985),
    ]
    reach = first_reaching(trials, 0.98)
    assert reach is not None and (reach.trials, reach.ended) == (4, 20.0)


def test_with_trials_at_once_the_first_to_end_wins_and_siblings_started_count() -> None:
    trials = [
        trial(1, 0.0, 30.0, 0.99),  # started first, ends last
        trial(2, 1.0, 12.0, 0.985),  # the first to reach
        trial(3, 12.5, 25.0, 0.99),  # started after the reaching one ended: not counted
        trial(4, 11.0, 14.0, 0.5),  # running when it ended: counted
    ]
    reach = first_reaching(trials, 0.98)
    assert reach is not None and (reach.trials, reach.ended) == (3, 12.0)
    assert [t.number for t in run(TWEAKOPS, 0, trials).until(0.98)] == [1, 2, 4]


def test_median_counts_a_run_that_never_reached_as_infinitely_long() -> None:
    assert median_or_none([30.0, 10.0, 20.0]) == 20.0
    assert median_or_none([30.0, None, 10.0]) == 30.0
    assert median_or_none([None, None, 10.0]) is None
    assert median_or_none([10.0, None]) is None  # the mean of 10 and infinity
    assert median_or_none([]) is None


# ---- compute seconds -------------------------------------------------------------------------


def test_compute_sums_the_trials_up_to_the_end_of_the_first_that_reached() -> None:
    trials = [
        trial(0, 1.0, 10.0, 0.89),  # 9 s
        trial(1, 11.0, 20.0, 0.99),  # 9 s, reaches
        trial(2, 21.0, 40.0, 0.99),  # after: not counted
    ]
    assert compute_seconds(trials, 0.98) == pytest.approx(18.0)
    assert run(TWEAKOPS, 0, trials).compute(0.98) == pytest.approx(18.0)


def test_compute_of_a_run_that_never_reached_is_all_its_trials() -> None:
    trials = [trial(0, 0.0, 10.0, 0.5), trial(1, 10.0, 15.0, None, status="failed")]
    assert compute_seconds(trials, 0.98) == pytest.approx(15.0)
    assert compute_seconds([], 0.98) == 0.0


def test_compute_with_trials_at_once_counts_each_up_to_the_reaching_end() -> None:
    trials = [
        trial(1, 0.0, 30.0, 0.99),  # running at 12: counts 12 s
        trial(2, 1.0, 12.0, 0.985),  # reaches at 12: 11 s
        trial(3, 12.5, 25.0, 0.99),  # began after: not counted
        trial(4, 11.0, 14.0, 0.5),  # running at 12: counts 1 s
    ]
    assert compute_seconds(trials, 0.98) == pytest.approx(24.0)


# ---- the best peer ---------------------------------------------------------------------------


def test_best_peer_reached_on_the_most_seeds_whatever_its_wall() -> None:
    summaries = [
        summary(TWEAKOPS, 3, 10.0),
        summary(KT_RANDOM, 2, 20.0),
        summary(KT_HYPERBAND, 3, 90.0),
        summary(ESCALATION, 1, 5.0),
    ]
    best = best_peer(summaries, TWEAKOPS)
    assert best is not None and best.tuner == KT_HYPERBAND


def test_best_peer_ties_are_broken_by_the_lowest_median_wall_then_the_order() -> None:
    tie = [summary(KT_RANDOM, 2, 50.0), summary(KT_BAYESIAN, 2, 40.0), summary(TWEAKOPS, 3, 1.0)]
    best = best_peer(tie, TWEAKOPS)
    assert best is not None and best.tuner == KT_BAYESIAN
    same = [summary(KT_BAYESIAN, 2, 40.0), summary(KT_RANDOM, 2, 40.0)]
    best = best_peer(same, TWEAKOPS)
    assert best is not None and best.tuner == KT_BAYESIAN
    infinite = [summary(KT_RANDOM, 1, None), summary(KT_HYPERBAND, 1, 80.0)]
    best = best_peer(infinite, TWEAKOPS)  # a median wall of ∞ loses to any number
    assert best is not None and best.tuner == KT_HYPERBAND


def test_best_peer_when_none_reached_is_the_first_and_none_without_peers() -> None:
    none = [summary(TWEAKOPS, 0, None), summary(KT_HYPERBAND, 0, None), summary(KT_RANDOM, 0, None)]
    best = best_peer(none, TWEAKOPS)
    assert best is not None and (best.tuner, best.reached, best.wall) == (KT_HYPERBAND, 0, None)
    assert best_peer([summary(TWEAKOPS, 3, 10.0)], TWEAKOPS) is None
    assert best_peer([summary(KT_RANDOM, 0, None, runs=0)], TWEAKOPS) is None


def test_summarize_counts_reached_seeds_and_takes_the_medians() -> None:
    runs = [
        run(KT_RANDOM, 0, [trial(0, 1.0, 10.0, 0.99)]),  # wall 10, compute 9
        run(KT_RANDOM, 1, [trial(0, 1.0, 30.0, 0.5)]),  # never, compute 29
        run(KT_RANDOM, 2, [trial(0, 1.0, 5.0, 0.5), trial(1, 5.0, 20.0, 0.99)]),  # 20, 19
        run(TWEAKOPS, 0, [trial(0, 1.0, 2.0, 0.99)]),
    ]
    got = summarize(runs, KT_RANDOM, 0.98)
    assert (got.runs, got.reached, got.wall, got.compute, got.trials) == (3, 2, 20.0, 19.0, 2.0)
    assert summarize(runs, KT_BAYESIAN, 0.98) == Summary(KT_BAYESIAN, 0, 0, None, None, None)


# ---- where the time went -------------------------------------------------------------------


def test_split_trial_parts_add_up_to_the_trial() -> None:
    split = split_trial(trial(0, 100.0, 112.0, 0.9, epochs=(108.0, 109.0, 110.0, 111.0)))
    assert split.epoch == 1.0
    assert (split.startup, split.training, split.tail) == (7.0, 4.0, 1.0)
    assert split.startup + split.training + split.tail == pytest.approx(12.0)


def test_split_trial_without_epochs_is_all_start_up_and_one_epoch_has_no_length() -> None:
    assert split_trial(trial(0, 0.0, 6.0, None, status="failed")).startup == 6.0
    one = split_trial(trial(0, 0.0, 6.0, 0.5, epochs=(5.0,)))
    assert (one.startup, one.training, one.tail, one.epoch) == (5.0, 0.0, 1.0, None)


def test_median_startup_takes_only_trials_of_two_epochs_or_more() -> None:
    trials = [
        trial(0, 0.0, 10.0, 0.9, epochs=(5.0, 6.0, 7.0)),  # 5 - 1 = 4
        trial(1, 10.0, 20.0, 0.9, epochs=(13.0, 14.0)),  # 3 - 1 = 2
        trial(2, 20.0, 30.0, 0.9, epochs=(29.0,)),  # one epoch: left out
        trial(3, 30.0, 31.0, None, status="failed"),  # none: left out
    ]
    assert median_startup(trials) == pytest.approx(3.0)
    assert median_startup(trials[2:]) is None


def test_time_split_of_one_trial_at_a_time_adds_up_to_the_wall_time() -> None:
    trials = [
        trial(0, 2.0, 12.0, 0.89, epochs=(9.0, 10.0, 11.0)),
        trial(1, 12.5, 30.0, 0.99, epochs=(20.0, 21.0, 22.0, 23.0, 24.0, 25.0)),
        trial(2, 30.5, 40.0, 0.99, epochs=(35.0, 36.0)),  # after the threshold: left out
    ]
    measured = run(TWEAKOPS, 0, trials, launched=0.5)
    parts = time_split(measured, 0.98)
    assert tuple(parts) == PARTS
    assert parts["before 1st trial"] == 1.5
    assert parts["between"] == 0.5
    assert sum(parts.values()) == pytest.approx(measured.wall(0.98))


# ---- what tweakops and the escalation are given --------------------------------------------


def test_seeded_source_sets_the_default_seed_of_the_examples_train_py() -> None:
    text = (EXAMPLE / "train.py").read_text()
    seeded = seeded_source(text, 2)
    assert 'SEED = training.param("seed", 2)' in seeded
    assert seeded.replace('"seed", 2)', '"seed", 0)') == text
    with pytest.raises(BenchError, match="SEED_LINE"):
        seeded_source("SEED = 0\n", 1)


def test_the_default_workload_is_the_wide_space_on_three_seeds() -> None:
    from bench.bench_tuning import parse

    setup, keep = parse([])
    assert (setup.seeds, setup.threshold, setup.max_trials, setup.time_budget) == (
        (0, 1, 2),
        0.985,
        30,
        600.0,
    )
    assert setup.space == WIDE and keep is None
    assert (setup.runtime, setup.parallel, setup.overheads) == (None, None, True)
    assert setup.tuners == (TWEAKOPS, KT_RANDOM, KT_HYPERBAND, KT_BAYESIAN, ESCALATION)
    assert parse(["--no-overheads", "--runtime", "local"])[0].overheads is False


def test_tweakops_gets_the_examples_yaml_and_only_the_space_flags_and_seed() -> None:
    example = example_config()
    setup = Setup((0,), 0.985, 30, 600.0)
    config = run_config(TWEAKOPS, 7, setup)
    assert list(config) == list(example)  # no key beyond the example's, in its order
    changed = {k for k in example if config[k] != example[k]}
    assert changed <= {"search_space", "threshold", "max_trials", "time_budget", "tuning"}
    assert config["search_space"] == search_space(WIDE)
    assert (config["threshold"], config["max_trials"], config["time_budget"]) == (0.985, 30, 600)
    assert config["tuning"] == {**example["tuning"], "seed": 7}
    settings = parse_tuning(config["tuning"], "test")
    assert (settings.strategy, settings.seed) == ("optuna", 7)


def test_tweakops_runs_with_its_own_defaults_unless_runtime_or_parallel_are_given() -> None:
    repo = Path("/tmp/repo")
    assert tweakops_args(repo, Setup((0,), 0.985, 30, 600.0)) == ["run", "/tmp/repo"]
    given = Setup((0,), 0.985, 30, 600.0, runtime="docker", parallel=2)
    assert tweakops_args(repo, given) == [
        "run",
        "/tmp/repo",
        "--runtime",
        "docker",
        "--parallel",
        "2",
    ]


def test_the_escalation_is_tweakops_escalate_strategy_on_the_fixed_ladder() -> None:
    config = tweakops_config(example_config(), ESCALATION, 1, 0.98, 12, 900)
    settings = parse_tuning(config["tuning"], "test")
    assert settings.strategy == "escalate"
    assert settings.ladder == LADDER
    with pytest.raises(ValueError, match="not"):
        tweakops_config(example_config(), KT_RANDOM, 1, 0.98, 12, 900)


@pytest.mark.parametrize("space", [EXAMPLE_YAML, WIDE])
def test_the_ladder_climbs_and_stays_inside_the_search_space(space: Path) -> None:
    specs = {spec.name: spec for spec in space_specs(space)}
    for rung in LADDER:
        for name, value in rung.items():
            spec = specs[name]
            assert spec.low is not None and spec.high is not None
            assert spec.low <= value <= spec.high, (name, value)
            if spec.step:
                assert (value - spec.low) % spec.step == 0, (name, value)
    sizes = [(r["conv_blocks"], r["filters"], r["dense_units"], r["epochs"]) for r in LADDER]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


# ---- what Keras Tuner is given -------------------------------------------------------------


def test_keras_tuner_gets_the_same_space_as_the_yaml() -> None:
    space = space_specs(EXAMPLE_YAML)
    declared = {spec.name: hp_declaration(spec) for spec in space}
    assert set(declared) == set(example_config()["search_space"])
    assert set(declared) - {"epochs", "batch_size"} <= set(CNN_DEFAULTS)
    assert declared["learning_rate"] == (
        "Float",
        {
            "name": "learning_rate",
            "min_value": 0.002,
            "max_value": 0.01,
            "step": None,
            "sampling": "log",
        },
    )
    assert declared["filters"] == (
        "Int",
        {"name": "filters", "min_value": 16, "max_value": 64, "step": 16, "sampling": "linear"},
    )
    assert declared["epochs"][1]["step"] == 1
    assert declared["optimizer"] == ("Choice", {"name": "optimizer", "values": ["adam", "rmsprop"]})
    assert declared["kernel_size"] == ("Choice", {"name": "kernel_size", "values": [3, 5]})


def test_hyperband_declares_everything_but_epochs_which_it_sets_itself() -> None:
    space = space_specs(WIDE)
    names = [spec.name for spec in space]
    hyperband = [kwargs["name"] for _, kwargs in hp_declarations(space, "hyperband")]
    assert "epochs" in names and "epochs" not in hyperband
    assert hyperband == [n for n in names if n != "epochs"]
    for oracle in ("random", "bayesian"):
        assert [kwargs["name"] for _, kwargs in hp_declarations(space, oracle)] == names


def test_keras_tuners_arguments_per_oracle() -> None:
    space = space_specs(WIDE)
    assert most_epochs(space) == 20  # wide.yaml's epochs high
    assert tuner_kwargs("hyperband", 3, 30, space) == {
        "seed": 4,
        "max_epochs": 20,
        "factor": 3,
        "hyperband_iterations": 1,
    }
    assert tuner_kwargs("random", 3, 30, space) == {"seed": 4, "max_trials": 30}
    assert tuner_kwargs("bayesian", 3, 30, space) == {"seed": 4, "max_trials": 30}
    # Keras Tuner takes a seed of 0 for none (a new random one each run): never hand it 0
    seeds = [tuner_kwargs(o, s, 30, space)["seed"] for o in KT_CLASSES for s in range(5)]
    assert 0 not in seeds and len(set(seeds)) == 5
    with pytest.raises(ValueError, match="oracle"):
        tuner_kwargs("grid", 3, 30, space)
    no_epochs = tuple(s for s in space if s.name != "epochs")
    with pytest.raises(BenchError, match="epochs"):
        tuner_kwargs("hyperband", 3, 30, no_epochs)


def test_the_worker_stops_any_oracle_at_the_trial_budget_or_the_first_reach() -> None:
    emitted: list[dict[str, object]] = []
    state = _Search(threshold=0.98, budget=3, emit=lambda **r: emitted.append(r))
    for accuracy in (0.5, 0.6):
        state.begin()
        state.current["accuracy"] = accuracy
        state.finish(True, {"lr": 0.1}, "")
        assert not state.over()
    state.begin()
    state.current["accuracy"] = 0.7
    state.finish(True, {}, "")
    assert state.over() and state.verdict() == "not_reached (max_trials)"
    assert [r["number"] for r in emitted] == [0, 1, 2]
    reached = _Search(threshold=0.98, budget=30, emit=lambda **r: None)
    reached.begin()
    reached.current["accuracy"] = 0.99
    assert reached.finish(True, {}, "").status == "succeeded"
    assert reached.over() and reached.verdict() == "reached"
    failed = _Search(threshold=0.98, budget=30, emit=lambda **r: None, deadline=-math.inf)
    failed.begin()
    assert failed.finish(False, {}, "boom").status == "failed"
    assert failed.over() and failed.verdict() == "not_reached (time_budget)"


def test_space_replaces_the_examples_search_space_for_every_tuner() -> None:
    names = {spec.name for spec in space_specs(WIDE)}
    assert names == set(example_config()["search_space"])  # the same knobs, other ranges
    rate = next(spec for spec in space_specs(WIDE) if spec.name == "learning_rate")
    assert (rate.low, rate.high, rate.log) == (0.0001, 0.1, True)
    assert search_space(EXAMPLE_YAML) == example_config()["search_space"]
    assert search_space(WIDE) != search_space(EXAMPLE_YAML)
    assert WIDE == ROOT / "bench" / "spaces" / "wide.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threshold: 0.9\n", "has no search_space"),
        ("search_space: {lr: {type: float, low: 1, high: 0}}\n", "lr"),
    ],
)
def test_a_space_file_without_a_valid_search_space_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(Exception, match=message):
        search_space(path)


# ---- the repo tweakops runs, and what the run store says about it ---------------------------


def test_the_bench_repo_holds_the_seeded_example_and_the_runs_yaml(tmp_path: Path) -> None:
    from bench._tuning_tweakops import make_repo

    setup = Setup((0,), 0.985, 30, 600.0)
    repo = make_repo(tmp_path / "repo", TWEAKOPS, 2, setup)
    written = yaml.safe_load((repo / "tweakops.yaml").read_text())
    assert written == run_config(TWEAKOPS, 2, setup)
    assert 'SEED = training.param("seed", 2)' in (repo / "train.py").read_text()
    assert (repo / ".git").is_dir()


def test_the_runtime_a_run_used_comes_from_its_train_stage() -> None:
    from bench._tuning_tweakops import runtime_of

    docker = {"runtime": "docker", "image": "tweakops/keras:1"}
    stages = [{"name": "inspect", "result": {}}, {"name": "train", "result": docker}]
    assert runtime_of({"run": {"runtime": "auto"}, "stages": stages}) == "docker (tweakops/keras:1)"
    local = [{"name": "train", "result": {"runtime": "local", "image": None}}]
    assert runtime_of({"run": {}, "stages": local}) == "local"
    assert runtime_of({"run": {"runtime": "auto"}, "stages": []}) == "auto"
    assert runtime_of({"run": {}, "stages": []}) == "unknown"
