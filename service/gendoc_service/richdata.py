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
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from docx.shared import Mm
from docxtpl import InlineImage, Listing, RichText

from .errors import InvalidRequest

MARKERS = ("$image", "$richtext", "$listing")
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
    sizes = {}
    for key, arg in (("width_mm", "width"), ("height_mm", "height")):
        if spec.get(key) is not None:
            if not isinstance(spec[key], (int, float)) or not 0 < spec[key] <= 2000:
                raise _bad(path, f"{key} must be a number of millimetres between 0 and 2000")
            sizes[arg] = Mm(spec[key])
    return _CheckedImage(tpl, io.BytesIO(raw), path=path, **sizes)


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


_BUILDERS = {"$image": _image, "$richtext": _richtext, "$listing": _listing}
