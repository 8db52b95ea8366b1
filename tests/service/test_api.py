"""The service's HTTP API, against a real `gendoc serve` process on 127.0.0.1."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from conftest import EXAMPLES
from docx_helpers import make_docx, part_texts

PROBLEM = "application/problem+json"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BASE = "https://gendoc.io/problems/"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def put(client: httpx.Client, name: str, data: bytes, ctype: str = DOCX) -> httpx.Response:
    return client.put(f"/v1/templates/{name}", content=data, headers={"content-type": ctype})


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == BASE + slug
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"


def test_template_lifecycle(client: httpx.Client) -> None:
    name = unique()
    v1 = make_docx("Dear {{ customer.name }}", "{% for i in items %}{{ i.sku }}{% endfor %}")
    created = put(client, name, v1)
    assert created.status_code == 201
    meta = created.json()
    assert meta["name"] == name and len(meta["latest"]) == 64
    assert meta["variables"] == {"customer": {"name": None}, "items": [{"sku": None}]}
    # Same bytes again: same version, not a new one.
    again = put(client, name, v1)
    assert again.status_code == 200 and again.json()["latest"] == meta["latest"]
    v2 = make_docx("Hi {{ who }}")
    second = put(client, name, v2).json()
    assert second["latest"] != meta["latest"] and len(second["versions"]) == 2
    assert second["variables"] == {"who": None}
    listed = {t["name"]: t for t in client.get("/v1/templates").json()["templates"]}
    assert listed[name]["versions"] == 2
    content = client.get(f"/v1/templates/{name}/content")
    assert content.content == v2 and content.headers["content-type"] == DOCX
    old = client.get(f"/v1/templates/{name}/content", params={"version": meta["latest"]})
    assert old.content == v1
    # Render a pinned old version.
    out = client.post("/v1/render", json={"template": name, "version": meta["latest"],
                                          "format": "docx",
                                          "data": {"customer": {"name": "Ada"}, "items": []}})
    assert out.status_code == 200 and out.headers["x-template-version"] == meta["latest"]
    assert "Dear Ada" in part_texts(out.content)["word/document.xml"]
    assert client.delete(f"/v1/templates/{name}").status_code == 204
    assert_problem(client.get(f"/v1/templates/{name}"), 404, "template-not-found")


def test_render_json_gives_docx_with_file_name(client: httpx.Client) -> None:
    name = unique("invoice")
    assert put(client, name, (EXAMPLES / "invoice.docx").read_bytes()).status_code == 201
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    r = client.post("/v1/render",
                    json={"template": name, "data": data, "format": "docx", "strict": True},
                    headers={"x-request-id": "req-123"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == DOCX
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.docx"'
    assert r.headers["x-request-id"] == "req-123"
    text = "\n".join(part_texts(r.content)["word/document.xml"])
    assert "Bill to: Globex & Partners <Ltd>" in text and "INV-2026-0042" in text


def test_render_multipart_is_stateless(client: httpx.Client) -> None:
    before = client.get("/v1/templates").json()["templates"]
    r = client.post(
        "/v1/render",
        files={"template": ("letter.docx", make_docx("To {{ to }}"), DOCX)},
        data={"data": json.dumps({"to": "Bob & <Co>"}), "format": "docx"},
    )
    assert r.status_code == 200, r.text
    assert "To Bob & <Co>" in part_texts(r.content)["word/document.xml"]
    assert r.headers["content-disposition"] == 'attachment; filename="letter.docx"'
    assert client.get("/v1/templates").json()["templates"] == before


def test_pdf_without_converter_is_501(client: httpx.Client) -> None:
    name = unique()
    put(client, name, make_docx("x"))
    assert_problem(client.post("/v1/render", json={"template": name, "format": "pdf"}), 501,
                   "format-not-implemented")


def test_strict_undefined_variables_are_listed(client: httpx.Client) -> None:
    name = unique()
    put(client, name, make_docx("{{ a }} {{ b.c }}", footer="{{ d }}"))
    body = assert_problem(
        client.post("/v1/render", json={"template": name, "format": "docx", "strict": True,
                                        "data": {"b": {}}}),
        422, "undefined-variables",
    )
    assert body["variables"] == ["a", "b.c", "d"]


def test_syntax_error_is_422_with_part_and_line(client: httpx.Client) -> None:
    body = assert_problem(put(client, unique(), make_docx("ok", footer="{% if x %}never closed")),
                          422, "template-syntax-error")
    assert body["part"] == "footer" and body["line"] >= 1
    r = client.post("/v1/render", files={"template": ("t.docx", make_docx("a", "b {{ x }", "c"))},
                    data={"format": "docx"})
    body = assert_problem(r, 422, "template-syntax-error")
    assert body["part"] == "body" and body["paragraph"] == 2


@pytest.mark.parametrize(
    ("request_kwargs", "status", "slug"),
    [
        ({"json": {"template": "no-such-template", "format": "docx"}}, 404, "template-not-found"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
         "invalid-json"),
        ({"json": {"template": "x", "format": "odt"}}, 422, "invalid-request"),
        ({"json": {"template": "x", "data": [1, 2]}}, 422, "invalid-request"),
        ({"json": {"template": "x", "surprise": 1}}, 422, "invalid-request"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415,
         "unsupported-media-type"),
        ({"content": b"x"}, 415, "unsupported-media-type"),
        ({"json": {"template": "../../etc/passwd", "format": "docx"}}, 400,
         "invalid-template-name"),
        ({"data": {"data": "{}"}, "files": {"other": ("a", b"b")}}, 400, "bad-request"),
        ({"files": {"template": ("t.docx", b"not a zip")}, "data": {"format": "docx"}}, 422,
         "invalid-docx"),
        ({"files": {"template": ("t.docx", make_docx("x"))}, "data": {"data": "[nope"}}, 400,
         "invalid-json"),
    ],
)
def test_bad_render_requests(client: httpx.Client, request_kwargs: dict, status: int,
                             slug: str) -> None:
    assert_problem(client.post("/v1/render", **request_kwargs), status, slug)


def test_unknown_version_is_404(client: httpx.Client) -> None:
    name = unique()
    put(client, name, make_docx("x"))
    assert_problem(client.post("/v1/render", json={"template": name, "version": "f" * 64}), 404,
                   "version-not-found")


@pytest.mark.parametrize(
    ("name", "body", "ctype", "status", "slug"),
    [
        ("ok-name", b"", DOCX, 400, "bad-request"),
        ("ok-name", b"PK not really", DOCX, 422, "invalid-docx"),
        ("ok-name", b"<html/>", "text/html", 415, "unsupported-media-type"),
        ("x" * 129, b"x", DOCX, 400, "invalid-template-name"),
        ("a..b", b"x", DOCX, 400, "invalid-template-name"),
        (".hidden", b"x", DOCX, 400, "invalid-template-name"),
        ("in%20voice", b"x", DOCX, 400, "invalid-template-name"),
        # A name with an (encoded) slash or a dot segment never reaches the store:
        # it does not match the route at all.
        ("a%2Fb", b"x", DOCX, 404, "not-found"),
    ],
)
def test_bad_template_uploads(client: httpx.Client, name: str, body: bytes, ctype: str, status: int,
                              slug: str) -> None:
    assert_problem(put(client, name, body, ctype), status, slug)


def test_unknown_routes_and_methods_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/v2/nothing"), 404, "not-found")
    assert_problem(client.patch("/v1/render"), 405, "method-not-allowed")


def test_metrics_use_the_design_names(client: httpx.Client) -> None:
    client.get("/healthz")
    text = client.get("/metrics").text
    for name in ("gendoc_requests_total", "gendoc_request_duration_seconds_bucket",
                 "gendoc_render_duration_seconds_bucket", "gendoc_convert_duration_seconds_bucket",
                 "gendoc_queue_depth", "gendoc_requests_in_flight", "gendoc_queue_limit"):
        assert name in text
    assert 'gendoc_requests_total{code="200",route="/healthz"}' in text
    assert 'le="0.05"' in text and 'le="30.0"' in text


def test_request_id_is_generated_when_absent_or_unsafe(client: httpx.Client) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert str(uuid.UUID(made)) == made  # a UUID in its canonical form
    r = client.get("/healthz", headers={"x-request-id": "bad id\twith junk"})
    assert r.headers["x-request-id"] != "bad id\twith junk"


def test_problem_instance_names_the_request(client: httpx.Client) -> None:
    made = client.get("/v1/templates/no-such-one")
    assert made.json()["instance"] == f"urn:uuid:{made.headers['x-request-id']}"
    given = str(uuid.uuid4())
    r = client.get("/v1/templates/no-such-one", headers={"x-request-id": given})
    assert r.json()["instance"] == f"urn:uuid:{given}" and r.headers["x-request-id"] == given
    # A caller's id that is not a UUID is kept; it has no URN, so no instance.
    own = client.get("/v1/templates/no-such-one", headers={"x-request-id": "req-42"})
    assert own.headers["x-request-id"] == "req-42" and "instance" not in own.json()
