"""The queue's decisions (pure) and the embedded backend's delivery rules, on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gendoc_service.errors import (
    ConverterUnavailable,
    RenderMemoryLimit,
    RenderTimeout,
    UndefinedVariables,
)
from gendoc_service.queue import (
    FINALIZE,
    REASONS_SHOWN,
    JobRecord,
    Outcome,
    conversion_summary,
    dead_letter,
    dead_letter_problem,
    final_status,
    retriable,
    retry_delay,
)
from gendoc_service.queue_sqlite import SqliteQueue


def test_final_status() -> None:
    assert final_status(3, 0, cancelled=False) == "succeeded"
    assert final_status(2, 1, cancelled=False) == "succeeded"
    assert final_status(0, 3, cancelled=False) == "failed"
    assert final_status(0, 0, cancelled=True) == "cancelled"


def test_the_conversion_summary_counts_items_by_mode_and_reason() -> None:
    merged = Outcome(size=9, extension="pdf", mode="merged")
    numpages = Outcome(size=9, extension="pdf", mode="single", why="a NUMPAGES field")
    failed = Outcome(problem={"status": 422})
    assert conversion_summary([merged, merged, numpages, failed]) == {
        "merged": 2, "single": 1, "reasons": {"a NUMPAGES field": 1}}
    assert conversion_summary([Outcome(size=9, extension="docx"), failed]) is None
    many = [Outcome(size=1, extension="pdf", mode="single", why=f"reason {i % 30}")
            for i in range(60)]
    summary = conversion_summary(many)
    assert summary is not None and summary["single"] == 60
    assert len(summary["reasons"]) == REASONS_SHOWN
    assert set(summary["reasons"].values()) == {2}
    # Stored and read back; an outcome written before modes existed still loads.
    assert Outcome.load(numpages.dump()) == numpages
    assert "mode" not in json.loads(Outcome(size=1, extension="docx").dump())
    assert Outcome.load('{"size": 1, "extension": "pdf", "problem": null}').mode == ""


def test_the_status_shows_the_conversion_beside_the_result() -> None:
    record = JobRecord("j", {"template": "t", "format": "pdf"}, total=2,
                       result={"url": "/v1/jobs/j/result", "size": 5,
                               "conversion": {"merged": 2, "single": 0, "reasons": {}}})
    body = record.public()
    assert body["result"] == {"url": "/v1/jobs/j/result", "size": 5}
    assert body["conversion"] == {"merged": 2, "single": 0, "reasons": {}}
    assert "conversion" in record.result  # the stored record is left as it was
    assert "conversion" not in JobRecord("k", {"template": "t", "format": "pdf"}, 1).public()


def test_what_is_delivered_again() -> None:
    assert retriable(ConverterUnavailable("down"))
    assert retriable(RenderMemoryLimit("the worker died"))
    assert not retriable(UndefinedVariables("x"))
    assert not retriable(RenderTimeout("slow"))
    assert [retry_delay(a, 60) for a in (1, 2, 3, 6, 9)] == [2, 4, 8, 60, 60]
    assert not dead_letter(2, 3) and dead_letter(3, 3)


def test_a_dead_letter_keeps_the_last_problem_reported_or_says_none_came() -> None:
    last = ConverterUnavailable("down").body() | {"item": 4}
    assert dead_letter_problem(json.dumps(last), 3) == last
    silent = dead_letter_problem(None, 3)
    assert silent["status"] == 503 and "delivered 3 times" in silent["detail"]


def test_outcomes_count_once_and_the_last_one_queues_the_finalize(tmp_path: Path) -> None:
    async def run() -> None:
        queue = SqliteQueue(tmp_path / "q.sqlite3", visibility=60)
        await queue.open()
        await queue.create(JobRecord("j1", {"template": "t", "format": "docx"}, 3),
                           [{"n": 0}, {"n": 1}, {"n": 2}])
        tasks = await queue.claim("a", 10)
        assert [t.index for t in tasks] == [0, 1, 2] and tasks[0].data == {"n": 0}
        assert (await queue.get("j1")).status == "running"  # type: ignore[union-attr]
        ok = Outcome(size=5, extension="docx")
        assert await queue.record([(tasks[0], ok), (tasks[1], ok)]) == 2
        assert await queue.record([(tasks[0], ok)]) == 0  # a second delivery's write
        assert await queue.claim("a", 10) == []
        assert await queue.record([(tasks[2], Outcome(problem={"status": 422}))]) == 1
        [final] = await queue.claim("b", 10)
        assert final.index == FINALIZE
        done = await queue.finish(final, {"url": "u", "size": 1})
        assert done is not None and (done.status, done.done, done.failed) == ("succeeded", 2, 1)
        assert await queue.finish(final, None) is None  # finished once
        assert (await queue.backlog()).items == 0
        await queue.close()
    asyncio.run(run())


def test_lost_tasks_come_back_then_go_to_the_dead_letter_list(tmp_path: Path) -> None:
    async def run() -> None:
        queue = SqliteQueue(tmp_path / "q.sqlite3", visibility=0.0, max_attempts=3)
        await queue.open()
        await queue.create(JobRecord("j2", {"template": "t", "format": "docx"}, 1), [{}])
        attempts = []
        for _ in range(3):  # each holder "dies": visibility 0 gives the task back at once
            [task] = await queue.claim("dies", 1)
            attempts.append(task.attempt)
            await asyncio.sleep(0.01)
        assert attempts == [1, 2, 3]
        [final] = await queue.claim("next", 1)  # the third loss dead-lettered the item
        assert final.index == FINALIZE
        [dead] = await queue.dead_letters()
        assert (dead["job"], dead["index"], dead["attempt"]) == ("j2", 0, 3)
        record = await queue.get("j2")
        assert record is not None and record.failed == 1 and record.errors[0]["item"] == 0
        await queue.close()
    asyncio.run(run())


def test_released_tasks_keep_their_attempt_and_cancel_drops_the_rest(tmp_path: Path) -> None:
    async def run() -> None:
        queue = SqliteQueue(tmp_path / "q.sqlite3", visibility=60)
        await queue.open()
        await queue.create(JobRecord("j3", {"template": "t", "format": "docx"}, 4), [{}] * 4)
        held = await queue.claim("a", 2)
        await queue.release(held[:1])
        again = await queue.claim("b", 1)
        assert (again[0].index, again[0].attempt) == (0, 1)
        cancelled = await queue.cancel("j3")
        assert cancelled is not None and cancelled.status == "cancelled"
        assert await queue.cancel("j3") is None
        assert await queue.claim("c", 10) == []
        await queue.release(held[1:])  # given back after the cancel: dropped at the next claim
        assert await queue.claim("c", 10) == []
        assert (await queue.backlog()).items == 1  # b still holds item 0
        await queue.drop(again)
        assert (await queue.backlog()).items == 0
        await queue.close()
    asyncio.run(run())
