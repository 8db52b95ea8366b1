"""The pure parts: form options, export filter data, pool decisions, the profile."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gendoc_converter import policy
from gendoc_converter.errors import BadForm
from gendoc_converter.options import ConversionOptions, filter_data, parse_options
from gendoc_converter.profile import (
    REGISTRY,
    first_start_done,
    pipe_files,
    product_version,
    registry_xml,
)
from gendoc_converter.settings import ConverterSettings


def test_defaults_match_gotenberg() -> None:
    options, merge = parse_options({})
    assert options == ConversionOptions() and merge is False
    assert filter_data(options) == []


def test_options_are_read_as_gotenberg_names_them() -> None:
    options, merge = parse_options({"landscape": "true", "nativePageRanges": "1-2, 5",
                                    "pdfa": "PDF/A-2b", "pdfua": "true", "merge": "TRUE"})
    assert options == ConversionOptions(landscape=True, page_ranges="1-2, 5", pdfa="PDF/A-2b",
                                        pdfua=True)
    assert merge is True
    data = dict(filter_data(options))
    assert data["PageRange"] == "1-2, 5"
    assert data["SelectPdfVersion"] == 2
    assert data["PDFUACompliance"] is True and data["UseTaggedPDF"] is True


@pytest.mark.parametrize("form", [
    {"nativePageRanges": "1-a"}, {"nativePageRanges": "x"}, {"pdfa": "PDF/A-4z"},
    {"landscape": "maybe"}, {"merge": "2"},
])
def test_invalid_options_are_bad_forms(form: dict[str, str]) -> None:
    with pytest.raises(BadForm):
        parse_options(form)


@pytest.mark.parametrize("ranges", ["1", "1-3", "1-3,5", "2-", "1-2; 4", " 1 - 2 , 7 "])
def test_valid_page_ranges(ranges: str) -> None:
    assert parse_options({"nativePageRanges": ranges})[0].page_ranges == ranges.strip()


def test_recycle_reasons() -> None:
    assert policy.recycle_reason(10, 10, 100.0, 1024) == "max_conversions"
    assert policy.recycle_reason(3, 10, 2000.0, 1024) == "memory"
    assert policy.recycle_reason(3, 10, 2000.0, 0) is None  # 0 disables the memory limit
    assert policy.recycle_reason(3, 10, None, 1024) is None


def test_queue_and_retry_decisions() -> None:
    assert policy.may_wait(0, 1) and not policy.may_wait(1, 1) and not policy.may_wait(0, 0)
    assert policy.retry_after(0, 2, 0.07) == 1
    assert policy.retry_after(39, 2, 0.1) == 2  # 20 conversions per instance of 0.1 s
    assert policy.retry_after(5, 0, 1.0) == 6  # no ready instance counts as one
    assert policy.conversion_budget(30.0, math.inf) == 30.0  # Deadline.never().remaining()
    assert policy.conversion_budget(30.0, 2.5) == 2.5
    assert policy.may_retry(1, math.inf) and policy.may_retry(1, 1.0)
    assert not policy.may_retry(2, 10.0) and not policy.may_retry(1, 0.0)


def test_recycling_after_failures_in_a_row() -> None:
    assert policy.recycle_reason(3, 10, 100.0, 1024, 5, 5) == "failures"
    assert policy.recycle_reason(3, 10, 100.0, 1024, 4, 5) is None
    assert policy.recycle_reason(3, 10, 100.0, 1024, 9, 0) is None  # 0 disables it


@pytest.mark.parametrize(("error", "cause"), [
    # Observed from LibreOffice 7.4 with its temp directory removed under it.
    ("com.sun.star.io.IOException: SfxBaseModel::impl_store <file:///w/scratch/out.pdf> "
     "failed: 0xc10(Error Area:Io Class:Write Code:16)", "instance"),
    ("failed: 0x31d(Error Area:Io Class:Space Code:29)", "instance"),
    ("failed: 0x20d(Error Area:Io Class:NotExists Code:13)", "instance"),
    ("failed: 0x1a(Error Area:Io Class:Format Code:26)", "unsure"),
    ("failed: 0x11b(Error Area:Io Class:Abort Code:27)", "unsure"),
    ("LibreOffice could not load the document", "unsure"),
])
def test_blame_from_libreoffices_error_code(error: str, cause: str) -> None:
    assert policy.blame(error) == cause


def test_registry_is_well_formed_and_locks_macros_and_links_down() -> None:
    root = ET.fromstring(registry_xml())
    ns = "{http://openoffice.org/2001/registry}"
    values = {(item.get(f"{ns}path"), prop.get(f"{ns}name")): prop.findtext("value")
              for item in root for prop in item}
    scripting = "/org.openoffice.Office.Common/Security/Scripting"
    assert values[(scripting, "MacroSecurityLevel")] == "3"
    assert values[(scripting, "DisableMacrosExecution")] == "true"
    assert values[(scripting, "BlockUntrustedRefererLinks")] == "true"
    assert values[("/org.openoffice.Office.Writer/Content/Update", "Link")] == "2"
    assert values[("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled")] == "false"
    assert len(values) == len(REGISTRY)


def test_single_instance_pipe_name_follows_libreoffice() -> None:
    # Observed from a running LibreOffice 7.4 on this profile path.
    files = pipe_files(Path("/dev/shm/t-root/instance-0/profile"), "acc", uid=0)
    assert files == [Path("/tmp/OSL_PIPE_0_SingleOfficeIPC_1821f58311b85ca40b256f07756c792"),
                     Path("/tmp/OSL_PIPE_0_acc")]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENDOC_CONVERTER_POOL_SIZE", "3")
    monkeypatch.setenv("GENDOC_CONVERTER_URL", "http://ignored")  # the service's setting
    settings = ConverterSettings()
    assert settings.pool_size == 3 and settings.port == 3000 and settings.host == "127.0.0.1"
    assert ConverterSettings(pool_size=1).pool_size == 1
    for name, field in ConverterSettings.model_fields.items():
        assert field.description, f"{name} has no description"


def test_the_profile_is_marked_as_started_by_this_version(tmp_path: Path) -> None:
    """So LibreOffice skips its first-start graphics render tests on every instance."""
    program = tmp_path / "program"
    registry = tmp_path / "share" / "registry"
    program.mkdir()
    registry.mkdir(parents=True)
    (program / "soffice.bin").write_text("")
    (registry / "main.xcd").write_text(
        '<oor:data><prop oor:name="ooSetupVersion">\n  <value>7.4</value>\n</prop></oor:data>')
    assert product_version(str(program / "soffice.bin")) == "7.4"
    assert product_version(str(tmp_path / "other" / "program" / "soffice")) is None
    assert first_start_done("7.4") == [
        ("/org.openoffice.Setup/Product", "ooSetupLastVersion", "string", "7.4")]
    assert first_start_done(None) == []
