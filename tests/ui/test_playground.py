"""The playground at /ui in a real browser, against the real stack (LibreOffice included).

One walk through what a template author does: key, upload, variables, data edited
until nothing is missing, the preview changing, saved sample data, a second
version by drag and drop, compare, a syntax error at its line, downloads; then
names as text (no script runs), the CSP, and an axe-core accessibility check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
import zipfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES
from docx_helpers import make_docx
from playwright.sync_api import Page, Request, expect
from pypdf import PdfReader

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.libreoffice

XSS = "<img src=x onerror=alert(1)>"

V1 = make_docx(
    "Invoice {{ invoice.number }} for {{ customer.name }}",
    "{% for item in items %}{{ item.name }} costs {{ item.price }}. {% endfor %}",
    "Total due: {{ total }}",
)
V2 = make_docx(
    "Invoice {{ invoice.number }} for {{ customer.name }} <{{ customer.email }}>",
    "{% for item in items %}{{ item.name }} costs {{ item.price }}. {% endfor %}",
    "Thank you.",
)
BROKEN_PARAGRAPH = "Dear {{ customer.name }, welcome"
BROKEN = make_docx("Invoice {{ invoice.number }}", "Some text", BROKEN_PARAGRAPH, "More text")
COMPLETE = {"invoice": {"number": "INV-7"}, "customer": {"name": "Ada Lovelace"},
            "items": [{"name": "Design", "price": 450}], "total": 450}


# Installed before the page's own scripts (init scripts are not subject to its CSP):
# every violation the browser reports, whatever the console says.
CSP_WATCH = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"""


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _digest(page: Page) -> str:
    return page.locator("#pages").get_attribute("data-digest") or ""


def _wait_preview_current(page: Page) -> str:
    """Until the preview shows the data as it is in the editor now."""
    page.wait_for_function(
        "() => { const p = document.getElementById('pages');"
        " return p.dataset.edit && p.dataset.edit === document.getElementById('data').dataset.edit"
        " && !p.classList.contains('stale'); }")
    return _digest(page)


def _type_data(page: Page, data: object) -> None:
    page.locator("#data").fill(json.dumps(data, indent=2, ensure_ascii=False))


def _drop(page: Page, zone: str, data: bytes, filename: str) -> None:
    """A file dropped on a drop zone, as the browser delivers it (dragover, then drop)."""
    page.evaluate(
        """([zoneId, b64, file]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], file));
            const zone = document.getElementById(zoneId);
            zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true}));
            zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
        }""", [zone, base64.b64encode(data).decode(), filename])


def _enter_key(page: Page) -> None:
    page.locator("#api-key").fill(API_KEY)
    page.get_by_role("button", name="Use key").click()


def test_walkthrough(stack: Stack, page: Page, tmp_path: Path, shots: Path) -> None:
    name = f"invoice-{uuid.uuid4().hex[:6]}"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.add_init_script(CSP_WATCH)
    requests: list[Request] = []
    # A lambda: Playwright marks its handler with an attribute, which a bound builtin cannot take.
    page.on("request", lambda r: requests.append(r))

    response = page.goto(stack.url + "/ui/")
    assert response is not None and response.status == 200
    # Without a key the API refuses, and the page says so in words.
    expect(page.locator("#list-problem")).to_contain_text("An API key is needed")
    _enter_key(page)
    expect(page.locator("#key-state")).to_have_text("key set for this tab")
    expect(page.locator("#list-problem")).to_be_hidden()
    # The key is kept for this tab's session only: never a cookie, never in the URL.
    assert page.evaluate("sessionStorage.getItem('gendoc-api-key')") == API_KEY
    assert page.context.cookies() == []
    assert API_KEY not in page.url

    # Upload a template; its page shows the variables.
    page.locator("#new-name").fill(name)
    page.locator("#new-file").set_input_files(_write(tmp_path, "v1.docx", V1))
    expect(page.locator("#template-title")).to_have_text(name)
    tree = page.locator("#variables")
    for var in ("invoice", "number", "customer", "name", "items", "price", "total"):
        expect(tree.locator(".var", has_text=var).first).to_be_visible()
    expect(tree.locator("li[data-path='items']")).to_contain_text("(list)")
    # Set once the page is up: still there at the end means no edit below reloaded it.
    page.evaluate("window.gendocSamePage = true")

    # Empty data: every path missing, marked in the list and in the tree.
    missing = page.locator("#missing li")
    expect(missing).to_have_text(["invoice.number", "customer.name", "items", "total"])
    expect(tree.locator("li.missing[data-path='total']")).to_be_visible()
    first = _wait_preview_current(page)
    page.screenshot(path=shots / "01-missing-data.png", full_page=True)

    # Part of the data, typed key by key: checked as it is typed (the half typed is
    # not JSON yet), then fewer missing, and an unknown path marked as such.
    typed = json.dumps({"invoice": {"number": "INV-7"}, "customer": {"name": "Ada"},
                        "custmer": {"name": "typo"}})
    editor = page.locator("#data")
    editor.fill("")
    editor.press_sequentially(typed[:30])
    expect(page.locator("#data-state")).to_contain_text("Not valid JSON yet")
    editor.press_sequentially(typed[30:])
    expect(missing).to_have_text(["items", "total"])
    expect(page.locator("#unknown li")).to_have_text(["custmer"])
    expect(tree.locator("li.present[data-path='invoice']")).to_be_visible()
    second = _wait_preview_current(page)

    # All of it: nothing missing, and the preview changes again.
    _type_data(page, COMPLETE)
    expect(page.locator("#data-state")).to_have_text("Every path the template reads is present.")
    expect(missing).to_have_count(0)
    expect(page.locator("#unknown li")).to_have_count(0)
    third = _wait_preview_current(page)
    assert len({first, second, third}) == 3
    expect(page.locator("#pages img")).to_have_count(1)
    expect(page.locator("#preview-state")).to_have_text("(1 page)")
    page.screenshot(path=shots / "02-preview.png", full_page=True)

    # Three previews, each refreshed in place: the page was never reloaded.
    assert page.evaluate("window.gendocSamePage") is True

    # Saved with the template: a reload brings the data back, and the key is still
    # set (entered once for this tab's session).
    page.get_by_role("button", name="Save with template").click()
    expect(page.locator("#data-state")).to_have_text("Saved with the template.")
    page.reload()
    expect(page.locator("#data")).to_have_value(json.dumps(COMPLETE, indent=2))
    expect(page.locator("#key-state")).to_have_text("key set for this tab")

    # Downloads: a real PDF and a real DOCX, each filled with the data in the editor.
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="Download PDF").click()
    assert pdf_download.value.suggested_filename == f"{name}.pdf"
    pdf = PdfReader(pdf_download.value.path())
    assert "Invoice INV-7 for Ada Lovelace" in pdf.pages[0].extract_text()
    with page.expect_download() as docx_download:
        page.get_by_role("button", name="Download DOCX").click()
    assert docx_download.value.suggested_filename == f"{name}.docx"
    with zipfile.ZipFile(docx_download.value.path()) as docx:
        assert "Design costs 450." in docx.read("word/document.xml").decode()

    # A second version, dropped on the drop zone.
    before = _wait_preview_current(page)
    _drop(page, "version-drop", V2, "v2.docx")
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".badge")).to_have_text("current")
    expect(page.locator("#missing li")).to_have_text(["customer.email"])
    assert _wait_preview_current(page) != before

    # Compare the two versions.
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#vars-added li")).to_have_text(["customer.email"])
    expect(page.locator("#vars-removed li")).to_have_text(["total"])
    expect(page.locator("#text-diff .del")).to_contain_text(["Total due: {{ total }}"])
    expect(page.locator("#text-diff .add")).to_contain_text(["Thank you."])
    page.locator("#compare-result").scroll_into_view_if_needed()
    page.screenshot(path=shots / "03-compare.png", full_page=True)

    # A version with a syntax error: refused, shown at its part and line with its text.
    page.locator("#version-file").set_input_files(_write(tmp_path, "broken.docx", BROKEN))
    problem = page.locator("#problem")
    expect(problem).to_be_visible()
    expect(problem.locator(".problem-title")).to_contain_text("the main text")
    expect(problem.locator(".problem-title")).to_contain_text("line 4")
    expect(problem.locator(".context li.at")).to_contain_text(BROKEN_PARAGRAPH)
    expect(rows).to_have_count(2)
    page.screenshot(path=shots / "04-syntax-error.png", full_page=True)

    assert dialogs == [], "a script ran that should not have"
    assert csp_reports == []
    assert page.evaluate("window.cspViolations") == []
    _assert_only_the_service_asked(requests, stack.url)


def _assert_only_the_service_asked(requests: list[Request], origin: str) -> None:
    """Everything the browser fetched came from the service itself (or blob: URLs the
    page made of preview pages); every API call after the key was entered carried it
    in X-API-Key, none in a URL or a cookie."""
    assert requests, "the page made no requests"
    elsewhere = [r.url for r in requests if not r.url.startswith((origin + "/", "blob:"))]
    assert elsewhere == []
    assert not any(API_KEY in r.url for r in requests)
    assert not any("cookie" in r.all_headers() for r in requests)
    api = [r for r in requests if r.url.startswith(origin + "/v1/")]
    keyed = [r for r in api if r.all_headers().get("x-api-key") == API_KEY]
    # Only the list asked for before the key was entered goes without it.
    assert len(api) - len(keyed) == 1 and len(keyed) > 10, [r.url for r in api]
    assert {r.method for r in keyed} >= {"GET", "PUT", "POST"}
    assert {r.url.removeprefix(origin) for r in requests} >= {
        "/ui/", "/ui/app.js", "/ui/api.js", "/ui/check.js", "/ui/explain.js", "/ui/style.css"}


def test_templates_list(stack: Stack, page: Page) -> None:
    """The list: each template's name (a link to its page), current version, when it
    was last updated, its size and how many versions it has, as the API lists them."""
    name = f"listed-{uuid.uuid4().hex[:6]}"
    headers = {"x-api-key": API_KEY, "content-type": "application/octet-stream"}
    for docx in (V1, V2):
        httpx.put(f"{stack.url}/v1/templates/{name}", content=docx,
                  headers=headers).raise_for_status()
    listed = next(t for t in httpx.get(f"{stack.url}/v1/templates", headers=headers)
                  .json()["templates"] if t["name"] == name)
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    row = page.locator("#templates tbody tr").filter(
        has=page.get_by_role("link", name=name, exact=True))
    expect(page.locator("#templates thead th")).to_have_text(
        ["Name", "Current version", "Updated", "Size", "Versions"])
    updated = listed["updated"].replace("T", " ").replace("Z", " UTC")
    # Rounded as JavaScript's toFixed(1) does: ties upwards (n / 1024 is exact).
    kib = (Decimal(listed["size"]) / 1024).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert listed["size"] == len(V2) and listed["latest"] == hashlib.sha256(V2).hexdigest()
    expect(row.locator("td")).to_have_text([
        name, listed["latest"][:12], updated, f"{kib} KiB", "2"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC", updated)
    row.get_by_role("link", name=name).click()
    expect(page.locator("#template-title")).to_have_text(name)


def test_new_template_dropped_then_deleted(stack: Stack, page: Page) -> None:
    """A .docx dropped on the list's drop zone becomes a template named after the file;
    deleting its only version deletes it and goes back to the list."""
    name = f"dropped-{uuid.uuid4().hex[:6]}"
    questions: list[str] = []
    page.on("dialog", lambda d: (questions.append(d.message), d.accept()))
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    expect(page.locator("#templates-empty, #templates tbody tr").first).to_be_visible()
    _drop(page, "new-drop", V1, f"{name}.docx")
    expect(page.locator("#template-title")).to_have_text(name)
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    # Listed; back on its page (the list keeps its row until it is read again).
    link = page.get_by_role("link", name=name, exact=True)
    page.goto(f"{stack.url}/ui/#/")
    link.click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#list-view")).to_be_visible()
    expect(link).to_have_count(0)
    assert questions == [f"Delete {name} entirely (its only version)?"]
    headers = {"x-api-key": API_KEY}
    assert httpx.get(f"{stack.url}/v1/templates/{name}", headers=headers).status_code == 404


def test_versions_download_make_current_delete(stack: Stack, page: Page) -> None:
    name = f"versions-{uuid.uuid4().hex[:6]}"
    headers = {"x-api-key": API_KEY, "content-type": "application/octet-stream"}
    for docx in (V1, V2):
        httpx.put(f"{stack.url}/v1/templates/{name}", content=docx,
                  headers=headers).raise_for_status()
    questions: list[str] = []
    page.on("dialog", lambda d: (questions.append(d.message), d.accept()))
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    page.goto(f"{stack.url}/ui/#/t/{name}")
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    # Versions uploaded within one second are ordered by id: find V1's row by its id.
    older = rows.filter(has_text=hashlib.sha256(V1).hexdigest()[:12])
    with page.expect_download() as download:
        older.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == V1
    older.get_by_role("button", name="Make current").click()
    expect(older).to_have_class("current")
    expect(older.locator(".badge")).to_have_text("current")
    expect(page.locator("#missing li")).to_contain_text(["total"])  # V1's variables again
    page.locator("#versions tr:not(.current)").get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(hashlib.sha256(V1).hexdigest()[:12])
    assert len(questions) == 1 and questions[0].startswith("Delete version")
    meta = httpx.get(f"{stack.url}/v1/templates/{name}", headers=headers).json()
    assert [v["id"] for v in meta["versions"]] == [hashlib.sha256(V1).hexdigest()]


def test_render_problems_in_an_authors_words(stack: Stack, page: Page, shots: Path) -> None:
    name = f"unsafe-{uuid.uuid4().hex[:6]}"
    headers = {"x-api-key": API_KEY, "content-type": "application/octet-stream"}
    httpx.put(f"{stack.url}/v1/templates/{name}", headers=headers, content=make_docx(
        "Hello {{ customer.name }}", "{{ customer.__class__ }}")).raise_for_status()
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    page.goto(f"{stack.url}/ui/#/t/{name}")
    problem = page.locator("#problem")
    expect(problem.locator(".problem-title")).to_have_text(
        "The template tried something not allowed")
    expect(problem).to_contain_text("__class__")
    page.screenshot(path=shots / "06-security.png", full_page=True)
    # Strict: the service lists what the data lacks, said as what to add.
    plain = f"strict-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{stack.url}/v1/templates/{plain}", headers=headers,
              content=make_docx("Hello {{ customer.name }}, {{ greeting }}")).raise_for_status()
    page.goto(f"{stack.url}/ui/#/t/{plain}")
    _wait_preview_current(page)
    page.locator("#strict").check()
    expect(problem.locator(".problem-title")).to_have_text(
        "The sample data lacks values the template uses")
    expect(problem).to_contain_text("Add these to the data: customer.name, greeting.")
    _type_data(page, {"customer": {"name": "Ada"}, "greeting": "hi"})
    _wait_preview_current(page)
    expect(problem).to_be_hidden()


def test_included_templates_are_listed(stack: Stack, page: Page) -> None:
    headers = {"x-api-key": API_KEY, "content-type": "application/octet-stream"}
    part = f"letterhead-{uuid.uuid4().hex[:6]}"
    letter = f"letter-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{stack.url}/v1/templates/{part}", content=make_docx("From {{ sender }}"),
              headers=headers).raise_for_status()
    httpx.put(f"{stack.url}/v1/templates/{letter}", headers=headers, content=make_docx(
        f"{{{{p include('{part}') }}}}", "Dear {{ name }}")).raise_for_status()
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    page.goto(f"{stack.url}/ui/#/t/{letter}")
    link = page.locator("#includes a")
    expect(link).to_have_text([part])
    # The sub-template's variables are the letter's too.
    expect(page.locator("#missing li")).to_have_text(["name", "sender"], ignore_case=False)
    link.click()
    expect(page.locator("#template-title")).to_have_text(part)
    expect(page.locator("#includes-section")).to_be_hidden()
    # A sub-template that goes away: the letter says which include cannot be served.
    httpx.delete(f"{stack.url}/v1/templates/{part}", headers=headers).raise_for_status()
    page.goto(f"{stack.url}/ui/#/t/{letter}")
    expect(page.locator("#include-error")).to_contain_text(part)
    expect(page.locator("#problem .problem-title")).to_have_text(
        "A sub-template cannot be included")


def test_names_are_text(stack: Stack, page: Page, shots: Path) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    # A template page opened by that name: the name shows as text, the API's answer too.
    page.goto(stack.url + "/ui/#/t/" + XSS)
    expect(page.locator("#template-title")).to_have_text(XSS)
    expect(page.locator("#problem")).to_contain_text("That name cannot be used")
    # Uploading under that name: refused, and the name shown back as text.
    page.goto(stack.url + "/ui/#/")
    page.locator("#new-name").fill(XSS)
    page.locator("#new-file").set_input_files(
        {"name": "x.docx", "mimeType": "application/octet-stream", "buffer": V1})
    expect(page.locator("#list-problem code")).to_have_text(XSS)
    page.screenshot(path=shots / "05-name-as-text.png", full_page=True)
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("document.querySelectorAll('main img').length") == 0
    # A key typed into the sample data (not a variable of the template): listed as text.
    name = f"text-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{stack.url}/v1/templates/{name}", content=make_docx("Hi {{ who }}"),
              headers={"x-api-key": API_KEY, "content-type": "application/octet-stream"}
              ).raise_for_status()
    page.goto(f"{stack.url}/ui/#/t/{name}")
    expect(page.locator("#missing li")).to_have_text(["who"])
    _type_data(page, {"who": XSS, XSS: 1})
    expect(page.locator("#unknown li")).to_have_text([XSS])
    _wait_preview_current(page)
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []


def test_content_security_policy(stack: Stack) -> None:
    for path in ("/ui/", "/ui/app.js", "/ui/style.css"):
        r = httpx.get(stack.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert directives["default-src"] == "'none'"
        assert r.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(stack.url + "/ui/").text
    # No inline script and nothing from another origin.
    assert "<script>" not in page and "http" not in page.replace('href="#/"', "")
    assert httpx.get(stack.url + "/ui", follow_redirects=False).headers["location"] == "ui/"
    assert httpx.get(stack.url + "/ui", follow_redirects=True).url.path == "/ui/"
    assert httpx.get(stack.url + "/ui/axe.min.js").status_code == 404


def test_the_browser_enforces_the_csp(stack: Stack, page: Page) -> None:
    """The header is not only sent but obeyed: an inline script is refused and reported."""
    page.add_init_script(CSP_WATCH)
    page.goto(stack.url + "/ui/")
    expect(page.locator("#list-view")).to_be_visible()  # the page's own module ran
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true'; document.head.append(s); }""")
    page.wait_for_function("window.cspViolations.length > 0")
    assert page.evaluate("window.cspViolations") == ["script-src-elem inline"]
    assert page.evaluate("window.inlineRan") is None


def test_check_module(stack: Stack, page: Page) -> None:
    """check.js, the sample-data check, on its own (it is a pure function)."""
    page.goto(stack.url + "/ui/")
    result = page.evaluate("""async () => {
        const { checkData } = await import('/ui/check.js');
        const tree = {invoice: {items: [{price: null}], no: null}, name: null};
        return [
            checkData(tree, {}),
            checkData(tree, {invoice: {items: [{price: 1}, {}], no: 1, x: 2}, name: {a: 1}}),
            checkData(tree, {invoice: "scalar", name: 1}),
        ];
    }""")
    assert result[0] == {"missing": ["invoice.items", "invoice.no", "name"], "unknown": []}
    assert result[1] == {"missing": ["invoice.items[1].price"], "unknown": ["invoice.x"]}
    assert result[2] == {"missing": [], "unknown": []}


def test_accessibility(stack: Stack, page: Page, axe_source: str, tmp_path: Path) -> None:
    name = f"a11y-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{stack.url}/v1/templates/{name}", content=V1,
              headers={"x-api-key": API_KEY, "content-type": "application/octet-stream"}
              ).raise_for_status()
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    expect(page.locator("#templates tbody tr").first).to_be_visible()
    violations = _axe(page, axe_source)
    page.goto(f"{stack.url}/ui/#/t/{name}")
    _type_data(page, COMPLETE)
    _wait_preview_current(page)
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#compare-result")).to_be_visible()
    violations += _axe(page, axe_source)
    # With a problem shown beside the preview.
    page.locator("#version-file").set_input_files(
        {"name": "broken.docx", "mimeType": "application/octet-stream", "buffer": BROKEN})
    expect(page.locator("#problem .context")).to_be_visible()
    violations += _axe(page, axe_source)
    print(json.dumps(violations, indent=1))  # the minor ones, for whoever reads the log
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)[:4000]


def _axe(page: Page, source: str) -> list[dict[str, object]]:
    # Evaluated over the DevTools protocol, which the page's CSP does not govern:
    # axe-core is the test's, never served by the product.
    page.evaluate(source)
    result: dict[str, list[dict[str, object]]] = page.evaluate(
        "async () => { const r = await axe.run(document); return {passes: r.passes.map(p => p.id),"
        " violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))}; }")
    assert len(result["passes"]) > 10  # axe did look at the page
    return result["violations"]


def test_readme_screenshot(stack: Stack, page: Page, shots: Path) -> None:
    """The README's picture (docs/images/playground.png, `make playground-screenshot`):
    the bundled example invoice with its data, one value left out."""
    name = "invoice"
    httpx.put(f"{stack.url}/v1/templates/{name}", content=(EXAMPLES / "invoice.docx").read_bytes(),
              headers={"x-api-key": API_KEY, "content-type": "application/octet-stream"}
              ).raise_for_status()
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    del data["invoice"]["note"]
    page.goto(stack.url + "/ui/")
    _enter_key(page)
    page.goto(f"{stack.url}/ui/#/t/{name}")
    _type_data(page, data)
    expect(page.locator("#missing li")).to_have_text(["invoice.note"])
    _wait_preview_current(page)
    page.locator("#data").evaluate("e => e.scrollTop = 0")
    page.screenshot(path=shots / "playground.png")
