"""Where async jobs' documents go: one protocol, two backends (a directory, S3).

The backend follows the template store's (`GENDOC_STORE_URL`): a directory of
this machine (`GENDOC_JOBS_DIR/results`, the default) or the store's bucket
under `<prefix>results/` (`store_s3.S3Results`), where clients fetch a job's
result through a presigned URL. Keys are `<job>/items/<index>.<ext>` and
`<job>/result.<ext>`: an item written twice (a task delivered twice) lands on
the same key, so the result holds it once. Retention is applied per job
(`delete_job`) when the job's record expires.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import StoreUnavailable, retry_after
from .store import atomic_write

if TYPE_CHECKING:
    from .settings import ServiceSettings

_KEY = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*(\.[a-z]+)?")
_RETRY = 5.0


def check_key(key: str) -> str:
    """A result key is path segments of letters, digits, '_' and '-' (no '..', no '/' first)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a result key: {key!r}")
    return key


def item_key(job_id: str, index: int, extension: str) -> str:
    return f"{job_id}/items/{index}.{extension}"


def result_key(job_id: str, extension: str) -> str:
    return f"{job_id}/result.{extension}"


Entry = tuple[str, bytes, str, str]  # key, data, media type, file name


class ResultStore(Protocol):
    def put(self, key: str, data: bytes, media_type: str, filename: str) -> None: ...

    def put_many(self, entries: list[Entry]) -> None:
        """Store several (a chunk's items) at once: durable when it returns."""

    def put_file(self, key: str, path: Path, media_type: str, filename: str) -> None:
        """Store a file written in `scratch()` (a large zip), without reading it into memory."""

    def get(self, key: str) -> bytes | None: ...

    def local_path(self, key: str) -> Path | None:
        """The file holding `key` when it is on this machine (served as it is), else None."""

    def url(self, key: str, expires_in: int) -> str | None:
        """A URL clients fetch `key` from without the service, or None (ask the service)."""

    def delete_job(self, job_id: str) -> None: ...

    def scratch(self) -> Path:
        """A directory to write a large result in before `put_file`."""
        ...


def open_results(settings: ServiceSettings) -> ResultStore:
    url = settings.store_url.strip()
    if url.startswith("s3://"):
        from .store_s3 import S3Results

        return S3Results.from_settings(settings)
    return DirectoryResults(settings.jobs_path() / "results")


def _unavailable(exc: OSError, what: str) -> StoreUnavailable:
    return StoreUnavailable(f"Job results cannot be {what}: {exc.strerror}.",
                            headers=retry_after(_RETRY))


class DirectoryResults:
    """Results as files under `root`, written atomically (temporary name, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, media_type: str, filename: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError as exc:
            raise _unavailable(exc, "written") from None

    def put_many(self, entries: list[Entry]) -> None:
        """Every file written first, then each flushed and renamed into place: the disk
        commits its journal once for most of them, where one fsync per write costs
        a journal commit each (measured: a 10,000-item job spent minutes in them)."""
        written: list[tuple[int, str, Path]] = []
        try:
            for key, data, _, _ in entries:
                path = self._path(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                written.append((fd, tmp, path))
                with os.fdopen(fd, "wb", closefd=False) as fh:
                    fh.write(data)
            for fd, tmp, path in written:
                os.fsync(fd)
                os.replace(tmp, path)
        except OSError as exc:
            raise _unavailable(exc, "written") from None
        finally:
            for fd, tmp, _ in written:
                os.close(fd)
                Path(tmp).unlink(missing_ok=True)

    def put_file(self, key: str, path: Path, media_type: str, filename: str) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(path, target)  # written in scratch(): the same file system
        except OSError as exc:
            raise _unavailable(exc, "written") from None

    def scratch(self) -> Path:
        path = self.root / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _unavailable(exc, "read") from None

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def url(self, key: str, expires_in: int) -> str | None:
        return None

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self._path(job_id), ignore_errors=True)
