"""bench/bench_tuning.py's pure part: time to threshold, medians, time splits, what each tuner gets.

No timing thresholds here (house rule): only the arithmetic on made-up trials, and the
configuration handed to the tuners (nothing is trained, TensorFlow is not imported).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_tuning import (
    ESCALATION,
    EXAMPLE,
    KERAS_TUNER,
    LADDER,
    PARTS,
    ROOT,
    TUNERS,
    TWEAKOPS,
    BenchError,
    Run,
    Setup,
    Trial,
    example_config,
    example_space,
    first_reaching,
    goal_line,
    hp_declaration,
    median_or_none,
    report,
    search_space,
    seeded_source,
    split_trial,
    time_split,
    tweakops_config,
)
from training import CNN_DEFAULTS
from tuning.settings import parse_tuning


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


# ---- what the tuners are given -------------------------------------------------------------


def test_seeded_source_sets_the_default_seed_of_the_examples_train_py() -> None:
    text = (EXAMPLE / "train.py").read_text()
    seeded = seeded_source(text, 2)
    assert 'SEED = training.param("seed", 2)' in seeded
    assert seeded.replace('"seed", 2)', '"seed", 0)') == text
    with pytest.raises(BenchError, match="SEED_LINE"):
        seeded_source("SEED = 0\n", 1)


def test_tweakops_keeps_the_examples_tuning_and_only_adds_the_seed() -> None:
    base = example_config()
    config = tweakops_config(base, TWEAKOPS, 7, 0.98, 12, 900)
    assert (config["threshold"], config["max_trials"], config["time_budget"]) == (0.98, 12, 900)
    assert config["search_space"] == base["search_space"]
    assert config["tuning"] == {**base["tuning"], "seed": 7}
    settings = parse_tuning(config["tuning"], "test")
    assert (settings.strategy, settings.seed) == ("optuna", 7)


def test_the_escalation_is_tweakops_escalate_strategy_on_the_fixed_ladder() -> None:
    config = tweakops_config(example_config(), ESCALATION, 1, 0.98, 12, 900)
    settings = parse_tuning(config["tuning"], "test")
    assert settings.strategy == "escalate"
    assert settings.ladder == LADDER
    with pytest.raises(ValueError, match="not"):
        tweakops_config(example_config(), KERAS_TUNER, 1, 0.98, 12, 900)


def test_the_ladder_climbs_and_stays_inside_the_examples_search_space() -> None:
    space = {spec.name: spec for spec in example_space()}
    for rung in LADDER:
        for name, value in rung.items():
            spec = space[name]
            assert spec.low is not None and spec.high is not None
            assert spec.low <= value <= spec.high, (name, value)
            if spec.step:
                assert (value - spec.low) % spec.step == 0, (name, value)
    sizes = [(r["conv_blocks"], r["filters"], r["dense_units"], r["epochs"]) for r in LADDER]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_keras_tuner_gets_the_same_space_as_the_yaml() -> None:
    space = example_space()
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


def test_space_replaces_the_examples_search_space_for_every_tuner(tmp_path: Path) -> None:
    wide = ROOT / "bench" / "spaces" / "wide.yaml"
    names = {spec.name for spec in example_space(wide)}
    assert names == set(example_config()["search_space"])  # the same knobs, other ranges
    rate = next(spec for spec in example_space(wide) if spec.name == "learning_rate")
    assert (rate.low, rate.high, rate.log) == (0.0001, 0.1, True)
    assert search_space(None) == example_config()["search_space"]
    assert search_space(wide) != search_space(None)


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


# ---- the report ----------------------------------------------------------------------------


def test_goal_line_compares_the_medians_with_the_peer() -> None:
    assert "NOT met (2.00x)" in goal_line(40.0, 20.0, TUNERS)
    assert ": met (0.50x)" in goal_line(10.0, 20.0, TUNERS)
    assert ": met (0.70x)" in goal_line(14.0, 20.0, TUNERS)  # ≤ 0.7x
    assert "NOT met (tweakops" in goal_line(None, 20.0, TUNERS)
    assert ": met (Keras Tuner" in goal_line(10.0, None, TUNERS)
    assert "not measured" in goal_line(10.0, 20.0, (TWEAKOPS, ESCALATION))


def test_report_prints_each_run_the_medians_and_tweakops_ratios() -> None:
    def sequential(tuner: str, seed: int, walls: list[float], scores: list[float]) -> Run:
        trials, start = [], 1.0
        for number, (seconds, score) in enumerate(zip(walls, scores, strict=True)):
            trials.append(trial(number, start, start + seconds, score))
            start += seconds
        return run(tuner, seed, trials)

    runs = [
        sequential(TWEAKOPS, 0, [10, 10], [0.89, 0.99]),  # wall 21
        sequential(KERAS_TUNER, 0, [10], [0.99]),  # wall 11
        sequential(ESCALATION, 0, [10, 10, 10], [0.89, 0.95, 0.97]),  # never
    ]
    setup = Setup((0,), 0.98, 12, 900.0, "local", 1)
    text = report(setup, runs, ["heading line"])
    assert "heading line" in text
    assert "not reached in 3" in text
    assert "1.91x" in text  # 21 / 11
    assert "NOT met (1.91x)" in text
    assert "fewer than 3 seeds" in text
    lines = text.splitlines()
    escalation = [line for line in lines if line.startswith(ESCALATION)]
    assert any("0/1" in line and "—" in line and "n/a" in line for line in escalation)
