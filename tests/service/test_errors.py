"""Every problem kind is registered by slug, once, and rebuilt by it."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from gendoc_service import errors


def test_every_kind_is_registered_by_its_slug() -> None:
    assert errors.KINDS["render-time-limit"] is errors.RenderTimeout
    assert errors.KINDS["internal-error"] is errors.Problem
    kinds = [errors.Problem, *errors.Problem.__subclasses__()]
    assert all(errors.KINDS[k.slug] is k for k in kinds)


def test_a_slug_is_taken_once() -> None:
    with pytest.raises(TypeError, match="already"):
        class Again(errors.Problem):
            slug = "bad-request"


def test_rebuild_by_slug_keeps_detail_and_members() -> None:
    problem = errors.rebuild("undefined-variables", "The data lacks a.", {"variables": ["a"]})
    assert isinstance(problem, errors.UndefinedVariables)
    assert problem.body() == {"type": errors.PROBLEM_BASE + "undefined-variables",
                              "title": errors.UndefinedVariables.title, "status": 422,
                              "detail": "The data lacks a.", "variables": ["a"]}
    assert type(errors.rebuild("no-such-slug", "x", {})) is errors.Problem


def test_instance_is_the_request_id_as_a_urn() -> None:
    rid = uuid.uuid4()
    assert errors.instance_uri(str(rid)) == f"urn:uuid:{rid}"
    assert errors.instance_uri("req-123") is None


def test_docs_list_every_problem_type() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "problems.md").read_text()
    listed = set(re.findall(r"`https://gendoc\.io/problems/([a-z-]+)`", docs))
    assert listed == set(errors.KINDS)
