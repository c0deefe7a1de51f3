"""The fidelity table (``docs/sandbox-fidelity.md``) and the sandbox's code agree: every mParticle document the code
cites has its place in the table, every module and test the table names exists, every correction of the
published Events schema and every workspace switch is listed, and every document the table cites is a file of
``mParticle/docs``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from connector_mparticle.sandbox.events_schema import GAPS
from connector_mparticle.sandbox.workspace import WorkspaceSettings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "sandbox-fidelity.md"
SANDBOX = ROOT / "connector_mparticle" / "sandbox"

#: Files of mParticle/docs at commit 1bace44 (October 2023), checked with ``git cat-file -e`` against that commit
#: (``src/pages/<path>/index.md`` for pages). A citation outside this list is a typo or an unchecked source.
VERIFIED_DOCUMENTS = frozenset({
    "developers/dsr-api/v3", "developers/dsr-api/v2", "developers/profile-api", "developers/server/http",
    "developers/server/json-reference", "developers/idsync/http-api", "developers/users", "developers/ca-seeding-api",
    "developers/platform", "developers/credential-management", "developers/data-localization",
    "guides/default-service-limits", "guides/idsync/user-data", "guides/idsync/components",
    "guides/idsync/default-strategy", "guides/idsync/profile-conversion-strategy", "guides/data-subject-requests",
    "guides/data-privacy-controls", "static/downloads/portability-response-sample.zip",
    "static/downloads/identity-swagger.yaml", "static/schema/mparticle.inbound.eventsapi.schema.json",
})
_CITATION = re.compile(r"(?:src/pages/)?((?:developers|guides)/[a-z0-9/_-]*[a-z0-9]"
                       r"|static/[A-Za-z0-9/._-]*[A-Za-z0-9])")
_ROW = re.compile(r"^\| ([DIEPOT]\d+) \|")


def normalised(path: str) -> str:
    return re.sub(r"/index(\.md)?$", "", path)


def citations(text: str) -> set[str]:
    return {normalised(m.group(1)) for m in _CITATION.finditer(text)}


def rows() -> list[list[str]]:
    """The rows of the tables of simulated behaviour: [#, behaviour, source, where, tested in]."""
    out = []
    for line in PAGE.read_text().splitlines():
        if _ROW.match(line):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, line
            out.append(cells)
    return out


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_table_has_its_rows_each_with_an_id_a_source_a_module_and_a_test() -> None:
    found = rows()
    assert len(found) >= 60
    assert len({r[0] for r in found}) == len(found), "row ids are unique"
    for number, behaviour, source, where, tested in found:
        assert behaviour and source and where and tested, number
        assert citations(source) or "OpenDSR" in source or "SDK" in source, f"{number} cites no source"


def test_every_document_the_table_cites_is_a_file_of_mparticles_docs() -> None:
    cited = citations(PAGE.read_text())
    assert cited and cited <= VERIFIED_DOCUMENTS, sorted(cited - VERIFIED_DOCUMENTS)


def test_every_document_the_sandboxs_code_cites_is_in_the_table() -> None:
    in_table = citations(PAGE.read_text())
    for module in sorted(SANDBOX.glob("*.py")):
        for path in citations(module.read_text()):
            assert any(t == path or t.startswith(path + "/") for t in in_table), f"{module.name} cites {path}"


@pytest.mark.parametrize("column", [3, 4], ids=["where", "tested-in"])
def test_every_module_and_test_the_table_names_exists(column: int) -> None:
    for row in rows():
        for name in backticked(row[column]):
            if not name.endswith(".py"):
                continue
            place = SANDBOX / name if column == 3 else ROOT / "tests" / name
            assert place.is_file(), f"{row[0]} names {name}"


def test_every_correction_of_the_published_events_schema_has_its_row() -> None:
    text = PAGE.read_text()
    for gap in GAPS:
        assert f"\n| {gap.where} |" in text, gap.where


def test_every_workspace_switch_is_named() -> None:
    text = PAGE.read_text()
    for name in [f.name for f in dataclasses.fields(WorkspaceSettings) if f.name != "identity"] + [
            "identity.conflicts"]:
        assert f"`{name}`" in text, name


def test_what_is_not_simulated_says_why() -> None:
    section = PAGE.read_text().split("## What the sandbox deliberately does not simulate", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Not sim")
             and not line.startswith("|---")]
    assert len(lines) >= 10
    for line in lines:
        subject, why, _source = (c.strip() for c in line.strip().strip("|").split(" | "))
        assert subject and len(why) > 20, line


def test_the_sandbox_page_and_the_readme_link_the_table() -> None:
    assert "(sandbox-fidelity.md)" in (ROOT / "docs" / "sandbox.md").read_text()
    assert "(docs/sandbox-fidelity.md)" in (ROOT / "README.md").read_text()
