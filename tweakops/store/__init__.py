"""The run store: one SQLite database (WAL) plus a folder per run under TWEAKOPS_HOME."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tweakops.errors import StoreError
from tweakops.records import (
    STAGES,
    EventRecord,
    LeaseRecord,
    RunRecord,
    StageRecord,
    TrialRecord,
)
from tweakops.redact import redact, redact_deep
from tweakops.store._schema import (
    _CONFIGS,
    _SCHEMA,
    _has_schema,
    _lease,
    _migrate,
    _run,
    _stage,
    _trial,
)
from tweakops.vocabulary import RunStatus, StageStatus

DB_FILE = "tweakops.db"


def default_home() -> Path:
    return Path(os.environ.get("TWEAKOPS_HOME", ".tweakops")).resolve()


class RunStore:
    """Runs, stages, trials and events; the single source of truth every stage reads."""

    def __init__(self, home: Path, read_only: bool = False) -> None:
        """The store at `home`. A `read_only` user (status, runs) can still read a store whose
        disk is full: it then reads the database file as it is, without its journal files."""
        self.home = home.resolve()
        self._snapshot: str | None = None  # the immutable URI of a read-only fallback
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, timeout=30.0)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                if not _has_schema(db):
                    db.executescript(_SCHEMA + _CONFIGS)
                _migrate(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            damaged = self._damaged(exc)
            if not (read_only and isinstance(exc, sqlite3.OperationalError)):
                raise damaged from exc
            self._snapshot = f"file:{quote(str(self.db_path))}?immutable=1"
        except OSError as exc:
            raise StoreError(
                f"cannot use the run store at {self.home}: {exc}; "
                "set TWEAKOPS_HOME to a writable folder"
            ) from exc

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILE

    @property
    def storage_url(self) -> str:
        """SQLAlchemy URL of the same database, for the Optuna study."""
        return f"sqlite:///{self.db_path}"

    def _damaged(self, exc: sqlite3.Error) -> StoreError:
        """A store error that says what to do: the database is damaged, or the disk is full."""
        text = str(exc)
        if "full" in text:
            return StoreError(
                f"the disk holding the run store {self.db_path} is full ({text}): free some "
                "space, then run the command again; nothing already stored is lost"
            )
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return StoreError(
                f"the run store {self.db_path} is damaged ({text}): move it aside "
                f"(`mv {self.db_path} {self.db_path}.broken`) and run again; the run folders in "
                f"{self.home / 'runs'} are kept, and `sqlite3 {self.db_path}.broken .recover` "
                "may save its records"
            )
        return StoreError(f"cannot use the run store {self.db_path}: {text}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._transaction() as db:
                yield db
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._snapshot is not None:  # read only: no journal, nothing written
            db = sqlite3.connect(self._snapshot, uri=True, isolation_level=None)
            db.row_factory = sqlite3.Row
            try:
                yield db
            finally:
                db.close()
            return
        db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.row_factory = sqlite3.Row
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # Ctrl-C/SIGTERM can land inside COMMIT: a failed ROLLBACK must not hide it.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    # --- runs -------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.home / "runs" / run_id

    def create_run(self, source: str, overrides: dict[str, Any] | None = None) -> RunRecord:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        run = RunRecord(
            id=run_id,
            source=redact(source),  # a URL's password is used for the pull, never stored
            created=time.time(),
            status=RunStatus.RUNNING,
            overrides=dict(overrides or {}),
        )
        self.run_dir(run_id).mkdir(parents=True)
        with self._connect() as db:
            db.execute(
                "INSERT INTO tw_runs (id, source, created, status, overrides) VALUES (?,?,?,?,?)",
                (run.id, run.source, run.created, run.status, json.dumps(run.overrides)),
            )
            db.executemany(
                "INSERT INTO tw_stages (run_id, name, status) VALUES (?,?,?)",
                [(run_id, name, StageStatus.PENDING) for name in STAGES],
            )
        return run

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        allowed = {"status", "sha", "verdict", "build_url", "overrides", "runtime"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update run fields {sorted(set(fields) - allowed)}")
        values = {
            k: json.dumps(v) if k == "overrides" else redact_deep(v) for k, v in fields.items()
        }
        with self._connect() as db:
            sets = ", ".join(f"{key} = ?" for key in values)
            db.execute(f"UPDATE tw_runs SET {sets} WHERE id = ?", (*values.values(), run_id))
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM tw_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(
                f"no run {run_id!r} in {self.home}: `tweakops runs` lists the runs there"
            )
        return _run(row)

    def list_runs(self, source: str | None = None, limit: int = 50) -> list[RunRecord]:
        query, args = "SELECT * FROM tw_runs", ()  # type: tuple[str, tuple[Any, ...]]
        if source is not None:
            query, args = query + " WHERE source = ?", (redact(source),)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [_run(row) for row in rows]

    def latest_run(self, source: str | None = None) -> RunRecord:
        runs = self.list_runs(source, limit=1)
        if not runs:
            which = f" of {source}" if source else ""
            raise StoreError(
                f"no run{which} in {self.home}: start one with `tweakops pull SOURCE` "
                "or `tweakops run SOURCE`"
            )
        return runs[0]

    # --- stages -----------------------------------------------------------
    def set_stage(self, run_id: str, name: str, **fields: Any) -> StageRecord:
        values = {
            k: json.dumps(redact_deep(v)) if k == "result" else redact_deep(v)
            for k, v in fields.items()
        }
        with self._connect() as db:
            sets = ", ".join(f"{key} = ?" for key in values)
            db.execute(
                f"UPDATE tw_stages SET {sets} WHERE run_id = ? AND name = ?",
                (*values.values(), run_id, name),
            )
        return self.get_stage(run_id, name)

    def get_stage(self, run_id: str, name: str) -> StageRecord:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM tw_stages WHERE run_id = ? AND name = ?", (run_id, name)
            ).fetchone()
        if row is None:
            raise StoreError(f"run {run_id} has no stage {name!r}")
        return _stage(row)

    def stages(self, run_id: str) -> list[StageRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM tw_stages WHERE run_id = ?", (run_id,)).fetchall()
        order = {name: i for i, name in enumerate(STAGES)}
        return sorted((_stage(r) for r in rows), key=lambda s: order.get(s.name, 99))

    # --- trials -----------------------------------------------------------
    def save_trial(self, trial: TrialRecord) -> TrialRecord:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO tw_trials (run_id, number, params, status, accuracy, "
                "started, ended, verdict, error, restarts, folder, handle) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    trial.run_id,
                    trial.number,
                    json.dumps(trial.params),
                    trial.status,
                    trial.accuracy,
                    trial.started,
                    trial.ended,
                    trial.verdict,
                    redact_deep(trial.error),
                    trial.restarts,
                    trial.folder,
                    trial.handle,
                ),
            )
        return trial

    def update_trial(self, trial: TrialRecord, **fields: Any) -> TrialRecord:
        return self.save_trial(replace(trial, **fields))

    def trials(self, run_id: str) -> list[TrialRecord]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM tw_trials WHERE run_id = ? ORDER BY number", (run_id,)
            ).fetchall()
        return [_trial(row) for row in rows]

    # --- events -----------------------------------------------------------
    def add_event(self, run_id: str, kind: str, message: str, **data: Any) -> EventRecord:
        message, data = redact(message), redact_deep(data)
        event = EventRecord(run_id=run_id, time=time.time(), kind=kind, message=message, data=data)
        with self._connect() as db:
            db.execute(
                "INSERT INTO tw_events (run_id, time, kind, message, data) VALUES (?,?,?,?,?)",
                (run_id, event.time, kind, message, json.dumps(data, default=str)),
            )
        return event

    def runs_waiting(self, stage: str) -> list[RunRecord]:
        """Runs not failed whose stage before `stage` succeeded and `stage` is pending, oldest
        first: what a Jenkins job without a run of its own takes (`--waiting`)."""
        previous = STAGES[STAGES.index(stage) - 1]
        with self._connect() as db:
            rows = db.execute(
                "SELECT r.* FROM tw_runs r "
                "JOIN tw_stages p ON p.run_id = r.id AND p.name = ? AND p.status = ? "
                "JOIN tw_stages s ON s.run_id = r.id AND s.name = ? AND s.status = ? "
                "WHERE r.status != ? ORDER BY r.created",
                (previous, StageStatus.SUCCEEDED, stage, StageStatus.PENDING, RunStatus.FAILED),
            ).fetchall()
        return [_run(row) for row in rows]

    def runs_with_event(
        self, kind: str, key: str, value: Any, since: float | None = None
    ) -> list[str]:
        """Ids of the runs that have an event of `kind` whose data[`key`] is `value` (recorded
        at or after `since`, given), oldest run first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT e.run_id FROM tw_events e JOIN tw_runs r ON r.id = e.run_id "
                "WHERE e.kind = ? AND json_extract(e.data, '$.' || ?) = ? AND e.time >= ? "
                "ORDER BY r.created",
                (kind, key, value, since if since is not None else float("-inf")),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def events(self, run_id: str, kind: str | None = None) -> list[EventRecord]:
        query, args = "SELECT * FROM tw_events WHERE run_id = ?", [run_id]
        if kind is not None:
            query, args = query + " AND kind = ?", [run_id, kind]
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return [
            EventRecord(
                run_id=r["run_id"],
                time=r["time"],
                kind=r["kind"],
                message=r["message"],
                data=json.loads(r["data"]),
            )
            for r in rows
        ]

    # --- the resolved configuration ---------------------------------------
    def save_config(self, run_id: str, resolved: dict[str, Any]) -> None:
        """Keep the run's resolved configuration, replacing an earlier one."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO tw_configs (run_id, resolved, stored) VALUES (?,?,?)",
                (run_id, json.dumps(resolved), time.time()),
            )

    def get_config(self, run_id: str) -> dict[str, Any] | None:
        """The run's resolved configuration as stored, or None when it has none yet."""
        with self._connect() as db:
            query = "SELECT resolved FROM tw_configs WHERE run_id = ?"
            row = db.execute(query, (run_id,)).fetchone()
        return json.loads(row["resolved"]) if row is not None else None

    def drop_config(self, run_id: str) -> None:
        """Forget the run's resolved configuration: it is resolved again when next needed."""
        with self._connect() as db:
            db.execute("DELETE FROM tw_configs WHERE run_id = ?", (run_id,))

    # --- leases -----------------------------------------------------------
    def claim_lease(
        self, wanted: LeaseRecord, may_take: Callable[[LeaseRecord], bool]
    ) -> LeaseRecord:
        """Take or renew the run's lease in one transaction; return whoever holds it after.

        The lease is ours when it is free, already ours, or `may_take(holder)` says the
        holder is gone (expired, or a dead process on this host).
        """
        with self._connect() as db:
            query = "SELECT * FROM tw_leases WHERE run_id = ?"
            row = db.execute(query, (wanted.run_id,)).fetchone()
            holder = _lease(row) if row is not None else None
            if holder is not None and holder.owner != wanted.owner and not may_take(holder):
                return holder
            db.execute(
                "INSERT OR REPLACE INTO tw_leases (run_id, owner, host, pid, expires) "
                "VALUES (?,?,?,?,?)",
                (wanted.run_id, wanted.owner, wanted.host, wanted.pid, wanted.expires),
            )
        return wanted

    def release_lease(self, run_id: str, owner: str) -> None:
        """Drop the run's lease if `owner` still holds it."""
        with self._connect() as db:
            db.execute("DELETE FROM tw_leases WHERE run_id = ? AND owner = ?", (run_id, owner))

    def lease(self, run_id: str) -> LeaseRecord | None:
        """The run's lease as stored (it may have expired)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM tw_leases WHERE run_id = ?", (run_id,)).fetchone()
        return _lease(row) if row is not None else None
