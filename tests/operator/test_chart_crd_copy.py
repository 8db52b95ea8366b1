"""The chart's CRD is a byte-for-byte copy of the one source (operator/gendoc_operator/crd.yaml)."""

from __future__ import annotations

from conftest import REPO
from gendoc_operator import crd


def test_chart_crd_is_the_operator_crd() -> None:
    chart_copy = REPO / "charts" / "gendoc" / "crds" / "docgenerators.gendoc.io.yaml"
    assert chart_copy.read_bytes() == crd.CRD_PATH.read_bytes(), (
        "charts/gendoc/crds/ drifted from operator/gendoc_operator/crd.yaml: "
        "cp operator/gendoc_operator/crd.yaml charts/gendoc/crds/docgenerators.gendoc.io.yaml"
    )
