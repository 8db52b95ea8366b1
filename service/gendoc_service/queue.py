"""The job queue: what every backend does (`JobQueue`), and the decisions they share.

Two backends, chosen by `GENDOC_QUEUE_URL` (`open_queue`): an embedded one,
durable on this machine's disk (SQLite in WAL mode, `queue_sqlite.py`: what
`gendoc up` uses, no server to run), and Redis Streams shared by a fleet
(`redis://…` or `unix://…`, `queue_redis.py`).

A job is its record (what was asked, its counts and status) plus one task per
item. A task is delivered at least once: a worker that dies holding it loses
it only for the visibility timeout, after which another worker takes it back
(attempt + 1), and after `max_attempts` it goes to the dead-letter list and
its item counts as failed. Delivery twice is made harmless by the item's
outcome being written once, keyed by job and index (`record` is idempotent:
only the first outcome counts), and by the item's document being stored under
the same key, whoever rendered it. When the last item's outcome is written, the
same atomic step queues the job's finalize task (index `FINALIZE`), which is
delivered at least once too: it writes the result and the final status.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import Problem, QueueUnavailable
from .sharedstate import uses_redis

if TYPE_CHECKING:
    from .settings import ServiceSettings

FINALIZE = -1  # the index of a job's finalize task
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
ERRORS_SHOWN = 100  # per-item problems a job's status lists (the rest are in /items/{i})
REASONS_SHOWN = 20  # distinct reasons for items converted alone that a job's status lists


@dataclass(frozen=True)
class Task:
    """One delivery of an item (or of a job's finalize step) to a worker."""

    job: str
    index: int  # FINALIZE for the finalize step
    attempt: int  # 1 for the first delivery
    data: dict[str, Any] | None  # the item's data; None for FINALIZE
    token: str  # the backend's handle (stream entry id, row id)


@dataclass(frozen=True)
class Outcome:
    """What became of one item: a document of `size` bytes, or a problem."""

    size: int = 0
    extension: str = ""  # "pdf" or "docx" when a document was stored
    problem: dict[str, Any] | None = None  # RFC 9457 body when the item failed
    # A PDF's conversion: "merged" (split from a merged document) or "single", and why
    # single; empty for DOCX. Left out of the stored JSON when empty.
    mode: str = ""
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def dump(self) -> str:
        found: dict[str, Any] = {"size": self.size, "extension": self.extension,
                                 "problem": self.problem}
        if self.mode:
            found |= {"mode": self.mode} | ({"why": self.why} if self.why else {})
        return json.dumps(found)

    @classmethod
    def load(cls, raw: str | bytes) -> Outcome:
        return cls(**json.loads(raw))

    @classmethod
    def failed(cls, problem: Problem, index: int) -> Outcome:
        return cls(problem=problem.body() | {"item": index})


@dataclass
class JobRecord:
    """A job as stored: what was asked (`spec`), its progress and its outcome."""

    id: str
    spec: dict[str, Any]  # the request's fields (template, version, format, merge, ...)
    total: int
    status: Status = "queued"
    done: int = 0
    failed: int = 0
    created: float = field(default_factory=time.time)  # epoch seconds
    finished: float | None = None
    result: dict[str, Any] | None = None  # {"url", "size"} once written
    errors: list[dict[str, Any]] = field(default_factory=list)  # first ERRORS_SHOWN problems
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # webhook attempts

    def public(self, base_url: str = "") -> dict[str, Any]:
        """The job as GET /v1/jobs/{id} shows it (DESIGN.md's names)."""
        body: dict[str, Any] = {
            "id": self.id, "status": self.status, "template": self.spec["template"],
            "version": self.spec.get("version"), "format": self.spec["format"],
            "merge": self.spec.get("merge", False), "total": self.total, "done": self.done,
            "failed": self.failed, "created": rfc3339(self.created),
            "finished": rfc3339(self.finished) if self.finished is not None else None,
        }
        if self.result is not None:
            # The conversion summary is written with the result, in one step at
            # finalize (both backends store `result` as it is given).
            result = dict(self.result)
            if (conversion := result.pop("conversion", None)) is not None:
                body["conversion"] = conversion
            body["result"] = result
        if self.errors:
            body["errors"] = self.errors
        body["deliveries"] = self.deliveries
        if self.spec.get("webhook"):
            body["webhook"] = self.spec["webhook"]
        return body


def conversion_summary(outcomes: list[Outcome]) -> dict[str, Any] | None:
    """How a PDF job's documents were converted: items split from merged documents,
    items converted alone, and how many of those for each reason (the first
    REASONS_SHOWN reasons); None when no item was converted (DOCX, or none done)."""
    converted = [o for o in outcomes if o.ok and o.mode]
    if not converted:
        return None
    reasons: dict[str, int] = {}
    for outcome in converted:
        if outcome.mode == "single" and (outcome.why in reasons
                                         or len(reasons) < REASONS_SHOWN):
            reasons[outcome.why] = reasons.get(outcome.why, 0) + 1
    merged = sum(1 for o in converted if o.mode == "merged")
    return {"merged": merged, "single": len(converted) - merged, "reasons": reasons}


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def final_status(done: int, failed: int, cancelled: bool) -> Status:
    """A finished job's status: cancelled when asked; failed when no item produced a
    document; else succeeded (items that failed are counted and listed in `errors`)."""
    if cancelled:
        return "cancelled"
    return "failed" if done == 0 and failed > 0 else "succeeded"


def retriable(problem: Problem) -> bool:
    """Whether an item that met `problem` should be delivered again rather than fail.

    The service's or a dependency's fault (5xx: deadline, converter or store
    unavailable) passes; so does a render worker that died under the item (a
    crash or kill, reported as the memory limit): the next attempt, on a fresh
    worker, tells a crash from a template that really needs too much memory,
    which then fails after `max_attempts`. The caller's mistakes (4xx) fail now.
    """
    return problem.status >= 500 or problem.slug == "render-memory-limit"


def dead_letter(attempt: int, max_attempts: int) -> bool:
    """Whether a task that failed its `attempt`th delivery goes to the dead-letter list."""
    return attempt >= max_attempts


def dead_letter_problem(last: str | bytes | None, attempt: int) -> dict[str, Any]:
    """What a dead-lettered task is recorded with: the problem its last delivery reported
    (stored as JSON by `retry`), or, when every delivery ended without an answer, that."""
    if last:
        return dict(json.loads(last))
    return QueueUnavailable(f"The item was delivered {attempt} times and no worker finished "
                            "it (each died or gave up); it went to the dead-letter list.").body()


def retry_delay(attempt: int, visibility: float) -> float:
    """Seconds before a task that failed its `attempt`th delivery is delivered again:
    doubling from 2 s (a converter restarting is back within seconds; one that stays
    down is not hammered), never beyond the visibility timeout."""
    return float(min(2 ** attempt, visibility))


@dataclass(frozen=True)
class Backlog:
    """Items waiting fleet-wide and the age of the oldest unfinished job (its first item)."""

    items: int
    oldest_seconds: float


class JobQueue(Protocol):
    """Jobs and their tasks. Every method may raise `QueueUnavailable` (503)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, record: JobRecord, items: list[dict[str, Any]]) -> None:
        """Store the record and queue one task per item, all or nothing."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def claim(self, consumer: str, count: int) -> list[Task]:
        """Up to `count` tasks of jobs not cancelled for `consumer`, after taking back
        the tasks whose visibility timeout passed (each delivered again with its
        attempt + 1, or dead-lettered and its item failed)."""

    async def record(self, outcomes: list[tuple[Task, Outcome]]) -> int:
        """Write each item's outcome once and ack its task; how many were new (an
        outcome already written, by an earlier delivery, is left as it was)."""

    async def drop(self, tasks: list[Task]) -> None:
        """Ack tasks without an outcome (their job was cancelled or forgotten)."""

    async def retry(self, task: Task, problem: Problem) -> None:
        """Deliver the task again after `retry_delay` (as a lost task is: attempt + 1,
        or the dead-letter list with `problem` after `max_attempts`)."""

    async def release(self, tasks: list[Task]) -> None:
        """Give tasks back unworked (shutdown, a cancelled chunk): same attempt."""

    async def outcomes(self, job_id: str) -> dict[int, Outcome]: ...

    async def outcome(self, job_id: str, index: int) -> Outcome | None: ...

    async def finish(self, task: Task, result: dict[str, Any] | None) -> JobRecord | None:
        """Set the final status (and result) once, ack the finalize task; the record
        when this call finished the job, None when it was already final."""

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job not yet final; its waiting tasks are dropped when claimed.
        The record when this call cancelled it, None otherwise."""

    async def add_delivery(self, job_id: str, delivery: dict[str, Any]) -> None:
        """Append one webhook attempt to the job's `deliveries`."""

    async def backlog(self) -> Backlog: ...

    async def expired(self, finished_before: float) -> list[str]:
        """Jobs that finished before that epoch time (their retention is over)."""

    async def forget(self, job_id: str) -> None:
        """Delete the job's record and outcomes."""

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter list: job, index, attempt, problem of each dropped task."""


def open_queue(settings: ServiceSettings) -> JobQueue:
    """The backend `settings.queue_url` names (empty: SQLite under the store directory)."""
    url = settings.queue_url.strip()
    if uses_redis(url):
        from .queue_redis import RedisQueue

        return RedisQueue(url, visibility=settings.job_visibility_timeout,
                          max_attempts=settings.job_max_attempts)
    if not url:
        from .queue_sqlite import SqliteQueue

        return SqliteQueue(settings.jobs_path() / "queue.sqlite3",
                           visibility=settings.job_visibility_timeout,
                           max_attempts=settings.job_max_attempts)
    raise ValueError(f"GENDOC_QUEUE_URL must be empty, redis://… or unix://…, not {url!r}")
