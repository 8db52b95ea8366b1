"""Resident memory of a process tree, for tests (the bench has its own sampler)."""

from __future__ import annotations

from gendoc.bench import _tree_rss_kb


def tree_rss_mb(pid: int) -> float:
    return _tree_rss_kb([pid]) / 1024
