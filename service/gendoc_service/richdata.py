"""Rich values in JSON data: images, rich text and listings, as docxtpl objects.

JSON cannot carry docxtpl's Python objects, so an object with one of these
reserved keys stands for one (anything else is plain data):

  {"$image": {"data": "<base64 PNG/JPEG/GIF/BMP>", "width_mm": 30, "height_mm": 20}}
      -> InlineImage (give width, height, both or neither)
  {"$richtext": "text"} or {"$richtext": [{"text": "...", "bold": true, "italic": true,
      "underline": true|"double"|..., "strike": true, "color": "FF0000", "highlight": "yellow",
      "size_pt": 12, "font": "Arial", "style": "CharStyle", "superscript": true,
      "subscript": true, "url": "https://..."}, ...]}
      -> RichText (use {{r var }} in the template for a run of its own)
  {"$listing": "line\\nline"}  -> Listing (keeps newlines, tabs, page breaks)
  {"$qrcode": {"data": "text or URL", "size_mm": 30, "error": "L"|"M"|"Q"|"H"}}
      -> a square QR code image (segno; error correction M by default)
  {"$barcode": {"data": "ABC-123", "type": "code128"|"ean13", "width_mm": 50,
      "height_mm": 15, "text": true}}
      -> a barcode image (python-barcode); EAN-13 takes 12 digits, or 13 with a
         correct check digit; without height_mm the height follows the width
  {"$html": "<p>Safe <b>subset</b></p>"} / {"$markdown": "# Title\n\n- item"}
      -> paragraphs, lists and tables of the document (markup.py; use {{p var }})
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import barcode
import segno
from barcode.errors import BarcodeError
from barcode.writer import ImageWriter
from docx.shared import Mm
from docxtpl import InlineImage, Listing, RichText

from . import markup
from .errors import InvalidRequest

MARKERS = ("$image", "$richtext", "$listing", "$qrcode", "$barcode", "$html", "$markdown")
_RUN_KEYS = {"text", "bold", "italic", "underline", "strike", "color", "highlight", "size_pt",
             "font", "style", "superscript", "subscript", "url"}
_URL_SCHEMES = ("http://", "https://", "mailto:")


def has_markers(value: Any) -> bool:
    """Cheap pre-check so plain data is not copied."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in MARKERS:
            return True
        return any(has_markers(v) for v in value.values())
    if isinstance(value, list):
        return any(has_markers(v) for v in value)
    return False


def materialize(tpl: Any, value: Any, path: str = "data") -> Any:
    """A copy of `value` with every marker object replaced by its docxtpl object."""
    if isinstance(value, dict):
        if len(value) == 1 and (key := next(iter(value))) in MARKERS:
            return _BUILDERS[key](tpl, value[key], path)
        return {k: materialize(tpl, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(tpl, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _bad(path: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {why}", errors=[{"field": path, "message": why}])


def _image(tpl: Any, spec: Any, path: str) -> InlineImage:
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
        raise _bad(path, '"$image" needs {"data": "<base64>", "width_mm"?, "height_mm"?}')
    try:
        raw = base64.b64decode(spec["data"], validate=True)
    except (binascii.Error, ValueError):
        raise _bad(path, "the image data is not valid base64") from None
    return _CheckedImage(tpl, io.BytesIO(raw), path=path, **_sizes(spec, path))


def _sizes(spec: dict[str, Any], path: str, **defaults: float) -> dict[str, Mm]:
    """InlineImage's width/height from `width_mm`/`height_mm` (or `size_mm` for both)."""
    sizes = {}
    for key, arg in (("width_mm", "width"), ("height_mm", "height"), ("size_mm", "size")):
        value = spec.get(key, defaults.get(arg))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= 2000:
            raise _bad(path, f"{key} must be a number of millimetres between 0 and 2000")
        sizes[arg] = Mm(value)
    if "size" in sizes:
        side = sizes.pop("size")
        sizes = {"width": side, "height": side}
    return sizes


def _png(spec: Any, path: str, marker: str, keys: set[str], usage: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), str) \
            or not spec["data"] or set(spec) - keys:
        raise _bad(path, f'"{marker}" needs {usage}')
    return spec


_QR_KEYS = {"data", "size_mm", "error"}
_QR_USAGE = '{"data": "text", "size_mm"?: 30, "error"?: "L"|"M"|"Q"|"H"}'


def _qrcode(tpl: Any, spec: Any, path: str) -> InlineImage:
    spec = _png(spec, path, "$qrcode", _QR_KEYS, _QR_USAGE)
    error = spec.get("error", "M")
    if error not in ("L", "M", "Q", "H"):
        raise _bad(path, "error must be one of L, M, Q, H (QR error correction levels)")
    try:
        code = segno.make(spec["data"], error=error, micro=False)
    except segno.DataOverflowError:
        raise _bad(path, "the data is too long for a QR code") from None
    out = io.BytesIO()
    # 10 pixels a module and the standard quiet zone of 4 modules: sharp at any
    # printed size, since Word scales the image to size_mm.
    code.save(out, kind="png", scale=10, border=4)
    out.seek(0)
    return _CheckedImage(tpl, out, path=path, **_sizes(spec, path, size=30))


_BARCODE_KEYS = {"data", "type", "width_mm", "height_mm", "text"}
_BARCODE_USAGE = ('{"data": "...", "type"?: "code128"|"ean13", "width_mm"?, "height_mm"?, '
                  '"text"?: true}')
# Default widths: Code 128 has none; EAN-13's nominal symbol is 37.29 mm wide.
_BARCODE_WIDTH_MM = {"code128": 50.0, "ean13": 37.29}
_MAX_BARCODE_CHARACTERS = 80  # beyond this a linear barcode is too dense to scan


def _barcode(tpl: Any, spec: Any, path: str) -> InlineImage:
    spec = _png(spec, path, "$barcode", _BARCODE_KEYS, _BARCODE_USAGE)
    kind, data = spec.get("type", "code128"), spec["data"]
    if kind not in _BARCODE_WIDTH_MM:
        raise _bad(path, f"type must be one of {sorted(_BARCODE_WIDTH_MM)}")
    if not isinstance(spec.get("text", True), bool):
        raise _bad(path, "text must be true or false (the human-readable line)")
    if len(data) > _MAX_BARCODE_CHARACTERS:
        raise _bad(path, f"a barcode holds at most {_MAX_BARCODE_CHARACTERS} characters")
    try:
        code = barcode.get_barcode_class(kind)(data, writer=ImageWriter())
    except (BarcodeError, ValueError) as exc:
        raise _bad(path, f"not a valid {kind} value: {exc}") from None
    if kind == "ean13" and len(data) == 13 and code.get_fullcode() != data:
        raise _bad(path, f"the EAN-13 check digit of {data} should be {code.get_fullcode()[-1]}")
    out = io.BytesIO()
    try:
        code.write(out, options={"write_text": spec.get("text", True)})
    except (BarcodeError, ValueError, KeyError) as exc:  # characters Code 128 cannot encode
        raise _bad(path, f"not a valid {kind} value: {type(exc).__name__}") from None
    out.seek(0)
    return _CheckedImage(tpl, out, path=path,
                         **_sizes(spec, path, width=_BARCODE_WIDTH_MM[kind]))


class _CheckedImage(InlineImage):  # type: ignore[misc]  # docxtpl has no type information
    """An InlineImage whose unreadable bytes become a 422 naming the data path."""

    def __init__(self, *args: Any, path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = path

    def _insert_image(self) -> str:
        try:
            return str(super()._insert_image())
        except Exception as exc:  # python-docx's image parsers raise many kinds
            raise _bad(self.path, f"the image cannot be read ({type(exc).__name__})") from None


def _richtext(tpl: Any, spec: Any, path: str) -> RichText:
    if isinstance(spec, str):
        return RichText(spec)
    if not isinstance(spec, list) or not all(isinstance(r, dict) for r in spec):
        raise _bad(path, '"$richtext" is a string or a list of runs like '
                   '{"text": "...", "bold": true}')
    rich = RichText()
    for i, run in enumerate(spec):
        unknown = set(run) - _RUN_KEYS
        if unknown or "text" not in run:
            raise _bad(f"{path}[{i}]", f"a run needs 'text' and knows only {sorted(_RUN_KEYS)}")
        options = {k: v for k, v in run.items() if k not in ("text", "size_pt", "url")}
        if "size_pt" in run:
            options["size"] = int(float(run["size_pt"]) * 2)  # WordprocessingML counts half-points
        if "url" in run:
            if not str(run["url"]).startswith(_URL_SCHEMES):
                raise _bad(f"{path}[{i}]", "links must be http(s) or mailto URLs")
            options["url_id"] = tpl.build_url_id(run["url"])
        rich.add(str(run["text"]), **options)
    return rich


def _listing(tpl: Any, spec: Any, path: str) -> Listing:
    if not isinstance(spec, str):
        raise _bad(path, '"$listing" must be a string')
    return Listing(spec)


def _html(tpl: Any, spec: Any, path: str) -> markup.Markup:
    if not isinstance(spec, str):
        raise _bad(path, '"$html" must be a string of HTML')
    return markup.from_html(tpl, spec)


def _markdown(tpl: Any, spec: Any, path: str) -> markup.Markup:
    if not isinstance(spec, str):
        raise _bad(path, '"$markdown" must be a string of Markdown')
    return markup.from_markdown(tpl, spec)


_BUILDERS = {"$image": _image, "$richtext": _richtext, "$listing": _listing,
             "$qrcode": _qrcode, "$barcode": _barcode, "$html": _html, "$markdown": _markdown}
