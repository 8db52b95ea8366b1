"""Client of the PDF converter. It speaks only Gotenberg's API, so a real Gotenberg works too."""

from __future__ import annotations

import logging

import httpx

from gendoc import deadline as deadlines
from gendoc.deadline import Deadline
from gendoc.logs import request_id

from .errors import ConversionFailed, ConverterUnavailable, DeadlineExceeded, retry_after

log = logging.getLogger(__name__)

CONVERT_PATH = "/forms/libreoffice/convert"
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class ConverterClient:
    """One pooled HTTP client for the process (keep-alive to the sidecar on localhost).

    `timeout` bounds one conversion whatever the request's deadline (the
    converter_timeout setting); `connect_timeout` bounds opening a connection.
    """

    def __init__(self, base_url: str, *, max_connections: int = 64, timeout: float = 30.0,
                 connect_timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def healthy(self) -> bool:
        try:
            response = await self._http.get("/health", timeout=self.connect_timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def to_pdf(self, docx: bytes, *, deadline: Deadline, filename: str = "document.docx",
                     fields: dict[str, str] | None = None) -> bytes:
        """Convert one document before `deadline` (the request's)."""
        return await self.convert([(filename, docx)], deadline=deadline, fields=fields)

    async def convert(self, documents: list[tuple[str, bytes]], *, deadline: Deadline,
                      merge: bool = False, fields: dict[str, str] | None = None) -> bytes:
        """Convert documents: one PDF for one document or with `merge`, else a zip;
        `fields`: more of Gotenberg's form fields."""
        if deadline.expired:
            raise DeadlineExceeded("No time was left for the PDF conversion.",
                                   headers=retry_after(1))
        # The converter stops working on a request nobody waits for any more; a
        # real Gotenberg ignores the header (its own limit is --api-timeout).
        bound = deadline.within(self.timeout)
        headers = {"Gotenberg-Trace": request_id.get(), deadlines.HEADER: bound.header_value()}
        files = [("files", (name, data, _DOCX)) for name, data in documents]
        left = bound.remaining()
        try:
            response = await self._http.post(
                CONVERT_PATH, files=files, headers=headers,
                data={**({"merge": "true"} if merge else {}), **(fields or {})} or None,
                timeout=httpx.Timeout(left, connect=min(self.connect_timeout, left)),
            )
        except httpx.TimeoutException:
            raise DeadlineExceeded(
                "The PDF conversion did not finish in time (the request's deadline or "
                "the converter timeout).",
                headers=retry_after(2),
            ) from None
        except httpx.HTTPError as exc:
            log.warning("converter unreachable at %s: %s", self.base_url, exc)
            raise ConverterUnavailable(
                "The PDF converter cannot be reached.", headers=retry_after(2)
            ) from None
        if response.status_code == 200:
            return response.content
        text = response.text[:500]
        if response.status_code == 400:
            raise ConversionFailed(f"The converter could not read the document: {text}")
        if response.status_code in (429, 503):
            # The converter is saturated or restarting: ours to absorb, the
            # client's to retry (its request was valid).
            wait = response.headers.get("Retry-After", "1")
            raise ConverterUnavailable(
                f"The PDF converter is busy ({response.status_code}).",
                headers={"Retry-After": wait if wait.isdigit() else "1"},
            )
        log.error("converter answered %s: %s", response.status_code, text)
        raise ConverterUnavailable(
            f"The PDF converter failed ({response.status_code}).", headers=retry_after(2)
        )
