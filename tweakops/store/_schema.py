"""The run store's tables: the schema, the migrations of older stores, and rows as records."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tweakops.records import LeaseRecord, RunRecord, StageRecord, TrialRecord
from tweakops.redact import redact_deep

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tw_runs (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL,
    overrides TEXT NOT NULL DEFAULT '{}', sha TEXT, verdict TEXT, build_url TEXT, runtime TEXT);
CREATE TABLE IF NOT EXISTS tw_stages (
    run_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, started REAL, ended REAL,
    error TEXT, result TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS tw_trials (
    run_id TEXT NOT NULL, number INTEGER NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL,
    accuracy REAL, started REAL, ended REAL, verdict TEXT, error TEXT,
    restarts INTEGER NOT NULL DEFAULT 0, folder TEXT, handle TEXT, PRIMARY KEY (run_id, number));
CREATE TABLE IF NOT EXISTS tw_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time REAL NOT NULL,
    kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS tw_leases (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    expires REAL NOT NULL);
"""
# A run's configuration as resolved once after pull (tweakops.resolved); no secret in it.
_CONFIGS = """
CREATE TABLE IF NOT EXISTS tw_configs (
    run_id TEXT PRIMARY KEY, resolved TEXT NOT NULL, stored REAL NOT NULL);
"""


def _lease(row: sqlite3.Row) -> LeaseRecord:
    return LeaseRecord(
        run_id=row["run_id"],
        owner=row["owner"],
        host=row["host"],
        pid=row["pid"],
        expires=row["expires"],
    )


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        source=row["source"],
        created=row["created"],
        status=row["status"],
        overrides=json.loads(row["overrides"]),
        sha=row["sha"],
        verdict=row["verdict"],
        build_url=row["build_url"],
        runtime=row["runtime"],
    )


def _stage(row: sqlite3.Row) -> StageRecord:
    return StageRecord(
        run_id=row["run_id"],
        name=row["name"],
        status=row["status"],
        started=row["started"],
        ended=row["ended"],
        error=row["error"],
        result=json.loads(row["result"]),
    )


def _trial(row: sqlite3.Row) -> TrialRecord:
    return TrialRecord(
        run_id=row["run_id"],
        number=row["number"],
        params=json.loads(row["params"]),
        status=row["status"],
        accuracy=row["accuracy"],
        started=row["started"],
        ended=row["ended"],
        verdict=row["verdict"],
        error=row["error"],
        restarts=row["restarts"],
        folder=row["folder"],
        handle=row["handle"],
    )


def _column(name: str, value: Any) -> Any:
    """A value as stored: JSON for the structured columns, every string redacted."""
    if name == "overrides":
        return json.dumps(value)
    return json.dumps(redact_deep(value)) if name == "result" else redact_deep(value)


def _has_schema(db: sqlite3.Connection) -> bool:
    """All tables exist: nothing to create (so a read-only use needs no write)."""
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {"tw_runs", "tw_stages", "tw_trials", "tw_events", "tw_leases"} <= names


def _migrate(db: sqlite3.Connection) -> None:
    """Columns and tables added since a store was made."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(tw_runs)")}
    if "runtime" not in columns:
        db.execute("ALTER TABLE tw_runs ADD COLUMN runtime TEXT")
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "tw_configs" not in tables:  # runs of an older store resolve theirs when next needed
        db.executescript(_CONFIGS)
