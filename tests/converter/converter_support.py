"""Helpers of the converter tests: real `gendoc converter` processes on 127.0.0.1."""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from converter.converter_docs import DOCX_TYPE

from gendoc.procs import GendocProcess, free_port, process_table, spawn_gendoc
from gendoc.readiness import wait_until

CONVERT = "/forms/libreoffice/convert"
REPO = Path(__file__).resolve().parents[2]
INVOICE = REPO / "src" / "gendoc" / "examples" / "invoice.docx"


def start_converter(tmp: Path, pool_size: int = 2, prefix: Sequence[str] = (),
                    whole: bool = False, **settings: object) -> GendocProcess:
    """A real converter on a free port; work_dir defaults to TMP/work. Its /health is up
    once one instance is; `whole` waits until all `pool_size` are, for tests that count
    instances or pick one to harm."""
    port = free_port()
    env = {f"GENDOC_CONVERTER_{k.upper()}": str(v) for k, v in settings.items()}
    env.setdefault("GENDOC_CONVERTER_WORK_DIR", str(tmp / "work"))
    server = spawn_gendoc(["converter", "--port", str(port), "--pool-size", str(pool_size)],
                          port, "/health", log=tmp / f"converter-{port}.log", env=env,
                          timeout=90, prefix=prefix)
    if whole:
        try:
            wait_until(lambda: pool_whole(server, pool_size), 90, what="every instance ready")
        except BaseException:
            server.stop()
            raise
    return server


class PrivateTmpfs:
    """A small tmpfs mounted at `target` in a private mount namespace (the tests run as
    root), held open by a sleeping process. Processes started with `prefix` share it;
    nothing else on the machine sees it. It vanishes with the namespace's last process,
    so a failing test cannot leave a mount behind.

    Those processes run from this repository and its venv: when either lies under
    `target` (a clone in /tmp, as CI's may be), it is bound back in place over the
    tmpfs, so the tmpfs hides everything else there but not the code."""

    def __init__(self, target: Path, size_mb: int) -> None:
        self.target, self.size_mb = target, size_mb
        self.holder: subprocess.Popen[bytes] | None = None

    def _kept(self) -> list[Path]:
        """The repository and the venv where they lie under `target`, none inside another."""
        under = sorted(p for p in {REPO, Path(sys.prefix).resolve()}
                       if p.is_relative_to(self.target))
        return [p for p in under if not any(p != q and p.is_relative_to(q) for q in under)]

    def __enter__(self) -> PrivateTmpfs:
        self.target.mkdir(parents=True, exist_ok=True)
        # Each kept directory is opened (fds from 3 on) before the tmpfs covers it, then
        # bound back from its descriptor (-c: not resolved to the covered path by name);
        # "ready" on stdout once every mount is in place.
        script = (
            'size="$1"; target="$2"; shift 2\n'
            'fd=3; for keep; do eval "exec $fd<\\"\\$keep\\"" || exit 1; fd=$((fd+1)); done\n'
            'mount -t tmpfs -o size="${size}m" gendoc-test "$target" || exit 1\n'
            'fd=3; for keep; do mkdir -p "$keep" && mount -c --bind "/proc/self/fd/$fd" "$keep" '
            '|| exit 1; eval "exec $fd<&-"; fd=$((fd+1)); done\n'
            'echo ready; exec sleep 3600\n')
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
             str(self.size_mb), str(self.target), *map(str, self._kept())],
            stdout=subprocess.PIPE, start_new_session=True)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            self.__exit__()
            raise RuntimeError(f"no private tmpfs on {self.target} (exit {self.holder.poll()})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
            if self.holder.stdout is not None:
                self.holder.stdout.close()

    @property
    def prefix(self) -> list[str]:
        """Run a command inside the namespace (nsenter execs it: same pid)."""
        assert self.holder is not None
        return ["nsenter", "--target", str(self.holder.pid), "--mount", "--"]

    def outside(self, path: Path) -> Path:
        """Where `path` of the namespace is reachable from outside it."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root") / path.relative_to("/")


def docx_file(name: str, data: bytes) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (name, data, DOCX_TYPE))


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)"
    found = re.search(rf"^{pattern}$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command) of the processes whose parent is `pid`."""
    return [(p.pid, p.state, p.command) for p in process_table().values() if p.ppid == pid]


def soffice_pids(server: GendocProcess) -> list[int]:
    return [pid for pid, state, cmd in children(server.proc.pid)
            if cmd.startswith("soffice") and state != "Z"]


@dataclass
class Outcome:
    """What the clients of a Load saw: documents delivered, refusals retried, failures."""

    ok: int = 0
    refusals: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


Send = Callable[[httpx.Client], httpx.Response]


class Load:
    """Clients that send good documents back to back until stopped, each a well-behaved
    client: on 429/503 it waits Retry-After (at most 3 s) and sends the same document
    again. A document is lost when it gets anything else, or no PDF within a minute."""

    def __init__(self, url: str, send: Send, clients: int = 4) -> None:
        self.url, self.send = url, send
        self.outcome = Outcome()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True)
                         for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def delivered(self, count: int, timeout: float = 60.0, *, fail_fast: bool = True) -> None:
        """Wait until `count` documents have been delivered in all (or, with `fail_fast`,
        one was lost: the test's assertions then say which)."""
        wait_until(lambda: self.outcome.ok >= count or (fail_fast and self.outcome.failures),
                   timeout, interval=0.05, what=f"{count} documents delivered")

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                self._one(client)

    def _one(self, client: httpx.Client) -> None:
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            try:
                response = self.send(client)
            except httpx.TransportError as exc:
                return self._record(failure=f"transport {exc!r}")
            retry_after = response.headers.get("retry-after", "")
            if response.status_code == 200 and response.content.startswith(b"%PDF"):
                return self._record()
            if response.status_code not in (429, 503) or not retry_after.isdigit():
                return self._record(failure=f"{response.status_code} {response.text[:300]}")
            self._record(refusal=response.status_code)
            # Waits as told; no readiness to wait on from outside (the client's own rule).
            time.sleep(min(int(retry_after), 3))
        return self._record(failure="no PDF within 60 s")

    def _record(self, failure: str | None = None, refusal: int | None = None) -> None:
        with self._lock:
            if failure:
                self.outcome.failures.append(failure)
            elif refusal:
                self.outcome.refusals[refusal] = self.outcome.refusals.get(refusal, 0) + 1
            else:
                self.outcome.ok += 1


def send_invoice(client: httpx.Client) -> httpx.Response:
    return client.post(CONVERT, files=[docx_file("invoice.docx", INVOICE.read_bytes())])


def converter_metrics(server: GendocProcess) -> str:
    return httpx.get(server.url + "/metrics", timeout=5).text


def restarts(server: GendocProcess, *reasons: str) -> float:
    text = converter_metrics(server)
    return sum(metric(text, "gendoc_converter_restarts_total", f'reason="{r}"') for r in reasons)


def failures(server: GendocProcess, cause: str) -> float:
    return metric(converter_metrics(server), "gendoc_converter_failures_total",
                  f'cause="{cause}"')


def ready_instances(server: GendocProcess) -> float:
    text = converter_metrics(server)
    return (metric(text, "gendoc_converter_instances", 'state="idle"')
            + metric(text, "gendoc_converter_instances", 'state="busy"'))


def pool_whole(server: GendocProcess, size: int) -> bool:
    return ready_instances(server) == size and len(soffice_pids(server)) == size


def discard(path: Path) -> None:
    """Remove `path` the way a cleaner does while LibreOffice is still at work in it: a file
    LibreOffice deletes between our listing and our unlink is gone already, and a directory
    it writes a new file into while we empty it is emptied again."""
    def gone_already(_function: object, _path: str, error: Any) -> None:
        if not isinstance(error[1], FileNotFoundError):
            raise error[1]

    for _attempt in range(20):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, onerror=gone_already)
            else:
                path.unlink(missing_ok=True)
            return
        except OSError as error:
            if error.errno != errno.ENOTEMPTY:
                raise
    raise AssertionError(f"{path} kept filling up while being removed")


def empty_temp_dirs(dirs: list[Path]) -> None:
    """What a real Gotenberg, tmpreaper or systemd-tmpfiles does: LibreOffice's lu*.tmp go."""
    for directory in dirs:
        for entry in (directory / "tmp").iterdir():
            discard(entry)
