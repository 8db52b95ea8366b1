"""A real S3-compatible server on 127.0.0.1: versitygw over a directory.

Used by the store tests and by `gendoc bench`'s S3-store mode. `scripts/s3-server.sh`
builds versitygw once from the Go module proxy and caches it outside the repository
(why versitygw: that script's header).
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from gendoc.procs import free_port
from gendoc.readiness import Abort, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_buckets = itertools.count()


class BuildFailed(RuntimeError):
    """scripts/s3-server.sh could not build or find versitygw."""


def versitygw_binary(repo: Path) -> Path:
    """Build (or find cached) versitygw with the repository's script."""
    done = subprocess.run(["bash", str(repo / "scripts" / "s3-server.sh")],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"scripts/s3-server.sh failed ({done.returncode}):\n"
                          f"{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class S3Server:
    """One versitygw process; `stop` and `start` again keep its port and its data."""

    binary: Path
    root: Path
    port: int = field(default_factory=free_port)
    access_key: str = "gendoc-test"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.root / "versitygw.log").open("ab")
        try:
            # The secret goes through the environment, not argv (ps shows argv).
            self.proc = subprocess.Popen(
                [str(self.binary), "--port", f"127.0.0.1:{self.port}", "posix", str(data)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "ROOT_ACCESS_KEY": self.access_key,
                     "ROOT_SECRET_KEY": self.secret_key},
            )
        finally:
            log.close()
        client = self.client()

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise Abort(f"versitygw exited with {self.proc.returncode}:\n{self.logs()}")
            client.list_buckets()
            return True

        wait_until(answers, 30, what=f"versitygw on {self.endpoint}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (a store that hangs: connections open, nothing answers) or SIGCONT."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def logs(self) -> str:
        return (self.root / "versitygw.log").read_text(errors="replace")[-3000:]

    def client(self, timeout: float = 5.0) -> S3Client:
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          connect_timeout=timeout, read_timeout=timeout,
                          retries={"max_attempts": 2, "mode": "standard"}),
        )

    def new_bucket(self) -> str:
        """A bucket of its own for one test (names are DNS-style: lower case, digits, '-')."""
        name = f"gendoc-{os.getpid()}-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def service_env(self, bucket: str, prefix: str = "fleet", ttl: float = 1.0) -> dict[str, str]:
        """What a service needs in its environment to keep its templates here."""
        return {
            "GENDOC_STORE_URL": f"s3://{bucket}/{prefix}",
            "GENDOC_S3_ENDPOINT_URL": self.endpoint,
            "GENDOC_S3_ACCESS_KEY_ID": self.access_key,
            "GENDOC_S3_SECRET_ACCESS_KEY": self.secret_key,
            "GENDOC_S3_PATH_STYLE": "true",
            "GENDOC_STORE_CURRENT_TTL": str(ttl),
            "GENDOC_STORE_TIMEOUT": "2",
        }
