"""The S3-compatible server of the store tests (gendoc.s3server: versitygw on 127.0.0.1).

A build that fails, for instance because Go is missing, fails the tests that need
it: they are never skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gendoc import s3server
from gendoc.readiness import wait_until
from gendoc.s3server import S3Server

__all__ = ["S3Server", "versitygw_binary", "wait_until_new"]

REPO = Path(__file__).resolve().parent.parent


def versitygw_binary() -> Path:
    """Build (or find cached) versitygw; a failure fails the calling test loudly."""
    try:
        return s3server.versitygw_binary(REPO)
    except s3server.BuildFailed as exc:
        pytest.fail(str(exc), pytrace=False)


def wait_until_new(read_is_new: Callable[[], bool], since: float, bound: float,
                   what: str) -> None:
    """Read until `read_is_new()`; fail if a read that began `bound` seconds after
    `since` still saw the old state. What is compared is when each read began, so
    a slow machine (a read that takes long) cannot make the bound pass or fail."""
    late: list[float] = []

    def check() -> bool:
        started = time.monotonic()
        if read_is_new():
            return True
        if started >= since + bound:
            late.append(round(started - since, 3))
        return False

    wait_until(check, bound + 30, interval=0.02, what=what)
    assert late == [], f"reads that began {late} s after the change still saw the old state"
