"""Locale filters (format_currency, format_date, ...) against Babel's own output.

Unit tests call the renderer in this process; the API tests go through a real
`gendoc serve` (worker processes) and read the rendered DOCX's text.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from babel import dates, numbers
from conftest import ServerProcess, start_service
from docx_helpers import make_docx, part_texts
from gendoc_service.errors import InvalidFormatValue, UndefinedVariables
from gendoc_service.rendering import Renderer, RenderOptions

LOCALES = ["de_DE", "fr_FR", "en_US", "ja_JP", "ar_EG"]
TZ = "Europe/Berlin"
PROBLEMS = "https://gendoc.io/problems/"

# One line per filter; `amount` is a decimal string (no float may touch it).
TEMPLATE = make_docx(
    "C[{{ amount|format_currency('EUR') }}]",
    "D[{{ count|format_decimal }}]",
    "P[{{ share|format_percent }}]",
    "DA[{{ due|format_date }}]",
    "DL[{{ due|format_date('long') }}]",
    "DT[{{ at|format_datetime }}]",
    "T[{{ at|format_time('short') }}]",
)
DATA = {"amount": "1234567.891", "count": 1234.5, "share": 0.256, "due": "2026-03-01",
        "at": "2026-03-01T13:05:00Z"}


def expected(locale: str, tz: str = TZ) -> list[str]:
    """What Babel itself gives for DATA in `locale`, time zone `tz`."""
    at = dt.datetime(2026, 3, 1, 13, 5, tzinfo=dt.UTC)
    zone = ZoneInfo(tz)
    return [
        f"C[{numbers.format_currency(Decimal('1234567.891'), 'EUR', locale=locale)}]",
        f"D[{numbers.format_decimal(1234.5, locale=locale)}]",
        f"P[{numbers.format_percent(0.256, locale=locale)}]",
        f"DA[{dates.format_date(dt.date(2026, 3, 1), 'medium', locale=locale)}]",
        f"DL[{dates.format_date(dt.date(2026, 3, 1), 'long', locale=locale)}]",
        f"DT[{dates.format_datetime(at, 'medium', tzinfo=zone, locale=locale)}]",
        f"T[{dates.format_time(at, 'short', tzinfo=zone, locale=locale)}]",
    ]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def body(docx: bytes) -> list[str]:
    return [t for t in part_texts(docx)["word/document.xml"] if t]


@pytest.mark.parametrize("locale", LOCALES)
def test_filters_give_babels_output(renderer: Renderer, locale: str) -> None:
    out = renderer.render(TEMPLATE, DATA, RenderOptions(locale=locale, timezone=TZ))
    assert body(out) == expected(locale)


def test_decimal_strings_are_not_rounded_through_a_float(renderer: Renderer) -> None:
    # As a float this amount is 98765432109876544 (a double holds ~16 digits).
    tpl = make_docx("{{ a|format_decimal('#,##0.00') }} {{ a|format_currency('EUR') }}")
    out = renderer.render(tpl, {"a": "98765432109876543.21"}, RenderOptions(locale="de_DE"))
    assert body(out) == ["98.765.432.109.876.543,21 98.765.432.109.876.543,21\xa0€"]
    assert numbers.format_decimal(float("98765432109876543.21"), "#,##0.00", locale="de_DE") \
        != "98.765.432.109.876.543,21"


def test_times_are_shown_in_the_request_time_zone(renderer: Renderer) -> None:
    tpl = make_docx("{{ at|format_datetime('HH:mm') }} {{ at|format_date('yyyy-MM-dd') }}",
                    "{{ naive|format_time('HH:mm') }} {{ bare|format_time('HH:mm') }}")
    data = {"at": "2026-03-01T23:30:00+00:00", "naive": "2026-03-01T08:15", "bare": "07:45"}
    out = renderer.render(tpl, data, RenderOptions(timezone="Asia/Tokyo"))
    # 23:30 UTC is 08:30 the next day in Tokyo; a naive time is already local.
    assert body(out) == ["08:30 2026-03-02", "08:15 07:45"]


def test_default_locale_and_zone_are_en_us_and_utc(renderer: Renderer) -> None:
    out = renderer.render(make_docx("{{ v|format_currency('USD') }} {{ t|format_time('HH:mm') }}"),
                          {"v": 1500, "t": "2026-01-01T12:00:00+02:00"})
    assert body(out) == ["$1,500.00 10:00"]


@pytest.mark.parametrize(("expression", "value", "filter_name"), [
    ("v|format_currency('EUR')", "twelve", "format_currency"),
    ("v|format_decimal", "NaN", "format_decimal"),
    ("v|format_percent", True, "format_percent"),
    ("v|format_date", "01/03/2026", "format_date"),
    ("v|format_datetime", "tomorrow", "format_datetime"),
    ("v|format_time", "25:99", "format_time"),
    ("1|format_currency(v)", "EURO", "format_currency"),
])
def test_a_value_a_filter_cannot_read_is_named(renderer: Renderer, expression: str,
                                               value: object, filter_name: str) -> None:
    with pytest.raises(InvalidFormatValue) as caught:
        renderer.render(make_docx("{{ " + expression + " }}"), {"v": value})
    assert caught.value.extensions == {"filter": filter_name, "value": repr(value)}
    assert filter_name in caught.value.detail and repr(value) in caught.value.detail


# -- through the HTTP API -------------------------------------------------------
def put_template(client: httpx.Client, docx: bytes) -> str:
    name = f"fmt-{uuid.uuid4().hex[:10]}"
    r = client.put(f"/v1/templates/{name}", content=docx, headers={"content-type": "application/"
                   "vnd.openxmlformats-officedocument.wordprocessingml.document"})
    assert r.status_code == 201, r.text
    return name


@pytest.mark.parametrize("locale", LOCALES)
def test_render_json_with_locale_and_timezone(client: httpx.Client, locale: str) -> None:
    name = put_template(client, TEMPLATE)
    r = client.post("/v1/render", json={"template": name, "data": DATA, "format": "docx",
                                        "locale": locale, "timezone": TZ})
    assert r.status_code == 200, r.text
    assert body(r.content) == expected(locale)


def test_render_multipart_with_locale_and_timezone(client: httpx.Client) -> None:
    r = client.post("/v1/render", files={"template": ("t.docx", TEMPLATE)},
                    data={"data": json.dumps(DATA), "format": "docx", "locale": "fr-FR",
                          "timezone": TZ})
    assert r.status_code == 200, r.text
    assert body(r.content) == expected("fr_FR")


def test_batch_with_locale_and_timezone(client: httpx.Client) -> None:
    name = put_template(client, TEMPLATE)
    r = client.post("/v1/render/batch", json={"template": name, "items": [DATA, DATA],
                                              "format": "docx", "locale": "ja_JP",
                                              "timezone": TZ})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        documents = [z.read(n) for n in sorted(z.namelist())]
    assert [body(d) for d in documents] == [expected("ja_JP")] * 2


def test_decimal_strings_through_the_api_keep_every_digit(client: httpx.Client) -> None:
    name = put_template(client, make_docx("{{ a|format_decimal('#,##0.00') }}",
                                          "{{ a|format_currency('EUR') }}"))
    r = client.post("/v1/render", json={"template": name, "format": "docx", "locale": "de_DE",
                                        "data": {"a": "98765432109876543.21"}})
    assert r.status_code == 200, r.text
    # Through a float the last digits would read ...544,00.
    assert body(r.content) == ["98.765.432.109.876.543,21", "98.765.432.109.876.543,21\xa0€"]


def test_job_with_locale_and_timezone(client: httpx.Client) -> None:
    from jobs.jobs_support import result_zip, submit, wait_final

    name = put_template(client, TEMPLATE)
    job = submit(client, name, [DATA, DATA], locale="ar_EG", timezone="America/Sao_Paulo")
    assert wait_final(client, job["id"])["status"] == "succeeded"
    archive = result_zip(client, job["id"])
    assert [body(archive.read(n)) for n in sorted(archive.namelist())] == [
        expected("ar_EG", "America/Sao_Paulo")] * 2


@pytest.fixture(scope="module")
def defaults_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A service whose defaults are what a DocGenerator's spec.service.locale / timezone
    set (the operator writes them as these variables: tests/operator/test_children.py)."""
    tmp: Path = tmp_path_factory.mktemp("locale-defaults")
    server = start_service(tmp, env={"GENDOC_DEFAULT_LOCALE": "fr-FR",
                                     "GENDOC_DEFAULT_TIMEZONE": "Asia/Tokyo"})
    yield server
    server.stop()


def test_service_defaults_apply_when_a_request_names_none(
        defaults_service: ServerProcess) -> None:
    with httpx.Client(base_url=defaults_service.url, timeout=30) as client:
        name = put_template(client, TEMPLATE)
        r = client.post("/v1/render", json={"template": name, "data": DATA, "format": "docx"})
        assert r.status_code == 200, r.text
        assert body(r.content) == expected("fr_FR", "Asia/Tokyo")
        # The request's own locale and zone win over the defaults, each on its own.
        r = client.post("/v1/render", json={"template": name, "data": DATA, "format": "docx",
                                            "locale": "ja_JP"})
        assert body(r.content) == expected("ja_JP", "Asia/Tokyo")
        r = client.post("/v1/render", json={"template": name, "data": DATA, "format": "docx",
                                            "timezone": TZ})
        assert body(r.content) == expected("fr_FR", TZ)


@pytest.mark.parametrize(("field", "value"), [("locale", "xx_QQ"), ("locale", "not a locale"),
                                              ("timezone", "Mars/Olympus"), ("timezone", "+02:00")])
def test_unknown_locale_or_timezone_is_a_422_naming_it(client: httpx.Client, field: str,
                                                       value: str) -> None:
    name = put_template(client, TEMPLATE)
    for path, payload in (("/v1/render", {"template": name, "data": DATA}),
                          ("/v1/render/batch", {"template": name, "items": [DATA]})):
        r = client.post(path, json={**payload, "format": "docx", field: value})
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"] == PROBLEMS + "invalid-request"
        assert [e["field"] for e in problem["errors"]] == [field]
        assert value in problem["detail"]


def test_bad_value_through_the_api_is_a_422_naming_filter_and_value(client: httpx.Client) -> None:
    name = put_template(client, make_docx("{{ total|format_currency('EUR') }}"))
    r = client.post("/v1/render", json={"template": name, "data": {"total": "12,50"},
                                        "format": "docx", "locale": "de_DE"})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == PROBLEMS + "invalid-format-value"
    assert problem["filter"] == "format_currency" and problem["value"] == "'12,50'"


def test_a_missing_value_renders_empty_or_is_listed_in_strict_mode(renderer: Renderer) -> None:
    tpl = make_docx("[{{ gone|format_currency('EUR') }}][{{ 1|format_currency(cur) }}]")
    assert body(renderer.render(tpl, {})) == ["[][]"]
    with pytest.raises(UndefinedVariables) as caught:
        renderer.render(tpl, {}, RenderOptions(strict=True))
    assert caught.value.extensions["variables"] == ["gone", "cur"]
