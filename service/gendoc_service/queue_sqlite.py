"""The embedded job queue: SQLite in WAL mode on this machine's disk (`gendoc up`).

No server to run, and it survives a restart of the service: every change is
one transaction, committed before the call returns (WAL, synchronous=FULL). A
task claimed by a process that died is taken back once its visibility timeout
passes, as in the Redis backend; a graceful shutdown gives its tasks back at
once (`release`). Several service processes on one machine may share the file
(SQLite's own locking, `BEGIN IMMEDIATE`); a fleet of pods needs Redis.

Tables: `jobs` (one row per job), `tasks` (one row per item still to do, and
the finalize task; `owner` is NULL while it waits, else the consumer holding it
`until` an epoch time), `outcomes` (one row per item done or failed, primary key
job + index: the idempotent write), `dead` (the dead-letter list).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from anyio import to_thread

from .errors import Problem, QueueUnavailable, retry_after
from .queue import (
    FINAL,
    FINALIZE,
    Backlog,
    JobRecord,
    Outcome,
    Task,
    dead_letter,
    dead_letter_problem,
    final_status,
    retry_delay,
)
from .sharedstate import SqliteFile

T = TypeVar("T")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, total INTEGER NOT NULL, status TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, finished REAL, result TEXT, deliveries TEXT NOT NULL DEFAULT '[]')""",
    """CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1, data TEXT, owner TEXT, until REAL, problem TEXT)""",
    "CREATE INDEX IF NOT EXISTS tasks_waiting ON tasks (owner, id)",
    "CREATE INDEX IF NOT EXISTS tasks_job ON tasks (job)",
    """CREATE TABLE IF NOT EXISTS outcomes (
    job TEXT NOT NULL, idx INTEGER NOT NULL, outcome TEXT NOT NULL, failed INTEGER NOT NULL,
    PRIMARY KEY (job, idx))""",
    """CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT, idx INTEGER, attempt INTEGER,
    problem TEXT, at REAL)""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created)",
]


class SqliteQueue:
    def __init__(self, path: Path, *, visibility: float = 60.0, max_attempts: int = 8) -> None:
        self.path = Path(path)
        self.visibility = visibility
        self.max_attempts = max_attempts
        self._file: SqliteFile | None = None

    # -- plumbing ------------------------------------------------------------
    async def open(self) -> None:
        self._file = await to_thread.run_sync(SqliteFile, self.path, _SCHEMA)

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await to_thread.run_sync(file.close)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one IMMEDIATE transaction, off the event loop."""
        def run() -> T:
            if self._file is None:
                raise QueueUnavailable("The job queue is closed.", headers=retry_after(5))
            try:
                with self._file.transaction() as db:
                    return work(db)
            except sqlite3.Error as exc:
                raise QueueUnavailable(f"The job queue cannot be used: {exc}.",
                                       headers=retry_after(5)) from None
        return await to_thread.run_sync(run)

    # -- jobs ----------------------------------------------------------------
    async def create(self, record: JobRecord, items: list[dict[str, Any]]) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO jobs (id, spec, total, status, created) VALUES (?,?,?,?,?)",
                       (record.id, json.dumps(record.spec), record.total, record.status,
                        record.created))
            db.executemany("INSERT INTO tasks (job, idx, data) VALUES (?,?,?)",
                           ((record.id, i, json.dumps(d)) for i, d in enumerate(items)))
        await self._run(work)

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._run(lambda db: self._record(db, job_id))

    @staticmethod
    def _record(db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute("SELECT spec, total, status, done, failed, created, finished, result, "
                         "deliveries FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        errors = [json.loads(o)["problem"] for (o,) in db.execute(
            "SELECT outcome FROM outcomes WHERE job = ? AND failed = 1 ORDER BY idx LIMIT 100",
            (job_id,))]
        return JobRecord(id=job_id, spec=json.loads(row[0]), total=row[1], status=row[2],
                         done=row[3], failed=row[4], created=row[5], finished=row[6],
                         result=json.loads(row[7]) if row[7] else None, errors=errors,
                         deliveries=json.loads(row[8]))

    async def cancel(self, job_id: str) -> JobRecord | None:
        def work(db: sqlite3.Connection) -> JobRecord | None:
            found = db.execute("UPDATE jobs SET status = 'cancelled', finished = ? "
                               "WHERE id = ? AND status IN ('queued', 'running')",
                               (time.time(), job_id)).rowcount
            if not found:
                return None
            # Items not started are never rendered; those in a worker finish.
            db.execute("DELETE FROM tasks WHERE job = ? AND owner IS NULL", (job_id,))
            return self._record(db, job_id)
        return await self._run(work)

    async def add_delivery(self, job_id: str, delivery: dict[str, Any]) -> None:
        await self._run(lambda db: db.execute(
            "UPDATE jobs SET deliveries = json_insert(deliveries, '$[#]', json(?)) WHERE id = ?",
            (json.dumps(delivery), job_id)))

    # -- tasks ---------------------------------------------------------------
    async def claim(self, consumer: str, count: int) -> list[Task]:
        def work(db: sqlite3.Connection) -> list[Task]:
            now = time.time()
            self._take_back(db, now)
            # Tasks of a job cancelled while they were held come back here: never rendered.
            db.execute("DELETE FROM tasks WHERE owner IS NULL AND job IN "
                       "(SELECT id FROM jobs WHERE status = 'cancelled')")
            rows = db.execute("SELECT id, job, idx, attempt, data FROM tasks "
                              "WHERE owner IS NULL ORDER BY id LIMIT ?", (count,)).fetchall()
            db.executemany("UPDATE tasks SET owner = ?, until = ? WHERE id = ?",
                           ((consumer, now + self.visibility, r[0]) for r in rows))
            for job in {r[1] for r in rows}:
                db.execute("UPDATE jobs SET status = 'running' WHERE id = ? AND status = 'queued'",
                           (job,))
            return [Task(job=r[1], index=r[2], attempt=r[3],
                         data=json.loads(r[4]) if r[4] is not None else None,
                         token=f"{r[0]}:{r[3]}") for r in rows]
        return await self._run(work)

    def _take_back(self, db: sqlite3.Connection, now: float) -> None:
        """Tasks whose holder's time ran out: deliver again, or dead-letter."""
        expired = db.execute("SELECT id, job, idx, attempt, problem FROM tasks "
                             "WHERE owner IS NOT NULL AND until < ?", (now,)).fetchall()
        for rowid, job, index, attempt, problem in expired:
            if not dead_letter(attempt, self.max_attempts):
                db.execute("UPDATE tasks SET owner = NULL, until = NULL, attempt = attempt + 1 "
                           "WHERE id = ?", (rowid,))
                continue
            body = dead_letter_problem(problem, attempt)
            db.execute("INSERT INTO dead (job, idx, attempt, problem, at) VALUES (?,?,?,?,?)",
                       (job, index, attempt, json.dumps(body), now))
            task = Task(job, index, attempt, None, f"{rowid}:{attempt}")
            if index == FINALIZE:  # a finalize that keeps failing: the job fails as it stands
                self._finish(db, task, None, give_up=True)
            else:
                self._write(db, task, Outcome(problem=body | {"item": index}))

    @staticmethod
    def _row(task: Task) -> tuple[int, int]:
        rowid, attempt = task.token.split(":")
        return int(rowid), int(attempt)

    async def record(self, outcomes: list[tuple[Task, Outcome]]) -> int:
        return await self._run(lambda db: sum(self._write(db, t, o) for t, o in outcomes))

    async def drop(self, tasks: list[Task]) -> None:
        rows = [(self._row(t)[0],) for t in tasks]
        await self._run(lambda db: db.executemany("DELETE FROM tasks WHERE id = ?", rows))

    def _write(self, db: sqlite3.Connection, task: Task, outcome: Outcome) -> bool:
        rowid, _ = self._row(task)
        db.execute("DELETE FROM tasks WHERE id = ?", (rowid,))
        status = db.execute("SELECT status FROM jobs WHERE id = ?", (task.job,)).fetchone()
        if status is None:  # the job was forgotten (retention) while the item ran
            return False
        new = db.execute("INSERT OR IGNORE INTO outcomes VALUES (?,?,?,?)",
                         (task.job, task.index, outcome.dump(), int(not outcome.ok))).rowcount == 1
        if not new:
            return False
        column = "done" if outcome.ok else "failed"
        done, failed, total = db.execute(
            f"UPDATE jobs SET {column} = {column} + 1 WHERE id = ? "
            "RETURNING done, failed, total", (task.job,)).fetchone()
        if done + failed == total and status[0] not in FINAL:
            db.execute("INSERT INTO tasks (job, idx) VALUES (?, ?)", (task.job, FINALIZE))
        return True

    async def retry(self, task: Task, problem: Problem) -> None:
        rowid, attempt = self._row(task)
        # Kept by its holder until the delay passes; then taken back like a lost task.
        until = time.time() + retry_delay(attempt, self.visibility)
        await self._run(lambda db: db.execute(
            "UPDATE tasks SET until = ?, problem = ? WHERE id = ? AND attempt = ?",
            (until, json.dumps(problem.body() | {"item": task.index}), rowid, attempt)))

    async def release(self, tasks: list[Task]) -> None:
        rows = [self._row(t) for t in tasks]
        await self._run(lambda db: db.executemany(
            "UPDATE tasks SET owner = NULL, until = NULL WHERE id = ? AND attempt = ?", rows))

    async def outcomes(self, job_id: str) -> dict[int, Outcome]:
        rows = await self._run(lambda db: db.execute(
            "SELECT idx, outcome FROM outcomes WHERE job = ?", (job_id,)).fetchall())
        return {i: Outcome.load(o) for i, o in rows}

    async def outcome(self, job_id: str, index: int) -> Outcome | None:
        row = await self._run(lambda db: db.execute(
            "SELECT outcome FROM outcomes WHERE job = ? AND idx = ?", (job_id, index)).fetchone())
        return Outcome.load(row[0]) if row else None

    async def finish(self, task: Task, result: dict[str, Any] | None) -> JobRecord | None:
        return await self._run(lambda db: self._finish(db, task, result))

    def _finish(self, db: sqlite3.Connection, task: Task, result: dict[str, Any] | None,
                give_up: bool = False) -> JobRecord | None:
        db.execute("DELETE FROM tasks WHERE id = ?", (self._row(task)[0],))
        row = db.execute("SELECT status, done, failed FROM jobs WHERE id = ?",
                         (task.job,)).fetchone()
        if row is None or row[0] in FINAL:
            return None
        status = "failed" if give_up else final_status(row[1], row[2], cancelled=False)
        db.execute("UPDATE jobs SET status = ?, finished = ?, result = ? WHERE id = ?",
                   (status, time.time(), json.dumps(result) if result else None, task.job))
        return self._record(db, task.job)

    # -- the fleet's view ----------------------------------------------------
    async def backlog(self) -> Backlog:
        def work(db: sqlite3.Connection) -> Backlog:
            (items,) = db.execute("SELECT count(*) FROM tasks WHERE idx >= 0").fetchone()
            (oldest,) = db.execute("SELECT min(created) FROM jobs "
                                   "WHERE status IN ('queued', 'running')").fetchone()
            return Backlog(items, 0.0 if oldest is None else max(time.time() - oldest, 0.0))
        return await self._run(work)

    async def expired(self, finished_before: float) -> list[str]:
        rows = await self._run(lambda db: db.execute(
            "SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?",
            (finished_before,)).fetchall())
        return [r[0] for r in rows]

    async def forget(self, job_id: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            for table, column in (("tasks", "job"), ("outcomes", "job"), ("jobs", "id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (job_id,))
        await self._run(work)

    async def dead_letters(self) -> list[dict[str, Any]]:
        rows = await self._run(lambda db: db.execute(
            "SELECT job, idx, attempt, problem FROM dead ORDER BY id").fetchall())
        return [{"job": j, "index": i, "attempt": a, "problem": json.loads(p)}
                for j, i, a, p in rows]
