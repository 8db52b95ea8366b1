"""The `pdf` object of a render request: PDF/A, PDF/UA, encryption, watermark, metadata.

Checked here (a 422 listing every mismatch, through payloads.validated) and
sent to the converter as Gotenberg 8's own form fields (`form_fields`), so a
real Gotenberg behind the service gets the same request a Gotenberg client
would send. docs/pdf.md says what each option does on each converter.
"""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Standard = Literal["PDF/A-2b", "PDF/A-3b"]
Permission = Literal["print", "copy", "modify", "annotate", "fill-forms", "assemble"]

# Each permission and the Gotenberg field that grants it (pdfengines FormDataPdfEncrypt).
PERMISSION_FIELDS: dict[str, str] = {
    "print": "allowPrinting",
    "copy": "allowCopying",
    "modify": "allowModifying",
    "annotate": "allowAnnotating",
    "fill-forms": "allowFillingForms",
    "assemble": "allowAssembling",
}
# AES-256 (PDF 2.0's R6) takes passwords of at most 127 UTF-8 bytes.
Secret = Field(default=None, min_length=1, max_length=127)
Text = Field(default=None, max_length=1000)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Password(_Shape):
    user: str | None = Secret  # needed to open the document
    owner: str | None = Secret  # lifts the restrictions; random when absent
    # What a reader may do; absent: everything. Restrictions need a password to hold.
    permissions: list[Permission] | None = None

    @model_validator(mode="after")
    def _some_password(self) -> Self:
        if self.user is None and self.owner is None:
            raise ValueError("give a 'user' or an 'owner' password (or both)")
        return self


class Watermark(_Shape):
    text: str = Field(min_length=1, max_length=200)
    opacity: float = Field(default=0.3, ge=0.0, le=1.0)  # 0 invisible, 1 opaque


class Metadata(_Shape):
    title: str | None = Text
    author: str | None = Text
    subject: str | None = Text
    keywords: list[str] | None = Field(default=None, max_length=50)


class PdfOptions(_Shape):
    standard: Standard | None = None
    ua: bool = False
    password: Password | None = None
    watermark: Watermark | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _compatible(self) -> Self:
        if self.standard and self.password:
            # ISO 19005-2 6.1.3: a PDF/A file carries no Encrypt dictionary.
            raise ValueError("PDF/A cannot be encrypted: drop 'standard' or 'password'")
        return self

    def form_fields(self) -> dict[str, str]:
        """The Gotenberg 8 form fields asking a converter for these options."""
        fields: dict[str, str] = {}
        if self.standard:
            fields["pdfa"] = self.standard
        if self.ua:
            fields["pdfua"] = "true"
        if self.password:
            fields.update(_password_fields(self.password))
        if self.watermark:
            fields["watermarkSource"] = "text"
            fields["watermarkExpression"] = self.watermark.text
            # pdfcpu's description syntax is key:value strings; Gotenberg reads a string map.
            fields["watermarkOptions"] = json.dumps({"opacity": f"{self.watermark.opacity:g}"})
        if self.metadata:
            fields.update(_metadata_fields(self.metadata))
        return fields


def _password_fields(password: Password) -> dict[str, str]:
    fields = {}
    if password.user:
        fields["userPassword"] = password.user
    if password.owner:
        fields["ownerPassword"] = password.owner
    if password.permissions is not None:
        for permission, field in PERMISSION_FIELDS.items():
            fields[field] = "true" if permission in password.permissions else "false"
    return fields


def _metadata_fields(metadata: Metadata) -> dict[str, str]:
    # Gotenberg's metadata keys are exiftool's tag names.
    values: dict[str, object] = {
        "Title": metadata.title, "Author": metadata.author, "Subject": metadata.subject,
        "Keywords": metadata.keywords,
    }
    chosen = {k: v for k, v in values.items() if v is not None}
    return {"metadata": json.dumps(chosen)} if chosen else {}


def needs_per_document_conversion(pdf: PdfOptions | None) -> list[str]:
    """The options of `pdf` that a PDF cut out of a merged conversion would not keep.

    Empty: the items may be converted as one document and split. Otherwise each
    item must be converted alone: PDF/A and PDF/UA hold for a whole file (its XMP
    identification, output intent, structure tree), an encrypted PDF cannot be
    split without its password, and the metadata is the file's own.
    A watermark is drawn on every page, so it survives a split.
    """
    if pdf is None:
        return []
    reasons = []
    if pdf.standard:
        reasons.append("standard")
    if pdf.ua:
        reasons.append("ua")
    if pdf.password:
        reasons.append("password")
    if pdf.metadata:
        reasons.append("metadata")
    return reasons
