"""Starting and stopping `gendoc` processes on loopback (gendoc up, the bench, the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from gendoc.readiness import Abort, wait_until


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str  # R, S, Z, T...
    command: str  # the kernel's short name (comm)
    rss_kb: int


def process_table() -> dict[int, ProcInfo]:
    """Every process, from one pass over /proc (processes that vanish meanwhile are skipped)."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    table: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            # The command sits in parentheses and may itself contain ") ".
            command = stat[stat.index("(") + 1: stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            table[int(entry)] = ProcInfo(int(entry), int(fields[1]), fields[0], command,
                                         int(fields[21]) * page_kb)
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(root: int, table: dict[int, ProcInfo] | None = None) -> list[ProcInfo]:
    """All processes below `root` (not itself), however deep."""
    table = process_table() if table is None else table
    children: dict[int, list[ProcInfo]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


def tree_rss_kb(roots: list[int]) -> int:
    """Resident memory of the given processes and all their descendants."""
    table = process_table()
    return sum(
        (table[r].rss_kb if r in table else 0) + sum(d.rss_kb for d in descendants(r, table))
        for r in roots
    )


def kill_survivors(processes: list[ProcInfo]) -> None:
    """SIGKILL those of `processes` still running (same pid and command: not a reused pid)."""
    table = process_table()
    for info in processes:
        now = table.get(info.pid)
        if now is not None and now.command == info.command and now.state != "Z":
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GendocProcess:
    """A real `gendoc <subcommand>` process listening on 127.0.0.1."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path | None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (graceful: drain, stop children), then SIGKILL after `timeout`; then
        every process that was below it and outlived it (a peer such as Gotenberg starts
        LibreOffice in a process group of its own, which the group's SIGKILL misses)."""
        below = descendants(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL) if self._own_group() else self.proc.kill()
                self.proc.wait()
        kill_survivors(below)
        return self.proc.returncode

    def _own_group(self) -> bool:
        try:
            return os.getpgid(self.proc.pid) == self.proc.pid
        except ProcessLookupError:
            return False

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


def spawn_gendoc(
    args: list[str],
    port: int,
    ready_path: str,
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    new_session: bool = True,
    prefix: Sequence[str] = (),
) -> GendocProcess:
    """Start `python -m gendoc ARGS` and wait until GET ready_path answers 200.

    `prefix` runs it through another command that execs it (such as `nsenter`)."""
    out = log.open("wb") if log else None
    try:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "gendoc", *args],
            stdout=out, stderr=subprocess.STDOUT if out else None,
            env={**os.environ, **(env or {})}, start_new_session=new_session,
        )
    finally:
        if out:
            out.close()  # the child holds its own descriptor
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace") if log else ""
            raise Abort(f"gendoc {args[0]} exited with {proc.returncode}:\n{detail[-4000:]}")
        return httpx.get(url + ready_path, timeout=2).status_code == 200

    try:
        wait_until(ready, timeout, interval=0.1, what=f"gendoc {args[0]} on {url}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return GendocProcess(url, proc, log)
