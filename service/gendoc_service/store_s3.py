"""The template store, S3-compatible object storage backend: one store for a whole fleet.

Chosen by `GENDOC_STORE_URL=s3://BUCKET/PREFIX`. Layout under the prefix:

    templates/<name>/current              the manifest: the current version id and every
                                          version (id, size, created); the one mutable object
    templates/<name>/versions/<id>.docx   an immutable version; id = sha256 of its bytes
    templates/<name>/versions/<id>.json   its metadata (with the variables it reads)
    templates/<name>/sample               sample data (JSON) saved with it (the playground;
                                          last write wins)

Consistency across replicas, with nothing but S3's conditional writes (no lock
service): a version's objects are written before any manifest names them, and
the manifest only ever changes by compare-and-swap (PUT with `If-Match` on the
ETag that was read, `If-None-Match: *` for the first), retried on 412. So two
uploads racing from two replicas both land in the version list (neither CAS
can overwrite the other's), and "current" never names a version whose objects
are not there yet. A deleted template's manifest becomes an empty one (a
tombstone), never a missing object, so that a concurrent upload's If-Match
still fails instead of silently recreating what the delete is removing.

Each pod keeps, in memory: version bytes by content hash (bounded, `ByteLRU`;
immutable, so never stale) and each template's manifest for
`store_current_ttl` seconds. A render of "current" therefore sees an upload
through another replica within `store_current_ttl`; a render naming a version
the cached manifest lacks reads the manifest afresh, so it sees it at once.
When the object store cannot be reached, renders whose version bytes are in
memory go on (with the last manifest read, however old); the rest get 503
with Retry-After, and /readyz says "degraded" with the reason.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .cache import ByteLRU
from .errors import StoreUnavailable, TemplateNotFound, VersionNotFound, retry_after
from .results import check_key
from .store import (
    Listed,
    StoreHealth,
    Version,
    check_version_id,
    content_id,
    now_rfc3339,
    validate_name,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

    from .settings import ServiceSettings

log = logging.getLogger(__name__)

# An object store that fails is usually restarting or partitioned away for seconds.
_STORE_RETRY = 5.0
# Compare-and-swap rounds before giving up: each lost round means another replica
# changed the same template in between; dozens in a row means something is wrong.
_CAS_ATTEMPTS = 50
# What S3 (and versitygw) answer when a conditional write loses: 412, or 409 when
# two conditional writes to one key overlap in flight.
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class Manifest:
    current: str | None  # None: a tombstone (the template was deleted)
    versions: tuple[Listed, ...] = ()  # oldest first

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        doc = json.loads(raw)
        return cls(doc["current"], tuple(Listed(**v) for v in doc["versions"]))

    def dump(self) -> bytes:
        return json.dumps({"current": self.current,
                           "versions": [vars(v) for v in self.versions]}).encode()

    def find(self, vid: str) -> Listed | None:
        return next((v for v in self.versions if v.id == vid), None)


_TOMBSTONE = Manifest(None)


@dataclass
class _Seen:
    """A manifest as last read: its ETag (None: there was no object) and when."""

    manifest: Manifest | None
    etag: str | None
    at: float = field(default_factory=time.monotonic)


def _unavailable(exc: Exception) -> StoreUnavailable:
    reason = exc.response["Error"].get("Code", "error") if isinstance(exc, ClientError) \
        else type(exc).__name__
    return StoreUnavailable(
        f"The template store (object storage) cannot be reached: {reason}.",
        headers=retry_after(_STORE_RETRY))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _Expected(Exception):
    """An S3 error code the caller answers itself (a missing object, a lost race)."""


@contextmanager
def _store_errors(*, expected: Collection[str]) -> Iterator[None]:
    """boto's errors as the store's 503, except the `expected` codes (raised as _Expected)."""
    try:
        yield
    except ClientError as exc:
        if _code(exc) in expected:
            raise _Expected from None
        raise _unavailable(exc) from None
    except BotoCoreError as exc:
        raise _unavailable(exc) from None


class S3Store:
    """Templates in one bucket under one prefix, shared by every replica."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *,
                 max_name_length: int = 128, cache_bytes: int = 32 << 20,
                 current_ttl: float = 2.0, probe: S3Client | None = None) -> None:
        self.client = client
        # /readyz must answer within a probe's timeout even when the store hangs.
        self.probe = probe or client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.max_name_length = max_name_length
        self.current_ttl = current_ttl
        self._bytes: ByteLRU[bytes] = ByteLRU(cache_bytes, size_of=len)
        # Metadata of versions by content hash (immutable); sized by its JSON.
        self._meta: ByteLRU[Version] = ByteLRU(4 << 20, size_of=lambda v: 1024)
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, cache_bytes: int) -> S3Store:
        bucket, _, prefix = settings.store_url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"GENDOC_STORE_URL names no bucket: {settings.store_url!r}")
        config = Config(
            signature_version="s3v4",
            connect_timeout=settings.store_timeout,
            read_timeout=settings.store_timeout,
            # One retry: a store that is down must turn into a quick 503, not a long wait.
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path" if settings.s3_path_style else "virtual"},
            # Render requests call the store from anyio's thread pool (40 threads).
            max_pool_connections=40,
        )
        # /readyz's check: one attempt, 1 s at most (Kubernetes' probe timeout is 1 s by default).
        probe = config.merge(Config(connect_timeout=1.0, read_timeout=1.0,
                                    retries={"max_attempts": 1, "mode": "standard"}))
        secret = settings.s3_secret_access_key.get_secret_value()
        session = boto3.session.Session()
        clients = [session.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=secret or None,
            config=c,
        ) for c in (config, probe)]
        return cls(clients[0], bucket, prefix, max_name_length=settings.max_name_length,
                   cache_bytes=cache_bytes, current_ttl=settings.store_current_ttl,
                   probe=clients[1])

    # -- keys ------------------------------------------------------------------
    def _base(self, name: str) -> str:
        return f"{self.prefix}templates/{validate_name(name, self.max_name_length)}/"

    def _manifest_key(self, name: str) -> str:
        return self._base(name) + "current"

    def _version_key(self, name: str, vid: str, suffix: str) -> str:
        return f"{self._base(name)}versions/{vid}.{suffix}"

    def _sample_key(self, name: str) -> str:
        return self._base(name) + "sample"

    # -- start-up and health ---------------------------------------------------
    def open(self) -> None:
        """Nothing to create: the bucket is the platform's; a store that is down is not fatal."""
        log.info("template store: s3://%s/%s", self.bucket, self.prefix)

    def health(self) -> StoreHealth:
        try:
            self.probe.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            return StoreHealth(
                ready=True,
                detail=f"degraded: object storage unreachable ({_unavailable(exc).detail}); "
                "renders of versions cached in this pod go on, others get 503",
            )
        return StoreHealth(ready=True, detail="ok")

    # -- raw object access -------------------------------------------------------
    def _get(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag; None when there is no such object."""
        try:
            with _store_errors(expected=_MISSING):
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
                return answer["Body"].read(), answer["ETag"]
        except _Expected:
            return None

    def _exists(self, key: str) -> bool:
        try:
            with _store_errors(expected=_MISSING):
                self.client.head_object(Bucket=self.bucket, Key=key)
                return True
        except _Expected:
            return False

    def _put(self, key: str, data: bytes, content_type: str, *, if_match: str | None = None,
             if_absent: bool = False) -> bool:
        """Write an object; False when its condition (`if_match` an ETag, or `if_absent`)
        did not hold, because another writer got there first."""
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if if_match is not None:
            request["IfMatch"] = if_match
        elif if_absent:
            request["IfNoneMatch"] = "*"
        conditional = if_match is not None or if_absent
        try:
            with _store_errors(expected=_LOST_RACE if conditional else frozenset()):
                self.client.put_object(**request)
                return True
        except _Expected:
            return False

    # -- the manifest --------------------------------------------------------------
    def _read_manifest(self, name: str) -> _Seen:
        found = self._get(self._manifest_key(name))
        try:
            seen = _Seen(None, None) if found is None else \
                _Seen(Manifest.parse(found[0]), found[1])
        except (ValueError, KeyError, TypeError) as exc:
            # Written by something other than gendoc: say so rather than answer 500.
            raise StoreUnavailable(
                f"The manifest of template {name!r} in the object store is unreadable ({exc}).",
                headers=retry_after(_STORE_RETRY)) from None
        with self._lock:
            self._seen[name] = seen
        return seen

    def _manifest(self, name: str, *, fresh: bool = False) -> Manifest:
        """The template's manifest: from memory when younger than the TTL; the last one
        read, however old, when the store cannot be reached; `fresh`: from the store."""
        with self._lock:
            seen = self._seen.get(name)
        if fresh:
            manifest = self._read_manifest(name).manifest
        elif seen is not None and time.monotonic() - seen.at < self.current_ttl:
            manifest = seen.manifest
        else:
            try:
                manifest = self._read_manifest(name).manifest
            except StoreUnavailable:
                if seen is None or seen.manifest is None:
                    raise
                log.warning("object store unreachable; using the manifest of %r read %.0f s ago",
                            name, time.monotonic() - seen.at)
                manifest = seen.manifest
        if manifest is None or manifest.current is None:
            raise TemplateNotFound(f"There is no template named {name!r}.", template=name)
        return manifest

    def _update(self, name: str, change: Callable[[Manifest | None], Manifest]) -> Manifest:
        """Compare-and-swap the manifest: read it, apply `change`, write it if nobody
        wrote it in between, else start again. `change` may raise to give up."""
        key = self._manifest_key(name)
        for _ in range(_CAS_ATTEMPTS):
            seen = self._read_manifest(name)
            new = change(seen.manifest)
            if new == seen.manifest:
                return new
            if self._put(key, new.dump(), "application/json", if_match=seen.etag,
                         if_absent=seen.etag is None):
                with self._lock:
                    self._seen.pop(name, None)  # the new ETag is unknown until read
                return new
            log.info("manifest of %r changed under us; reading it again", name)
        raise StoreUnavailable(
            f"Template {name!r} is being changed by too many writers at once; try again.",
            headers=retry_after(1.0))

    # -- writing ---------------------------------------------------------------------
    def put(self, name: str, data: bytes, variables: dict[str, Any]) -> tuple[Version, bool]:
        vid = content_id(data)
        version = Version(id=vid, size=len(data), created=now_rfc3339(), variables=variables)
        # The version's objects first: no manifest may name a version that is not there.
        self._write_version(name, version, data)
        added = False

        def make_current(manifest: Manifest | None) -> Manifest:
            nonlocal added
            versions = manifest.versions if manifest is not None else ()
            if next((v for v in versions if v.id == vid), None) is None:
                added = True
                versions += (version.listed(),)
            else:
                added = False
            return Manifest(vid, versions)

        manifest = self._update(name, make_current)
        # A delete of these same bytes that raced this upload may have removed the
        # objects after we wrote them and before our manifest named them: write again.
        if not all(self._exists(self._version_key(name, vid, s)) for s in ("docx", "json")):
            self._write_version(name, version, data)
        entry = manifest.find(vid)
        assert entry is not None
        self._bytes.put(vid, data)
        return Version(vid, entry.size, entry.created, variables), added

    def _write_version(self, name: str, version: Version, data: bytes) -> None:
        # Unconditional: the key is the hash of the bytes, so a rewrite is the same object.
        self._put(self._version_key(name, version.id, "docx"), data,
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        self._put(self._version_key(name, version.id, "json"),
                  json.dumps(version.public()).encode(), "application/json")

    def delete(self, name: str, version: str | None = None) -> None:
        before: Manifest | None = None

        def remove(manifest: Manifest | None) -> Manifest:
            nonlocal before
            before = manifest
            if manifest is None or manifest.current is None:
                raise TemplateNotFound(f"There is no template named {name!r}.", template=name)
            if version is None:
                return _TOMBSTONE
            if manifest.find(check_version_id(name, version)) is None:
                raise VersionNotFound(f"Template {name!r} has no version {version}.",
                                      template=name, version=version)
            rest = tuple(v for v in manifest.versions if v.id != version)
            if not rest:
                return _TOMBSTONE
            current = manifest.current if manifest.current != version else \
                max(rest, key=lambda v: (v.created, v.id)).id
            return Manifest(current, rest)

        after = self._update(name, remove)
        assert before is not None
        gone = [v.id for v in before.versions if after.find(v.id) is None]
        keys = [self._version_key(name, vid, s) for vid in gone for s in ("docx", "json")]
        if after.current is None:
            keys.append(self._sample_key(name))
        try:
            # Objects only after the manifest stopped naming them (S3 allows 1,000 a call).
            for i in range(0, len(keys), 1000):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            # The template is already gone for every reader; only unreachable bytes remain.
            log.warning("deleted %r but could not remove its objects: %s", name, exc)

    def put_sample(self, name: str, data: bytes) -> None:
        self._manifest(name, fresh=True)  # 404 for no template
        self._put(self._sample_key(name), data, "application/json")

    def get_sample(self, name: str) -> bytes | None:
        self._manifest(name)
        found = self._get(self._sample_key(name))
        return None if found is None else found[0]

    # -- reading -----------------------------------------------------------------------
    def names(self) -> list[str]:
        found: list[str] = []
        root = f"{self.prefix}templates/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    found.append(common.get("Prefix", "")[len(root):].rstrip("/"))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from None
        listed = []
        for name in sorted(found):
            try:
                self._manifest(name)
            except TemplateNotFound:
                continue  # a deleted template's tombstone
            listed.append(name)
        return listed

    def current(self, name: str) -> str:
        current = self._manifest(name).current
        assert current is not None
        return current

    def describe(self, name: str) -> dict[str, Any]:
        manifest = self._manifest(name)
        assert manifest.current is not None
        latest = manifest.find(manifest.current)
        assert latest is not None
        versions = manifest.versions
        return {
            "name": name,
            "latest": latest.id,
            "size": latest.size,
            "created": versions[0].created,
            "updated": latest.created,
            "variables": self._version_meta(name, latest.id).variables,
            "versions": [vars(v) | {"variables": None} for v in reversed(versions)],
        }

    def get(self, name: str, version: str | None = None) -> tuple[str, bytes]:
        if version is None:
            vid = self.current(name)
        else:
            vid = check_version_id(name, version)
            try:
                listed = self._manifest(name).find(vid) is not None
            except TemplateNotFound:
                listed = False
            # Perhaps uploaded through another replica since: ask the store.
            if not listed and self._manifest(name, fresh=True).find(vid) is None:
                raise VersionNotFound(f"Template {name!r} has no version {vid}.",
                                          template=name, version=vid)
        cached = self._bytes.get(vid)
        if cached is not None:
            return vid, cached
        found = self._get(self._version_key(name, vid, "docx"))
        if found is None:
            raise VersionNotFound(f"Template {name!r} has no version {vid}.",
                                  template=name, version=vid)
        self._bytes.put(vid, found[0])
        return vid, found[0]

    def _version_meta(self, name: str, vid: str) -> Version:
        cached = self._meta.get(vid)
        if cached is not None:
            return cached
        found = self._get(self._version_key(name, vid, "json"))
        if found is None:
            raise VersionNotFound(f"Template {name!r} has no version {vid}.",
                                  template=name, version=vid)
        meta = Version(**json.loads(found[0]))
        self._meta.put(vid, meta, size=len(found[0]))
        return meta


class S3Results:
    """Rendered documents a service keeps (the async jobs' results), in the template
    store's bucket under their own prefix, fetched by clients through presigned GET URLs
    (`results.ResultStore`; keys are `results.check_key`'s).

    Retention: the service deletes a job's results when its record expires
    (`delete_job`); `sweep` deletes every result older than `retention` seconds by
    its LastModified time, and a bucket lifecycle rule on `<prefix>results/` does
    the same without the service, where the platform allows one.
    """

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *,
                 retention: float = 24 * 3600.0) -> None:
        self.client = client
        self.bucket = bucket
        self.root = (prefix.strip("/") + "/" if prefix.strip("/") else "") + "results/"
        self.retention = retention

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> S3Results:
        store = S3Store.from_settings(settings, cache_bytes=0)
        return cls(store.client, store.bucket, store.prefix, retention=settings.job_retention)

    def _key(self, result_id: str) -> str:
        if not result_id or result_id.startswith(".") or ".." in result_id:
            raise ValueError(f"not a result id: {result_id!r}")
        return self.root + check_key(result_id)

    def put(self, result_id: str, data: bytes, media_type: str, filename: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(result_id), Body=data, ContentType=media_type,
                ContentDisposition=f'attachment; filename="{filename}"')
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from None

    def put_many(self, entries: list[tuple[str, bytes, str, str]]) -> None:
        for result_id, data, media_type, filename in entries:
            self.put(result_id, data, media_type, filename)

    def put_file(self, result_id: str, path: Path, media_type: str, filename: str) -> None:
        """Upload a file (in parts when large: boto's managed transfer), then remove it."""
        try:
            self.client.upload_file(str(path), self.bucket, self._key(result_id), ExtraArgs={
                "ContentType": media_type,
                "ContentDisposition": f'attachment; filename="{filename}"'})
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from None
        finally:
            path.unlink(missing_ok=True)

    def get(self, result_id: str) -> bytes | None:
        try:
            with _store_errors(expected=_MISSING):
                return self.client.get_object(Bucket=self.bucket,
                                              Key=self._key(result_id))["Body"].read()
        except _Expected:
            return None

    def local_path(self, result_id: str) -> Path | None:
        return None

    def scratch(self) -> Path:
        return Path(tempfile.gettempdir())

    def url(self, result_id: str, expires_in: int = 3600) -> str:
        """A URL that GETs the result without credentials until `expires_in` seconds pass
        (signed here, no call to the store; SigV4 allows at most 7 days)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(result_id)},
            ExpiresIn=min(expires_in, 7 * 24 * 3600))

    def delete_job(self, job_id: str) -> None:
        self._delete(self._keys(self._key(job_id) + "/", None))

    def _keys(self, prefix: str, cutoff: float | None) -> list[str]:
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            keys += [o["Key"] for o in page.get("Contents", [])
                     if cutoff is None or o["LastModified"].timestamp() < cutoff]
        return keys

    def _delete(self, keys: list[str]) -> None:
        try:
            for i in range(0, len(keys), 1000):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from None

    def sweep(self, now: float | None = None) -> int:
        """Delete results older than the retention; returns how many went."""
        cutoff = (time.time() if now is None else now) - self.retention
        try:
            old = self._keys(self.root, cutoff)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc) from None
        self._delete(old)
        return len(old)
