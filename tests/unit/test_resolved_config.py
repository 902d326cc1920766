"""A run's configuration is resolved once after pull, stored with the run, and read back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tweakops.config import load_config
from tweakops.context import RunContext
from tweakops.report.outcome import run_config, settings_from
from tweakops.resolved import ResolvedConfig, resolve_config
from tweakops.store import RunStore

RICH = """\
entrypoint: train.py
metric: val_score
threshold: 85
max_trials: 7
time_budget: 15m
search_space:
  lr: {type: float, low: 0.0001, high: 0.1, log: true}
  units: {type: int, low: 8, high: 64, step: 8}
  act: [relu, tanh]
notify:
  to: [a@example.org]
  on: [success, failure]
  smtp: {host: mail.example.org, port: 2525, user: bot, security: starttls}
resources: {memory: 2g, cpus: 1.5}
watchdog: {max_restarts: 2, backoff: 0.25}
tuning:
  strategy: escalate
  patience: 3
  pruning: {metric: val_loss, warmup_epochs: 1}
  ladder:
    - {units: 8, lr: 0.01}
    - {units: 32, act: tanh}
dependencies: host
autotune: false
env: [DATA_DIR]
"""


def pulled_run(tmp_path: Path, text: str, overrides: dict[str, str] | None = None) -> RunContext:
    """A run whose pull succeeded and whose copy of the project holds `text` as tweakops.yaml."""
    store = RunStore(tmp_path / "home")
    run = store.create_run("/srv/git/x", overrides or {})
    ctx = RunContext(store, run)
    ctx.source_dir.mkdir(parents=True)
    (ctx.source_dir / "tweakops.yaml").write_text(text)
    store.set_stage(run.id, "pull", status="succeeded", result={"summary": "pulled"})
    return ctx


def test_a_resolved_config_survives_the_store(tmp_path: Path) -> None:
    (tmp_path / "tweakops.yaml").write_text(RICH)
    resolved = resolve_config(tmp_path, {"max_trials": "4", "parallel": "2"})
    again = ResolvedConfig.from_dict(json.loads(json.dumps(resolved.to_dict())))
    assert again == resolved
    assert resolved.config.max_trials == 4 and resolved.config.tuning.parallel == 2
    assert resolved.origins == {
        "threshold": "tweakops.yaml",
        "max_trials": "--max-trials (Jenkins: MAX_TRIALS)",
        "time_budget": "tweakops.yaml",
    }


def test_the_config_is_resolved_once_and_read_back_after(tmp_path: Path) -> None:
    ctx = pulled_run(tmp_path, "threshold: 0.5\n", {"max_trials": "3", "ref": "main"})
    assert ctx.store.get_config(ctx.run.id) is None
    first = ctx.config()
    assert (first.threshold, first.max_trials) == (0.5, 3)
    (ctx.source_dir / "tweakops.yaml").write_text("threshold: 0.7\n")  # nobody re-reads it
    assert ctx.config() == first
    assert "threshold 0.5 from tweakops.yaml" in settings_from(ctx, ctx.config())
    ctx.store.drop_config(ctx.run.id)  # what a new pull does: the next stage resolves again
    assert ctx.config().threshold == 0.7


def test_no_secret_is_stored_and_notify_gets_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEAKOPS_SMTP_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("TWEAKOPS_SMTP_HOST", "relay.example.org")
    ctx = pulled_run(tmp_path, RICH)
    assert ctx.config().notify.smtp_password is None
    assert "s3cret-pw" not in json.dumps(ctx.store.get_config(ctx.run.id))
    mailed = run_config(ctx)
    assert mailed == load_config(ctx.source_dir)  # what notify used before it was stored
    assert (mailed.notify.smtp_password, mailed.notify.smtp_host) == (
        "s3cret-pw",
        "relay.example.org",
    )


def test_a_stored_config_of_another_shape_is_resolved_again(tmp_path: Path) -> None:
    ctx = pulled_run(tmp_path, "threshold: 0.6\n")
    ctx.store.save_config(ctx.run.id, {"config": {"threshold": 0.1}, "origins": {}})
    assert ctx.config().threshold == 0.6


def test_an_old_store_gets_the_config_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    RunStore(home)
    with sqlite3.connect(home / "tweakops.db") as db:
        db.execute("DROP TABLE tw_configs")
    ctx = pulled_run(tmp_path, "threshold: 0.6\n")  # opens the same store: migrated
    assert ctx.config().threshold == 0.6
    assert ctx.store.get_config(ctx.run.id) is not None
