"""A real redis-server (Debian's) for one test session: a unix socket in a temp directory,
no TCP port, AOF on; stopped (and waited for) by the fixture that started it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from gendoc.readiness import wait_until


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    socket: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    log = (directory / "redis.log").open("wb")
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(directory), "--appendonly", "yes", "--save", ""],
        stdout=log, stderr=subprocess.STDOUT)
    server = RedisServer(process, sock)
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(directory / 'redis.log').read_text()}")
            with server.client() as c:
                return bool(c.ping())
        wait_until(up, 30, what="redis-server answering PING")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
