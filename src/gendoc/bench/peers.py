"""What the bench drives: gendoc's own processes and the peers it is compared with.

- our converter sidecar (any pool size) and the service in front of it, as `gendoc` runs them;
- Gotenberg 8 (LibreOffice variant, built once by scripts/gotenberg.sh) as its users run
  it: one container, or one per core, each with its default restart-after-10 or with
  restarts off, each process with its OWN temp directory (Gotenberg deletes `lu*` and
  `OSL_PIPE*` from its temp directory on every LibreOffice restart, so processes sharing
  one break each other);
- `cold`: one `soffice --convert-to pdf` process per document, the old way.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gendoc import s3server
from gendoc.procs import GendocProcess, free_port, spawn_gendoc
from gendoc.readiness import Abort, wait_until

from .load import Call

REPO = Path(__file__).resolve().parents[3]
GOTENBERG_SCRIPT = REPO / "scripts" / "gotenberg.sh"
GOTENBERG_DEFAULT_RESTART = 10  # --libreoffice-restart-after's default in Gotenberg 8


@dataclass
class Target:
    """Started processes that answer on `urls`; `pids` are the roots whose RSS counts."""

    urls: list[str]
    processes: list[GendocProcess]
    description: str
    # What else the target needs stopped after its processes (the S3 server of a stack).
    after_stop: list[Callable[[], None]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.processes]

    def stop(self) -> None:
        for process in reversed(self.processes):  # the service before its converter
            process.stop()
        for stop in self.after_stop:
            stop()


@contextmanager
def running(target: Target) -> Iterator[Target]:
    try:
        yield target
    finally:
        target.stop()


# -- gendoc ---------------------------------------------------------------------------
def start_converter(workdir: Path, pool_size: int) -> GendocProcess:
    port = free_port()
    return spawn_gendoc(
        ["converter", "--port", str(port), "--pool-size", str(pool_size),
         "--log-level", "warning"],
        port, "/health", log=workdir / f"converter-{port}.log", timeout=180,
        # Queue room for every client the bench may have outstanding (the open model).
        env={"GENDOC_CONVERTER_QUEUE_SIZE": "256"},
    )


def converter(workdir: Path, pool_size: int) -> Target:
    process = start_converter(workdir, pool_size)
    return Target([process.url], [process], f"gendoc converter, pool of {pool_size}")


def stack(workdir: Path, pool_size: int, env: dict[str, str] | None = None) -> Target:
    conv = start_converter(workdir, pool_size)
    try:
        port = free_port()
        service = spawn_gendoc(
            ["serve", "--port", str(port), "--converter-url", conv.url,
             "--store-dir", str(workdir / f"store-{port}"), "--log-level", "warning"],
            port, "/readyz", log=workdir / f"service-{port}.log", timeout=120, env=env,
        )
    except BaseException:
        conv.stop()
        raise
    return Target([service.url], [conv, service],
                  f"gendoc service + converter (pool of {pool_size})")


def s3_stack(workdir: Path, pool_size: int) -> Target:
    """The stack with its templates in S3-compatible object storage: versitygw on
    127.0.0.1 (scripts/s3-server.sh builds it once), a bucket of its own."""
    server = s3server.S3Server(s3server.versitygw_binary(REPO), workdir / "s3").start()
    try:
        bucket = server.new_bucket()
        # The service's default cache TTL of "current" (GENDOC_STORE_CURRENT_TTL), as a
        # fleet runs it: a hot template is read from S3 again once per TTL.
        env = {k: v for k, v in server.service_env(bucket).items()
               if k != "GENDOC_STORE_CURRENT_TTL"}
        target = stack(workdir, pool_size, env)
    except BaseException:
        server.stop()
        raise
    target.after_stop.append(server.stop)
    target.description += f", templates in S3 (versitygw, bucket {bucket})"
    return target


# -- Gotenberg ------------------------------------------------------------------------
UNOCONVERTERS = {
    "unoconverter": "Gotenberg's own unoconverter",
    "unoconv": "PyPI's unoconv 0.9.0, patched, standing in for its unoconverter",
}


@dataclass(frozen=True)
class GotenbergConfig:
    processes: int = 1  # containers; one per core is how it scales out
    restart_after: int = GOTENBERG_DEFAULT_RESTART  # 0: never restart LibreOffice
    unoconverter: str | None = None  # a key of UNOCONVERTERS; None: the bench's choice

    def description(self, unoconverter: str) -> str:
        what = "one process" if self.processes == 1 else \
            f"{self.processes} processes (one per core), each with its own temp directory"
        restarts = "restarts off" if self.restart_after == 0 else \
            f"LibreOffice restarted every {self.restart_after} conversions" + \
            (" (its default)" if self.restart_after == GOTENBERG_DEFAULT_RESTART else "")
        return f"Gotenberg, {what}, {restarts}, {UNOCONVERTERS[unoconverter]}"

    @classmethod
    def parse(cls, name: str) -> GotenbergConfig:
        """`gotenberg-P[-norestart|-restartN][-unoconv|-unoconverter]`, P a number or `cores`."""
        parts = name.split("-")
        count = (os.cpu_count() or 1) if parts[1] == "cores" else int(parts[1])
        restart, unoconverter = GOTENBERG_DEFAULT_RESTART, None
        for part in parts[2:]:
            if part in UNOCONVERTERS:
                unoconverter = part
            elif part == "norestart":
                restart = 0
            else:
                restart = int(part.removeprefix("restart"))
        return cls(count, restart, unoconverter)


@functools.cache
def gotenberg_launcher() -> Path:
    """Build (once, cached under ~/.cache/gendoc) and return Gotenberg's launcher."""
    if not GOTENBERG_SCRIPT.exists():
        raise RuntimeError(f"the Gotenberg modes need the repository's {GOTENBERG_SCRIPT}")
    built = subprocess.run(["bash", str(GOTENBERG_SCRIPT)], stdout=subprocess.PIPE, check=True,
                           timeout=1800)
    return Path(built.stdout.decode().strip().splitlines()[-1])


def installed_unoconverters() -> dict[str, Path]:
    """What scripts/gotenberg.sh installed: `unoconv` (PyPI's unoconv 0.9.0, patched) always,
    `unoconverter` (gotenberg/unoconverter) when it was given that file."""
    bin_dir = gotenberg_launcher().parent / "bin"
    found = {"unoconv": bin_dir / "unoconverter", "unoconverter": bin_dir / "unoconverter-upstream"}
    return {name: path for name, path in found.items() if path.exists()}


def default_unoconverter() -> str:
    return "unoconverter" if "unoconverter" in installed_unoconverters() else "unoconv"


def start_gotenberg(workdir: Path, *, restart_after: int = GOTENBERG_DEFAULT_RESTART,
                    unoconverter: str | None = None) -> GendocProcess:
    """One real Gotenberg 8 on 127.0.0.1, as shipped but for loopback binding, LibreOffice
    started before it reports healthy, and `restart_after`; its own temp directory."""
    port = free_port()
    tmp = workdir / f"gotenberg-{port}-tmp"
    tmp.mkdir(parents=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    if unoconverter:
        env["UNOCONVERTER_BIN_PATH"] = str(installed_unoconverters()[unoconverter])
    log = workdir / f"gotenberg-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(gotenberg_launcher()), "--api-port", str(port), "--api-bind-ip", "127.0.0.1",
             "--libreoffice-auto-start", "--gotenberg-hide-banner",
             "--libreoffice-restart-after", str(restart_after),
             "--gotenberg-graceful-shutdown-duration", "10s",
             # On a loaded machine soffice can take longer to come up than Gotenberg's
             # limits (20 s for LibreOffice, 30 s for the API), and Gotenberg then exits.
             # Start-up waits only, below the 120 s readiness wait here.
             "--libreoffice-start-timeout", "90s", "--api-start-timeout", "110s"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace")[-4000:]
            raise Abort(f"gotenberg exited with {proc.returncode}:\n{detail}")
        health = httpx.get(url + "/health", timeout=2)
        return health.status_code == 200 and \
            health.json()["details"]["libreoffice"]["status"] == "up"

    try:
        wait_until(ready, 120, interval=0.1, what=f"gotenberg on {url}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return GendocProcess(url, proc, log)


def gotenberg(workdir: Path, config: GotenbergConfig, unoconverter: str) -> Target:
    """`config.processes` Gotenbergs; `unoconverter` unless the config names one."""
    unoconverter = config.unoconverter or unoconverter
    started: list[GendocProcess] = []
    try:
        for _ in range(config.processes):
            started.append(start_gotenberg(workdir, restart_after=config.restart_after,
                                           unoconverter=unoconverter))
    except BaseException:
        for process in started:
            process.stop()
        raise
    return Target([p.url for p in started], started, config.description(unoconverter))


# -- cold: the old way ---------------------------------------------------------------
def cold_call(docx: bytes, workdir: Path) -> Call:
    """A fresh `soffice --convert-to pdf` (and profile) per document, in a thread."""
    soffice = shutil.which("soffice") or "/usr/bin/soffice"
    source = workdir / "cold-input.docx"
    source.write_bytes(docx)

    def convert() -> int:
        with tempfile.TemporaryDirectory(prefix="gendoc-cold-", dir=workdir) as tmp:
            done = subprocess.run(
                [soffice, f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                 "--convert-to", "pdf", "--outdir", tmp, str(source)],
                capture_output=True, timeout=300,
                # A temp directory of its own, as every LibreOffice here gets (its files
                # in a shared one are deleted by a Gotenberg restarting on the same host).
                env={**os.environ, "TMPDIR": tmp},
            )
            pdf = Path(tmp) / f"{source.stem}.pdf"
            return 200 if done.returncode == 0 and pdf.exists() else 500

    async def call() -> int:
        return await asyncio.to_thread(convert)

    return call
