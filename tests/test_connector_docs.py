"""The docs keep up with the code: every manifest key, hook and conformance check is documented, and the OpenDSR
checklist's proofs exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsr_framework.conformance.checks import CHECKS
from dsr_framework.hookspecs import HOOK_NAMES
from dsr_framework.manifest import Manifest
from dsr_framework.validation import framework_schema

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "connector-authors.md").read_text()
CONFORMANCE = (ROOT / "docs" / "conformance.md").read_text()
RECEIPTS = (ROOT / "docs" / "receipts.md").read_text()


def _keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        keys.append(prefix + name)
        if sub.get("type") == "object":
            keys += _keys(sub, f"{prefix}{name}.")
        if sub.get("type") == "array" and "properties" in sub.get("items", {}):
            keys += _keys(sub["items"], f"{prefix}{name}[].")
    return keys


@pytest.mark.parametrize("key", _keys(framework_schema("manifest")))
def test_every_manifest_key_is_in_the_authors_guide(key: str) -> None:
    assert f"| `{key}` |" in GUIDE, f"docs/connector-authors.md does not document the manifest key {key}"


def test_the_guides_minimal_manifest_is_valid() -> None:
    block = re.search(r"<!-- minimal-manifest -->\n```yaml\n(.*?)```", GUIDE, re.S)
    assert block, "the guide has no minimal manifest"
    manifest = Manifest.from_dict(yaml.safe_load(block.group(1)))
    assert manifest.hooks == ("test_connection", "handle_opt_out")


@pytest.mark.parametrize("name", [*HOOK_NAMES, "Result", "ConnectionResult", "OutputFile", "mask_email",
                                  "package data", "absolute"])
def test_the_guide_covers_hooks_models_and_packaging(name: str) -> None:
    assert name in GUIDE


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_every_check_is_in_the_conformance_page(check: str) -> None:
    assert f"| `{check}" in CONFORMANCE, f"docs/conformance.md's table of checks does not list {check}"


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_every_check_is_explained_in_the_authors_guide(check: str) -> None:
    section = GUIDE[GUIDE.index("### What each check proves"):GUIDE.index("### What is watched in every runtime check")]
    assert f"`{check}" in section, f"docs/connector-authors.md does not explain {check}"


CHECKLIST = ("new requests", "request status", "callback receipt", "certificate validation and caching",
             "signature validation on requests", "logging")


def test_the_opendsr_checklist_table_covers_every_item_with_tests_that_exist() -> None:
    section = RECEIPTS[RECEIPTS.index("## OpenDSR controller self-certification"):]
    rows = [line for line in section.splitlines()[:30] if line.startswith("| ") and "`" in line]
    assert [row.split("|")[1].strip().split(":")[0] for row in rows] == list(CHECKLIST)
    for row in rows:
        proofs = row.split("|")[3]
        file = None
        for reference in re.findall(r"`([^`]+)`", proofs):
            path, _, test = reference.partition("::")
            file = ROOT / path if path else file
            assert file is not None and file.exists(), reference
            if test:
                assert re.search(rf"^def {re.escape(test)}\(", file.read_text(), re.M), reference
