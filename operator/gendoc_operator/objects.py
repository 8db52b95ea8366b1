"""Kubernetes objects as the operator handles them: plain JSON, and the API's timestamps.

One home for the `JSON` alias, for turning kopf's read-only views into plain
dicts, and for the wall-clock time written into statuses and events (the only
clock the operator reads besides the monotonic one that paces the autoscaler).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]


def plain(value: Any) -> Any:
    """A kopf Body (nested read-only views) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def timestamp() -> str:
    """Now, UTC, to the second, as the API server writes metav1.Time."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
