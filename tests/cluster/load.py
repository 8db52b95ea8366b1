"""Render requests from the host through a fleet's Service, by clients that retry as told.

Each client thread sends one document at a time, each attempt over a new
connection: kube-proxy picks a pod per connection, so a kept connection would
stay on its first pod and never reach one the operator added. A client keeps
trying its document until it gets the PDF: after a 429 or 503 it waits what
Retry-After says, after a connection that failed (a pod going away) a moment.
Any other answer, or a document still not delivered after DOCUMENT_BUDGET
seconds, is a lost document. The load is bounded in documents and in time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType

import httpx
from cluster.kube import API_KEY

from gendoc.readiness import wait_until

DOCUMENT_BUDGET = 180.0  # seconds one document may take, retries included
CONNECTION_RETRY = 0.5  # seconds to wait after a failed connection
MAX_RETRY_AFTER = 5.0  # a Retry-After longer than this is waited only this long


@dataclass
class Tally:
    """What the clients got: PDFs, every answer by status, failed connections, losses."""

    documents: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # by exception class
    problems: Counter[str] = field(default_factory=Counter)  # other answers: "status type"
    lost: list[str] = field(default_factory=list)  # why each lost document was given up
    seconds: float = 0.0  # from the start to the last client's end

    @property
    def per_minute(self) -> float:
        return self.documents / self.seconds * 60 if self.seconds else 0.0

    @property
    def retries(self) -> int:
        return sum(n for status, n in self.answers.items() if status != 200) \
            + sum(self.errors.values())

    def summary(self) -> str:
        return (f"{self.documents} PDFs in {self.seconds:.1f} s ({self.per_minute:.0f}/min), "
                f"answers {dict(self.answers)} {dict(self.problems)}, "
                f"failed connections {dict(self.errors)}, "
                f"lost {len(self.lost)}")


class Load:
    """`clients` threads rendering `body` at `url` until stopped, `max_documents`
    started or `max_seconds` passed; a context manager that stops them on exit."""

    def __init__(self, url: str, body: str, *, clients: int, max_seconds: float,
                 max_documents: int = 100_000) -> None:
        self.url, self.body, self.clients = url, body, clients
        self.max_seconds, self.max_documents = max_seconds, max_documents
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = 0
        self._threads: list[threading.Thread] = []
        self._t0 = 0.0

    def __enter__(self) -> Load:
        self._t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._client, daemon=True)
                         for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> Tally:
        """Start no more documents, let the ones under way finish, and tally."""
        self._stop.set()
        for t in self._threads:
            t.join(DOCUMENT_BUDGET + 60)
        with self._lock:
            if not self.tally.seconds:
                self.tally.seconds = time.monotonic() - self._t0
        return self.tally

    def run(self) -> Tally:
        """The whole load, to its bound."""
        with self:
            for t in self._threads:
                t.join()
        return self.stop()

    def documents(self) -> int:
        with self._lock:
            return self.tally.documents

    def wait_documents(self, more: int, what: str, timeout: float = 240) -> None:
        """Wait for `more` PDFs than delivered so far (the load is flowing)."""
        goal = self.documents() + more
        wait_until(lambda: self.documents() >= goal or self._stop.is_set(), timeout,
                   interval=0.2, what=what)
        assert self.documents() >= goal, f"the load ended before {what}: {self.tally.summary()}"

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set() or self._started >= self.max_documents \
                    or time.monotonic() - self._t0 >= self.max_seconds:
                return False
            self._started += 1
            return True

    def _client(self) -> None:
        headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each attempt
        with httpx.Client(timeout=60, headers=headers, limits=limits) as http:
            while self._take():
                try:
                    self._document(http)
                except Exception as exc:  # a client that died would lose documents unseen
                    with self._lock:
                        self.tally.lost.append(f"the client failed: {exc!r}")

    def _document(self, http: httpx.Client) -> None:
        give_up = time.monotonic() + DOCUMENT_BUDGET
        while True:
            wait, why = self._attempt(http)
            if wait is None:
                return
            if why or time.monotonic() + wait > give_up:
                with self._lock:
                    self.tally.lost.append(why or "its time ran out")
                return
            time.sleep(wait)

    def _attempt(self, http: httpx.Client) -> tuple[float | None, str]:
        """One try: (None, "") delivered; (seconds to wait, "") retry; (0, why) lost."""
        try:
            r = http.post(self.url, content=self.body)
        except httpx.TransportError as exc:
            with self._lock:
                self.tally.errors[type(exc).__name__] += 1
            return CONNECTION_RETRY, ""
        with self._lock:
            self.tally.answers[r.status_code] += 1
        if r.status_code == 200 and r.content.startswith(b"%PDF-"):
            with self._lock:
                self.tally.documents += 1
            return None, ""
        kind = r.json().get("type", "") if r.headers.get("content-type", "").startswith(
            "application/problem+json") else ""
        with self._lock:
            self.tally.problems[f"{r.status_code} {kind.rsplit('/', 1)[-1]}"] += 1
        told = r.headers.get("retry-after", "")
        if r.status_code in (429, 503) and told.isdigit():
            return min(float(told), MAX_RETRY_AFTER), ""
        return 0, f"{r.status_code} {r.text[:300]}"
