"""The service's one settings object: environment `GENDOC_*`, CLI flags override."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .formatting import canonical_locale, check_timezone

MiB = 1024 * 1024


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENDOC_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a pod).")
    port: int = Field(8080, description="HTTP port.")
    store_dir: Path = Field(
        Path(".gendoc/templates"),
        description="Directory backend of the template store; a mounted volume in Kubernetes.",
    )
    # The template store: a directory of this pod (above), or S3-compatible object
    # storage that every replica of a fleet shares (service/gendoc_service/store_s3.py).
    store_url: str = Field(
        "", description="Empty: the directory store_dir. s3://BUCKET/PREFIX: S3-compatible "
        "object storage (endpoint, region, credentials and addressing below).",
    )
    s3_endpoint_url: str = Field(
        "", description="S3 endpoint, e.g. http://minio.storage:9000; empty: AWS for s3_region."
    )
    s3_region: str = Field("us-east-1", description="Region the requests are signed for.")
    s3_access_key_id: str = Field(
        "", description="Access key; empty: boto3's own chain (AWS_* variables, web identity, "
        "instance role). In Kubernetes both come from a Secret.",
    )
    s3_secret_access_key: SecretStr = Field(
        SecretStr(""), description="Secret key (never logged)."
    )
    s3_path_style: bool = Field(
        False, description="Path-style addressing (http://endpoint/bucket/key), which most "
        "S3-compatible servers need; AWS itself prefers virtual-hosted style (False).",
    )
    fleet_max_replicas: int = Field(
        1, description="The most replicas this pod's fleet may run (the operator sets it "
        "from spec.maxReplicas). Above 1 with the directory store, uploads and deletes are "
        "refused (409 store-not-shared): each pod's directory is its own, so a template "
        "uploaded through one pod would be missing, or older, on the others.",
    )
    store_current_ttl: float = Field(
        2.0, description="How long a pod reuses what it last read of a template's current "
        "version before asking the object store again, seconds: the bound on how long a "
        "render of 'current' may still use the previous version after an upload through "
        "another replica (a render naming a version sees it at once). 2 s costs one small "
        "GET per hot template per 2 s, nothing next to a render.",
    )
    store_timeout: float = Field(
        3.0, description="Longest one object-store call may take to connect or to answer, "
        "seconds; beyond it a render of an uncached version gets 503 + Retry-After.",
    )
    converter_url: str = Field(
        "http://127.0.0.1:3000",
        description="Gotenberg-compatible converter (our sidecar or a real Gotenberg); "
        "empty disables PDF output.",
    )

    # Limits. A one-page invoice template is ~15 KiB and its data ~2 KiB; the
    # defaults leave two orders of magnitude of room while keeping one request's
    # memory small enough that the queue bound is also a memory bound.
    max_template_bytes: int = Field(10 * MiB, description="Largest template upload, bytes.")
    max_data_bytes: int = Field(1 * MiB, description="Largest JSON data document, bytes.")
    max_body_bytes: int = Field(
        12 * MiB, description="Largest request body of any kind (413 beyond), bytes."
    )
    max_batch_items: int = Field(500, description="Most data sets in one batch request.")
    # A PDF batch converts its items as merged documents and splits the PDFs
    # (merging.py): one conversion pays LibreOffice's per-document overhead
    # (≈ 90 ms for a one-page invoice) once for many items (≈ 12 ms each).
    batch_merge: bool = Field(
        True, description="Convert a PDF batch's items as merged documents (false: one "
        "conversion per item).")
    batch_merge_pages: int = Field(
        50, ge=1, description="Estimated pages of one merged document: bounds one "
        "conversion's time and LibreOffice's memory (a 50-page document converts in about "
        "a second and holds tens of MB more than a one-page one).")
    batch_merge_items: int = Field(
        50, ge=1, description="Most items in one merged document; a batch is also cut so "
        "that every render worker gets a share.")
    max_name_length: int = Field(128, description="Longest template name, characters.")

    # docx packages are zip files; these bound what a hostile one can cost
    # before anything decompresses it (checked from the zip directory alone).
    max_zip_entries: int = Field(1000, description="Most entries in a .docx package.")
    max_unzipped_bytes: int = Field(
        100 * MiB, description="Largest declared uncompressed size of a .docx package, bytes."
    )
    max_compression_ratio: float = Field(
        200.0, description="Highest uncompressed/compressed ratio of any package entry."
    )

    # Locale filters (format_currency, format_date, ...) use these unless a
    # request names its own "locale" / "timezone".
    default_locale: Annotated[str, AfterValidator(canonical_locale)] = Field(
        "en_US", description="Locale of the locale filters when a request names none "
        "(a Babel identifier such as de_DE; en-US is read as en_US).",
    )
    default_timezone: Annotated[str, AfterValidator(check_timezone)] = Field(
        "UTC", description="IANA time zone that format_datetime and format_time show times "
        "in when a request names none (e.g. Europe/Berlin).",
    )

    max_include_depth: int = Field(
        4, description="Deepest chain of sub-templates (include('NAME')) below a template; "
        "beyond it 422 template-include-error. A letter including a letterhead including an "
        "address block is 2; 4 leaves room while bounding what one render fetches and merges.",
    )

    # The playground's preview (POST /v1/preview): page images of the rendered PDF.
    preview_max_pages: int = Field(
        20, description="Most pages a preview shows as images (the count says how many more).",
    )
    preview_dpi: int = Field(
        60, description="Resolution of preview page images, dots per inch: an A4 page at 60 "
        "is 496x702 pixels, readable on screen at about 40 KiB of PNG.",
    )

    cache_bytes: int = Field(
        64 * MiB,
        description="Bound of the in-memory caches (template bytes, compiled Jinja parts), bytes.",
    )

    # Rendering runs in worker processes (docxtpl is CPU-bound Python; the GIL
    # would hold it to one core and stall the event loop).
    render_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        description="Render worker processes (default: CPU count); 0 renders in threads.",
    )
    render_timeout: float = Field(
        10.0, description="Longest one render may take before its worker is replaced, seconds."
    )
    render_memory_mb: int = Field(
        1024, description="Address-space limit of a render worker, MiB (0: none)."
    )
    render_max_tasks: int = Field(
        2000, description="Renders after which a worker is replaced (bounds slow leaks)."
    )

    # Admission: how many render requests run at once and how many may wait.
    concurrency: int = Field(
        default_factory=lambda: 2 * (os.cpu_count() or 1),
        description="Render requests served at once (rendering + conversion in flight). "
        "Default: twice the CPU count, i.e. twice the converter's default pool, enough to "
        "keep every LibreOffice instance busy while the next documents render; more would "
        "only move the waiting into the converter's queue, where no deadline is checked.",
    )
    queue_capacity: int = Field(
        64, description="Requests that may wait for a slot; beyond it 429 + Retry-After."
    )
    max_queue_wait: float = Field(
        1.2,
        description="Longest a new request should wait for a slot while the queue grows "
        "(arrivals outpacing departures), seconds, predicted from the queue's measured drain "
        "rate; beyond it 429 + Retry-After at once (a queue bounded in time, not only in "
        "count). Under overload a slot adds ~0.4 s, so 1.2 s keeps admitted requests' p95 "
        "under 2 s (gendoc bench, overload run). A stable queue (a fixed number of clients "
        "each awaiting its answer) is bounded by queue_capacity only.",
    )

    # Per-client rate limit on the render routes (token bucket keyed by API key,
    # else client address). Off by default: inside a cluster many callers share
    # few addresses, so the right numbers depend on the installation.
    rate_limit_per_minute: float = Field(
        0.0, description="Sustained renders per minute per client; 0 disables the limit."
    )
    rate_limit_burst: int = Field(
        60, description="Renders a client may send at once before the rate applies."
    )

    # Optional API keys (off when empty). In Kubernetes, mount a Secret and point
    # api_keys_file at it: one key per line; the file is read at start-up.
    api_keys: list[str] = Field(
        default_factory=list, description="Accepted API keys (JSON list in GENDOC_API_KEYS)."
    )
    api_keys_file: Path | None = Field(None, description="File with one API key per line.")

    # Slow uploads hold a connection and a parser; bound the time to send a body.
    body_timeout: float = Field(
        30.0, description="Longest time to receive a request body, seconds."
    )

    # Deadlines: a request that cannot finish within this gets 503 + Retry-After.
    request_timeout: float = Field(30.0, description="Default per-request deadline, seconds.")
    converter_timeout: float = Field(
        30.0, description="Longest a single conversion may take at the converter, seconds "
        "(also bounded by the request's deadline, whichever comes first).",
    )
    converter_connect_timeout: float = Field(
        2.0, description="Longest to open a connection to the converter or answer its health "
        "check, seconds: the sidecar is on localhost, so more means it is not there.",
    )
    converter_max_connections: int = Field(
        64, description="Connections kept to the converter. Each admitted request holds at most "
        "one (a batch four), so 64 covers the default concurrency with room to spare.",
    )

    # Kubernetes grants terminationGracePeriodSeconds between SIGTERM and SIGKILL
    # (the operator sets the request timeout + 15 s). The service stops accepting
    # at once and lets admitted requests finish for this long: a request admitted
    # just before SIGTERM may need its whole deadline, hence the default.
    shutdown_timeout: float | None = Field(
        None, description="Longest to let admitted requests finish after SIGTERM, seconds "
        "(default: request_timeout).",
    )

    # Idempotency-Key on POST /v1/render, /v1/render/batch and /v1/jobs (idempotency.py).
    idempotency_retention: float = Field(
        24 * 3600.0, description="Seconds an answer is kept for retries with the same "
        "Idempotency-Key (the draft's retention); a day covers a client's retries across "
        "an outage of hours.",
    )
    idempotency_max_bytes: int = Field(
        8 * MiB, description="Largest answer kept for replay, bytes. A larger one (a big "
        "batch zip) is not kept: a retry with the same request is rendered again.",
    )

    # Signed webhooks of jobs (Standard Webhooks; webhooks.py, outbox.py).
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="The signing secret, whsec_ + base64 of 24 to 64 random "
        "bytes (receivers verify with the same). Empty: jobs asking for a webhook get 422.",
    )
    webhook_allowed_hosts: str = Field(
        "", description="Comma-separated host, host:port or CIDR entries a webhook may "
        "target; nothing else is called. Private, loopback, link-local and metadata "
        "addresses are refused unless an entry allows that address (an IP literal, or a "
        "CIDR such as the cluster's service network; metadata addresses only by literal).",
    )
    webhook_max_attempts: int = Field(
        10, description="Attempts per event before it is given up (recorded on the job).",
    )
    webhook_retry_base: float = Field(
        10.0, description="Seconds before the first retry; each next wait is 4x longer, "
        "half of it random (jitter): 10 s, 40 s, 160 s, 11 min, 43 min, 2.8 h, then the cap.",
    )
    webhook_retry_cap: float = Field(
        4 * 3600.0, description="Longest wait between two attempts, seconds: with the "
        "defaults ten attempts span about 15 hours, a receiver's night-long outage.",
    )
    webhook_timeout: float = Field(
        10.0, description="Longest one attempt may take, seconds (connecting: at most 5 s); "
        "Standard Webhooks asks receivers to answer fast and work afterwards.",
    )
    webhook_poll_interval: float = Field(
        5.0, description="How often a sender looks for deliveries due that another replica "
        "queued or left behind, seconds (its own wake it at once).",
    )

    def idempotency_lease(self) -> float:
        """How long a claimed key stays claimed if its replica dies mid-request: the
        longest a request may run (its deadline, its body's upload) and some slack."""
        return self.request_timeout + self.body_timeout + 30.0
    # Async jobs (POST /v1/jobs): the queue, the workers in this process, the results.
    queue_url: str = Field(
        "", description="Empty: the embedded queue, SQLite on this machine's disk under "
        "jobs_dir (one machine; what `gendoc up` uses). redis://HOST:PORT/DB or "
        "unix:///PATH: Redis Streams shared by every replica of a fleet.",
    )
    jobs_dir: Path | None = Field(
        None, description="Directory of the embedded queue and of the job results when the "
        "store is a directory (default: STORE_DIR/.jobs).",
    )
    max_job_items: int = Field(50_000, description="Most items in one job.")
    max_job_bytes: int = Field(
        64 * MiB, description="Largest POST /v1/jobs body, bytes: 10,000 items of ~2 KiB of "
        "data with room to spare (other routes keep max_body_bytes).",
    )
    job_slots: int | None = Field(
        None, description="Admission slots job workers of this process may hold at once "
        "(default: half of concurrency, at least 1). They take a slot only while no "
        "synchronous request waits, so renders keep their latency and jobs fill idle time.",
    )
    job_chunk_items: int = Field(
        100, description="Items a job worker claims and renders together in one slot: two "
        "merged documents of GENDOC_BATCH_MERGE_ITEMS (50) that render and convert side by "
        "side, as a batch's do, so that LibreOffice pays its per-document time once per 50 "
        "items (a chunk of 50 was cut into two documents of 25, one per render worker, and "
        "the job reached 0.90x the documents/min of synchronous 100-item batches, gendoc "
        "bench jobs); few enough that a slot frees within seconds.",
    )
    job_visibility_timeout: float = Field(
        120.0, description="Seconds a claimed item stays invisible to other workers; a "
        "worker that died loses its items for this long, then another takes them back. "
        "Should exceed a chunk's deadline (request_timeout), or a slow chunk's items are "
        "delivered twice (harmless: the first outcome counts, but the work is done twice).",
    )
    job_max_attempts: int = Field(
        8, description="Deliveries of one item before it goes to the dead-letter list and "
        "counts as failed (retries wait 2, 4, 8, ... s, at most the visibility timeout).",
    )
    job_poll_interval: float = Field(
        0.5, description="Seconds an idle job worker waits before asking the queue again.",
    )
    job_retention: float = Field(
        24 * 3600.0, description="Seconds a finished job and its results are kept; then "
        "both are deleted.",
    )

    def jobs_path(self) -> Path:
        return self.jobs_dir or self.store_dir / ".jobs"

    def job_slot_count(self) -> int:
        return self.job_slots if self.job_slots is not None else max(1, self.concurrency // 2)

    def drain_seconds(self) -> float:
        """The graceful-shutdown time uvicorn gives open requests."""
        return self.request_timeout if self.shutdown_timeout is None else self.shutdown_timeout

    def accepted_api_keys(self) -> list[str]:
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            keys += [k.strip() for k in self.api_keys_file.read_text().splitlines() if k.strip()]
        return keys

    log_level: str = Field("info", description="Log level.")
    log_format: str = Field("text", description="'text' or 'json' (one JSON object per line).")
