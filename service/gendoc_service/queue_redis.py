"""The job queue of a fleet: Redis Streams (`GENDOC_QUEUE_URL=redis://…` or `unix://…`).

Tasks are entries of one stream (`gendoc:jobs:tasks`: job `j`, index `i`,
attempt `a`, data `d`) read by one consumer group (`workers`); each service
process is a consumer. A task stays in its consumer's pending list until its
outcome is written (`XACK` and `XDEL` in the same script). A consumer that died
leaves its tasks pending: once they have been idle for the visibility timeout,
any consumer takes them (`XAUTOCLAIM`) and queues them again with attempt + 1,
or, after `max_attempts`, moves them to the dead-letter stream
(`gendoc:jobs:dead`) and fails their item. A retry (a 5xx) is the same path
with a shorter wait: the task's idle time is set (`XCLAIM … IDLE`) so that it
is taken back after `retry_delay`.

Everything that must happen together is one Lua script, which Redis runs
atomically: writing an outcome (once per job + index, `HSETNX`), counting it,
acking the task and, for the last item, queueing the finalize task; queueing a
task again only if this caller's `XACK` removed it (two consumers that took the
same task back cannot both requeue it); cancelling.

Per job: `gendoc:jobs:job:<id>` (hash: spec, counts, status, times, result),
`…:outcomes` (hash index -> outcome), `…:errors` (the first 100 problems),
`…:problems` (each retried item's last problem), `…:deliveries` (webhook
attempts). Fleet-wide: `gendoc:jobs:waiting` (items not yet done),
`gendoc:jobs:active` and `gendoc:jobs:finished` (sorted by creation and
finishing time: the oldest job waiting, and retention).
Durability is Redis's: run it with AOF (`appendonly yes`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError, ResponseError

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

P = "gendoc:jobs:"
STREAM, GROUP, DEAD = P + "tasks", "workers", P + "dead"
WAITING, ACTIVE, FINISHED = P + "waiting", P + "active", P + "finished"
_RETRY = 2.0  # Redis restarting or failing over: back within seconds

# KEYS: job, outcomes, stream, waiting, errors. ARGV: group, entry, index, outcome,
# failed (0/1), problem, job id.
_RECORD = """
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return 0 end
local field = 'done'
if ARGV[5] == '1' then
  field = 'failed'
  if redis.call('LLEN', KEYS[5]) < 100 then redis.call('RPUSH', KEYS[5], ARGV[6]) end
end
redis.call('HINCRBY', KEYS[1], field, 1)
if status == 'cancelled' then return 1 end
redis.call('DECR', KEYS[4])
local counts = redis.call('HMGET', KEYS[1], 'done', 'failed', 'total')
if tonumber(counts[1]) + tonumber(counts[2]) == tonumber(counts[3])
   and status ~= 'succeeded' and status ~= 'failed' then
  redis.call('XADD', KEYS[3], '*', 'j', ARGV[7], 'i', '-1', 'a', '1')
end
return 1
"""

# KEYS: stream. ARGV: group, entry, job id, index, attempt, data ('' for none).
_REQUEUE = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[6] == '' then
  redis.call('XADD', KEYS[1], '*', 'j', ARGV[3], 'i', ARGV[4], 'a', ARGV[5])
else
  redis.call('XADD', KEYS[1], '*', 'j', ARGV[3], 'i', ARGV[4], 'a', ARGV[5], 'd', ARGV[6])
end
return 1
"""

# KEYS: job, stream, active, finished. ARGV: group, entry, status, result, now, job id.
_FINISH = """
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'finished', ARGV[5], 'result', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
return 1
"""

# KEYS: job, waiting, active, finished. ARGV: now, job id.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return 0 end
local c = redis.call('HMGET', KEYS[1], 'done', 'failed', 'total')
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished', ARGV[1])
redis.call('DECRBY', KEYS[2], tonumber(c[3]) - tonumber(c[1]) - tonumber(c[2]))
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[2])
return 1
"""

# KEYS: job. Queued becomes running when a first task of the job is claimed.
_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running')
end
return redis.call('HGET', KEYS[1], 'status')
"""


def _job(job_id: str, part: str = "") -> str:
    return f"{P}job:{job_id}{':' + part if part else ''}"


class RedisQueue:
    def __init__(self, url: str, *, visibility: float = 120.0, max_attempts: int = 8) -> None:
        self.url = url
        self.visibility = visibility
        self.max_attempts = max_attempts
        # Short timeouts: a status request waits on these calls; Redis answers in microseconds.
        self._r: aredis.Redis = aredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
        self._record = self._r.register_script(_RECORD)
        self._requeue = self._r.register_script(_REQUEUE)
        self._finish = self._r.register_script(_FINISH)
        self._cancel = self._r.register_script(_CANCEL)
        self._running = self._r.register_script(_RUNNING)
        self._group_ready = False
        self._cursor = "0-0"  # where the next XAUTOCLAIM scan starts

    @asynccontextmanager
    async def _calls(self) -> AsyncIterator[None]:
        """Redis's errors as the queue's 503; the consumer group made on first use."""
        try:
            if not self._group_ready:
                try:
                    await self._r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._group_ready = True
            yield
        except RedisError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data (no AOF): make the group again
                self._group_ready = False
            raise QueueUnavailable(f"The job queue (Redis) cannot be used: {exc}.",
                                   headers=retry_after(_RETRY)) from None

    async def open(self) -> None:
        return None  # connections open on first use: a Redis that is down must not stop start-up

    async def close(self) -> None:
        await self._r.aclose()

    # -- jobs ----------------------------------------------------------------
    async def create(self, record: JobRecord, items: list[dict[str, Any]]) -> None:
        async with self._calls():
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(_job(record.id), mapping={
                "spec": json.dumps(record.spec), "total": record.total, "status": record.status,
                "done": 0, "failed": 0, "created": record.created})
            pipe.zadd(ACTIVE, {record.id: record.created})
            pipe.incrby(WAITING, record.total)
            for i, data in enumerate(items):
                pipe.xadd(STREAM, {"j": record.id, "i": i, "a": 1, "d": json.dumps(data)})
            await pipe.execute()

    async def get(self, job_id: str) -> JobRecord | None:
        async with self._calls():
            pipe = self._r.pipeline(transaction=False)
            pipe.hgetall(_job(job_id))
            pipe.lrange(_job(job_id, "errors"), 0, -1)
            pipe.lrange(_job(job_id, "deliveries"), 0, -1)
            fields, errors, deliveries = await pipe.execute()
        if not fields:
            return None
        problems = sorted((json.loads(e) for e in errors), key=lambda p: int(p.get("item", 0)))
        return JobRecord(
            id=job_id, spec=json.loads(fields["spec"]), total=int(fields["total"]),
            status=fields["status"], done=int(fields["done"]), failed=int(fields["failed"]),
            created=float(fields["created"]),
            finished=float(fields["finished"]) if fields.get("finished") else None,
            result=json.loads(fields["result"]) if fields.get("result") else None,
            errors=problems, deliveries=[json.loads(d) for d in deliveries])

    async def cancel(self, job_id: str) -> JobRecord | None:
        async with self._calls():
            done = await self._cancel(keys=[_job(job_id), WAITING, ACTIVE, FINISHED],
                                      args=[time.time(), job_id])
        return await self.get(job_id) if done else None

    async def add_delivery(self, job_id: str, delivery: dict[str, Any]) -> None:
        async with self._calls():
            await self._r.rpush(_job(job_id, "deliveries"), json.dumps(delivery))

    # -- tasks ---------------------------------------------------------------
    async def claim(self, consumer: str, count: int) -> list[Task]:
        async with self._calls():
            await self._take_back(consumer, count)
            answer: Any = await self._r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count)
            entries = answer[0][1] if answer else []
            tasks = [self._task(entry_id, fields) for entry_id, fields in entries if fields]
            jobs = {t.job for t in tasks}
            statuses = {job: await self._running(keys=[_job(job)]) for job in jobs}
        live = [t for t in tasks if statuses[t.job] not in (None, "cancelled")]
        dropped = [t for t in tasks if statuses[t.job] in (None, "cancelled")]
        if dropped:  # a cancelled job's items are never rendered
            await self.drop(dropped)
        return live

    @staticmethod
    def _task(entry_id: str, fields: dict[str, str]) -> Task:
        data = json.loads(fields["d"]) if "d" in fields else None
        return Task(job=fields["j"], index=int(fields["i"]), attempt=int(fields["a"]),
                    data=data, token=entry_id)

    async def _take_back(self, consumer: str, count: int) -> None:
        """Tasks idle for the visibility timeout (holder died, or a retry's wait is over):
        queued again with attempt + 1, or dead-lettered."""
        idle_ms = int(self.visibility * 1000)
        # XAUTOCLAIM scans at most 10 x count pending entries a call: go on where the
        # last call stopped, so idle entries behind many busy ones are reached too.
        claimed: Any = await self._r.xautoclaim(STREAM, GROUP, consumer, idle_ms,
                                                start_id=self._cursor, count=count)
        self._cursor = claimed[0]
        for entry_id, fields in claimed[1]:
            if not fields:
                continue
            task = self._task(entry_id, fields)
            if not dead_letter(task.attempt, self.max_attempts):
                await self._requeue(keys=[STREAM], args=[
                    GROUP, entry_id, task.job, task.index, task.attempt + 1,
                    fields.get("d", "")])
                continue
            last = await self._r.hget(_job(task.job, "problems"), str(task.index))
            problem = dead_letter_problem(last, task.attempt)
            await self._r.xadd(DEAD, {"j": task.job, "i": task.index, "a": task.attempt,
                                      "problem": json.dumps(problem)})
            if task.index == FINALIZE:
                await self._finish_job(task, "failed", None)
            else:
                await self._write(task, Outcome(problem=problem | {"item": task.index}))

    async def record(self, outcomes: list[tuple[Task, Outcome]]) -> int:
        async with self._calls():
            return sum([await self._write(t, o) for t, o in outcomes])

    async def _write(self, task: Task, outcome: Outcome) -> int:
        problem = json.dumps(outcome.problem) if outcome.problem else ""
        new = await self._record(
            keys=[_job(task.job), _job(task.job, "outcomes"), STREAM, WAITING,
                  _job(task.job, "errors")],
            args=[GROUP, task.token, task.index, outcome.dump(), int(not outcome.ok), problem,
                  task.job])
        return int(new)

    async def retry(self, task: Task, problem: Problem) -> None:
        # Idle as if held for (visibility - delay): taken back once the delay has passed.
        idle_ms = int(max(self.visibility - retry_delay(task.attempt, self.visibility), 0) * 1000)
        async with self._calls():
            await self._r.hset(_job(task.job, "problems"), str(task.index),
                               json.dumps(problem.body() | {"item": task.index}))
            await self._r.xclaim(STREAM, GROUP, "retry", 0, [task.token], idle=idle_ms,
                                 justid=True)

    async def release(self, tasks: list[Task]) -> None:
        async with self._calls():
            for t in tasks:
                data = json.dumps(t.data) if t.data is not None else ""
                await self._requeue(keys=[STREAM], args=[GROUP, t.token, t.job, t.index,
                                                         t.attempt, data])

    async def drop(self, tasks: list[Task]) -> None:
        async with self._calls():
            ids = [t.token for t in tasks]
            await self._r.xack(STREAM, GROUP, *ids)
            await self._r.xdel(STREAM, *ids)

    async def outcomes(self, job_id: str) -> dict[int, Outcome]:
        async with self._calls():
            found = await self._r.hgetall(_job(job_id, "outcomes"))
        return {int(i): Outcome.load(o) for i, o in found.items()}

    async def outcome(self, job_id: str, index: int) -> Outcome | None:
        async with self._calls():
            found = await self._r.hget(_job(job_id, "outcomes"), str(index))
        return Outcome.load(found) if found else None

    async def finish(self, task: Task, result: dict[str, Any] | None) -> JobRecord | None:
        record = await self.get(task.job)
        if record is None or record.status in FINAL:
            await self.drop([task])
            return None
        status = final_status(record.done, record.failed, cancelled=False)
        async with self._calls():
            finished = await self._finish_job(task, status, result)
        return await self.get(task.job) if finished else None

    async def _finish_job(self, task: Task, status: str, result: dict[str, Any] | None) -> int:
        return int(await self._finish(
            keys=[_job(task.job), STREAM, ACTIVE, FINISHED],
            args=[GROUP, task.token, status, json.dumps(result) if result else "", time.time(),
                  task.job]))

    # -- the fleet's view ----------------------------------------------------
    async def backlog(self) -> Backlog:
        async with self._calls():
            waiting = await self._r.get(WAITING)
            oldest: Any = await self._r.zrange(ACTIVE, 0, 0, withscores=True)
        age = max(time.time() - oldest[0][1], 0.0) if oldest else 0.0
        return Backlog(int(waiting or 0), age)

    async def expired(self, finished_before: float) -> list[str]:
        async with self._calls():
            found: Any = await self._r.zrangebyscore(FINISHED, "-inf", finished_before)
        return list(found)

    async def forget(self, job_id: str) -> None:
        async with self._calls():
            await self._r.delete(*(_job(job_id, part) for part in
                                   ("", "outcomes", "errors", "problems", "deliveries")))
            await self._r.zrem(FINISHED, job_id)

    async def dead_letters(self) -> list[dict[str, Any]]:
        async with self._calls():
            entries: Any = await self._r.xrange(DEAD)
        return [{"job": f["j"], "index": int(f["i"]), "attempt": int(f["a"]),
                 "problem": json.loads(f["problem"])} for _, f in entries]
