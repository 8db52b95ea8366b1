"""The template store: what every backend does (`TemplateStore`), and the directory backend.

Two backends, chosen by `GENDOC_STORE_URL` (`open_store`): this directory (the
default, and what `gendoc up` uses) and S3-compatible object storage shared by a
whole fleet (`store_s3.S3Store`). Both are synchronous (file and HTTP I/O); the
service calls them off the event loop (`anyio.to_thread`).

Directory layout under the root (a mounted volume in Kubernetes):

    <name>/current              the id of the newest version (replaced atomically)
    <name>/<id>.docx            an immutable version; id = sha256 of its bytes
    <name>/<id>.json            its metadata; a version exists once this exists
    <name>/sample               sample data (JSON) saved with the template (the playground)

A plain `<name>.docx` file directly under the root is a template too, with one
version (the hash of its bytes). That is how templates arrive from a ConfigMap
mounted read-only (`kubectl create configmap invoices --from-file=invoice.docx`):
no layout to follow. A stored version of the same name takes precedence.

Every file is written to a temporary name in the same directory, flushed and
fsync'ed, then renamed into place, so a crash mid-upload never leaves a half
file visible. The .docx is written before its .json, so an interrupted upload
leaves at most an orphan .docx that no listing shows. Deleting renames the
template's directory away first, so it disappears at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .cache import ByteLRU
from .errors import (
    InvalidTemplateName,
    StoreNotShared,
    StoreUnavailable,
    TemplateNotFound,
    TemplateReadOnly,
    VersionNotFound,
    retry_after,
)

if TYPE_CHECKING:
    from .settings import ServiceSettings

# Letters, digits, '.', '_' and '-', starting with a letter or digit: no path
# separators, no '..', nothing a shell or URL needs to quote.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION = re.compile(r"[0-9a-f]{64}")
# A store that fails is usually a volume being remounted or repaired: worth a retry soon.
_STORE_RETRY = 5.0


@dataclass(frozen=True)
class Listed:
    """A version as a listing names it (the S3 store's manifest keeps these)."""

    id: str
    size: int
    created: str  # RFC 3339, UTC


@dataclass(frozen=True)
class Version(Listed):
    variables: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return asdict(self)

    def listed(self) -> Listed:
        return Listed(self.id, self.size, self.created)


@dataclass(frozen=True)
class StoreHealth:
    """What /readyz reports of the store.

    `ready` False takes the pod out of its Service (the directory store is a
    volume of this pod: an unreadable one is this pod's fault). `detail` says why.
    """

    ready: bool
    detail: str  # "ok" when all is well

    @property
    def ok(self) -> bool:
        return self.ready and self.detail == "ok"


class TemplateStore(Protocol):
    """Templates and their immutable versions (id = SHA-256 of the bytes).

    Problems leave as `errors` kinds: unknown names and versions 404, an
    unreachable store 503 with Retry-After.
    """

    def open(self) -> None:
        """Start-up work (apart from construction); must not fail on a store that is down."""

    def health(self) -> StoreHealth: ...

    def put(self, name: str, data: bytes, variables: dict[str, Any]) -> tuple[Version, bool]:
        """Store a version and make it current; returns it and whether it is new."""
        ...

    def delete(self, name: str, version: str | None = None) -> None: ...

    def names(self) -> list[str]: ...

    def describe(self, name: str) -> dict[str, Any]: ...

    def current(self, name: str) -> str: ...

    def get(self, name: str, version: str | None = None) -> tuple[str, bytes]:
        """The bytes of a version (the current one when `version` is None)."""
        ...

    def put_sample(self, name: str, data: bytes) -> None:
        """Keep sample data (JSON bytes) with a stored template, replacing any earlier."""

    def get_sample(self, name: str) -> bytes | None:
        """The template's sample data, None when none was saved (404 for no template)."""
        ...


def open_store(settings: ServiceSettings, cache_bytes: int) -> TemplateStore:
    """The backend `settings.store_url` names (empty: the directory `store_dir`)."""
    url = settings.store_url.strip()
    if not url:
        return DirectoryStore(settings.store_dir, max_name_length=settings.max_name_length,
                              cache_bytes=cache_bytes, fleet_replicas=settings.fleet_max_replicas)
    if url.startswith("s3://"):
        # Imported here: boto3 costs ~0.3 s of start-up that the directory store never needs.
        from .store_s3 import S3Store

        return S3Store.from_settings(settings, cache_bytes=cache_bytes)
    raise ValueError(f"GENDOC_STORE_URL must be empty or s3://BUCKET[/PREFIX], not {url!r}")


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_version_id(name: str, version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise VersionNotFound(
            "Version ids are the 64 hex digits of the template's SHA-256.",
            template=name, version=version[:80],
        )
    return version


def validate_name(name: str, max_length: int) -> str:
    if not name or len(name) > max_length or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidTemplateName(
            f"Template names are 1-{max_length} characters of letters, digits, '.', '_' "
            "and '-', start with a letter or digit and never contain '..'.",
            name=name[:max_length + 16],
        )
    return name


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DirectoryStore:
    """Templates on a file system; `bytes_cache` keeps hot template bytes in memory."""

    def __init__(self, root: Path, *, max_name_length: int = 128, cache_bytes: int = 32 << 20,
                 fleet_replicas: int = 1):
        self.root = Path(root)
        # More than one pod may serve this fleet: writes to one pod's directory would split it.
        self.fleet_replicas = fleet_replicas
        self.max_name_length = max_name_length
        self._bytes: ByteLRU[bytes] = ByteLRU(cache_bytes, size_of=len)

    def open(self) -> None:
        """Create the root if needed (start-up, apart from construction)."""
        self.root.mkdir(parents=True, exist_ok=True)

    def health(self) -> StoreHealth:
        readable = self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)
        return StoreHealth(ready=readable, detail="ok" if readable else "unreadable")

    def _dir(self, name: str) -> Path:
        return self.root / validate_name(name, self.max_name_length)

    # -- writing ----------------------------------------------------------
    def put(self, name: str, data: bytes, variables: dict[str, Any]) -> tuple[Version, bool]:
        """Store a version; returns it and whether it is new (False: same bytes existed)."""
        directory = self._dir(name)
        self._check_shared()
        vid = content_id(data)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            meta_path = directory / f"{vid}.json"
            created = not meta_path.exists()
            if created:
                atomic_write(directory / f"{vid}.docx", data)
                version = Version(
                    id=vid,
                    size=len(data),
                    created=now_rfc3339(),
                    variables=variables,
                )
                atomic_write(meta_path, json.dumps(version.public()).encode())
            else:
                version = self._read_meta(meta_path)
            atomic_write(directory / "current", vid.encode())
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be written: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None
        self._bytes.put(vid, data)
        return version, created

    def _check_shared(self) -> None:
        if self.fleet_replicas > 1:
            raise StoreNotShared(
                f"This pod's template store is its own directory, and its fleet may run "
                f"{self.fleet_replicas} replicas: a change here would reach this pod only. Set "
                "GENDOC_STORE_URL=s3://BUCKET/PREFIX so that every replica shares one store "
                "(templates from a mounted ConfigMap work as they are, read-only).",
                max_replicas=self.fleet_replicas)

    def delete(self, name: str, version: str | None = None) -> None:
        self._dir(name)
        self._check_shared()
        directory = self._stored_dir(name, "remove it there")
        try:
            if version is None:
                graveyard = self.root / f".deleted-{uuid.uuid4().hex}"
                os.replace(directory, graveyard)
                shutil.rmtree(graveyard, ignore_errors=True)
                return
            self._version_meta(name, version)  # 404 if absent
            (directory / f"{version}.json").unlink()
            (directory / f"{version}.docx").unlink(missing_ok=True)
            remaining = self._versions(directory)
            if not remaining:
                self.delete(name)
            elif (directory / "current").read_text() == version:
                atomic_write(directory / "current", remaining[-1].id.encode())
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be written: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    # -- reading ----------------------------------------------------------
    def names(self) -> list[str]:
        try:
            found = {
                p.name for p in self.root.iterdir()
                if not p.name.startswith(".") and (p / "current").exists()
            }
            found |= {
                p.name[:-5] for p in self.root.glob("*.docx")
                if _NAME.fullmatch(p.name[:-5]) and ".." not in p.name and p.is_file()
            }
            return sorted(found)
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    def describe(self, name: str) -> dict[str, Any]:
        directory = self._dir(name)
        if not (directory / "current").exists() and self._plain(name).is_file():
            version = self._plain_version(name)
            return {"name": name, "latest": version.id, "size": version.size,
                    "created": version.created, "updated": version.created, "variables": None,
                    "source": "file", "versions": [version.public() | {"variables": None}]}
        current = self.current(name)
        versions = self._versions(directory)
        latest = next(v for v in versions if v.id == current)
        return {
            "name": name,
            "latest": current,
            "size": latest.size,
            "created": versions[0].created,
            "updated": latest.created,
            "variables": latest.variables,
            "versions": [v.public() | {"variables": None} for v in reversed(versions)],
        }

    def current(self, name: str) -> str:
        try:
            return (self._dir(name) / "current").read_text().strip()
        except FileNotFoundError:
            if self._plain(name).is_file():
                return self._plain_version(name).id
            raise TemplateNotFound(f"There is no template named {name!r}.", template=name) from None
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    def get(self, name: str, version: str | None = None) -> tuple[str, bytes]:
        """The bytes of a version (the newest when `version` is None)."""
        vid = version or self.current(name)
        if not (self._dir(name) / "current").exists() and self._plain(name).is_file():
            plain = self._plain_version(name)
            if vid != plain.id:
                raise VersionNotFound(f"Template {name!r} has no version {vid}.", template=name,
                                      version=vid[:80])
            return vid, self._plain_bytes(name)
        self._version_meta(name, vid)
        cached = self._bytes.get(vid)
        if cached is not None:
            return vid, cached
        try:
            data = (self._dir(name) / f"{vid}.docx").read_bytes()
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None
        self._bytes.put(vid, data)
        return vid, data

    def put_sample(self, name: str, data: bytes) -> None:
        self._dir(name)
        self._check_shared()
        directory = self._stored_dir(name, "upload it to keep sample data with it")
        try:
            atomic_write(directory / "sample", data)
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be written: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    def get_sample(self, name: str) -> bytes | None:
        if not (self._dir(name) / "current").exists() and self._plain(name).is_file():
            return None  # a mounted file has nowhere to keep sample data
        try:
            return (self._stored_dir(name, "") / "sample").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    def _stored_dir(self, name: str, instead: str) -> Path:
        """The directory of an uploaded template; a plain file has none, and is read-only
        (`instead` tells the caller what to do about it)."""
        directory = self._dir(name)
        if not (directory / "current").exists():
            if self._plain(name).is_file():
                raise TemplateReadOnly(
                    f"Template {name!r} is a file provided with the store (for example from a "
                    f"ConfigMap); {instead}.", template=name)
            raise TemplateNotFound(f"There is no template named {name!r}.", template=name)
        return directory

    def _version_meta(self, name: str, version: str) -> Version:
        directory = self._dir(name)
        check_version_id(name, version)
        meta = directory / f"{version}.json"
        if not meta.exists():
            if not (directory / "current").exists():
                raise TemplateNotFound(f"There is no template named {name!r}.", template=name)
            raise VersionNotFound(
                f"Template {name!r} has no version {version}.", template=name, version=version
            )
        return self._read_meta(meta)

    # -- plain files ------------------------------------------------------
    def _plain(self, name: str) -> Path:
        return self.root / f"{validate_name(name, self.max_name_length)}.docx"

    def _plain_bytes(self, name: str) -> bytes:
        path = self._plain(name)
        try:
            stat = path.stat()
            key = ("file", str(path), stat.st_mtime_ns, stat.st_size)
            data = self._bytes.get(key)
            if data is None:
                data = path.read_bytes()
                self._bytes.put(key, data)
            return data
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None

    def _plain_version(self, name: str) -> Version:
        data = self._plain_bytes(name)
        modified = self._plain(name).stat().st_mtime
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(modified))
        return Version(id=content_id(data), size=len(data), created=created, variables={})

    @staticmethod
    def _read_meta(path: Path) -> Version:
        return Version(**json.loads(path.read_bytes()))

    def _versions(self, directory: Path) -> list[Version]:
        """All versions, oldest first."""
        try:
            metas = [
                self._read_meta(p) for p in directory.glob("*.json") if not p.name.startswith(".")
            ]
        except OSError as exc:
            raise StoreUnavailable(f"The template store cannot be read: {exc.strerror}.",
                                   headers=retry_after(_STORE_RETRY)) from None
        return sorted(metas, key=lambda v: (v.created, v.id))
