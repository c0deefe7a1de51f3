"""The README stays a front door and the docs site stays true: the two commands verbatim, links that resolve, every
test the security model names, and the pages and charts generated from the schema and the saved benchmarks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bench import charts
from dsr_framework import schema_docs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SCHEMA = "connector_mparticle/schemas/credentials.schema.json"

DEMO_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install . && mparticle-dsr demo"
TEST_COMMAND = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && pytest -n 2'

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_the_readme_is_one_screenful_with_both_commands_verbatim() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150, "README.md is over 150 lines: move the detail to a page under docs/"
    for tag, command in (("demo-command", DEMO_COMMAND), ("test-command", TEST_COMMAND)):
        assert f"<!-- {tag} -->\n```bash\n{command}\n```" in text, f"the README lost its {tag}: {command}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda path: path.name)
def test_every_relative_link_points_at_a_file_that_exists(page: Path) -> None:
    for match in LINK.finditer(page.read_text()):
        target = (match.group(1) or match.group(2)).split("#", 1)[0]
        if not target or re.match(r"[a-z]+:", target):
            continue  # an anchor on the same page, or an absolute URL
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_every_page_is_in_the_sites_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = yaml.safe_load(config[config.index("nav:"):])["nav"]

    def listed(entries: list[object]) -> set[str]:
        names: set[str] = set()
        for entry in entries:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                names |= listed(value) if isinstance(value, list) else {str(value)}
        return names

    assert listed(nav) == {page.name for page in PAGES}


def test_the_security_model_names_a_test_for_every_guarantee() -> None:
    text = (DOCS / "security.md").read_text()
    table = text[text.index("| guarantee | proved by |"):text.index("## Against a hostile server")]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    assert len(rows) >= 10
    for row in rows:
        assert TEST_REFERENCE.search(row.split(" | ")[1]), f"a guarantee names no test file::name: {row[:80]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_every_test_a_page_names_exists(page: Path) -> None:
    for path, name in TEST_REFERENCE.findall(page.read_text()):
        source = ROOT / path
        assert source.is_file(), f"{page.name} names {path}, which does not exist"
        assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.M), f"{page.name}: no {path}::{name}"


def test_the_configuration_reference_is_generated_from_the_credentials_schema() -> None:
    schema = json.loads((ROOT / SCHEMA).read_text())
    page = DOCS / "configuration-reference.md"
    assert page.read_text() == schema_docs.render(schema, SCHEMA), (
        f"docs/configuration-reference.md differs from the schema: run "
        f"`{schema_docs.COMMAND.format(schema=SCHEMA)} > docs/configuration-reference.md` and commit the page")


def test_every_setting_in_the_credentials_schema_has_a_description() -> None:
    schema = json.loads((ROOT / SCHEMA).read_text())
    empty = [row for row in schema_docs.rows(schema, schema) if row.rstrip().endswith("|  |")]
    for option in schema_docs.offered_objects(schema):
        empty += [row for row in schema_docs.rows(schema, option) if row.rstrip().endswith("|  |")]
    assert empty == [], "settings without a description (add one to the schema):\n" + "".join(empty)


def test_the_reference_marks_secrets_and_tables_each_kind_of_authentication() -> None:
    schema = {"title": "Demo", "type": "object", "required": ["auth"], "$defs": {
        "basic": {"title": "Basic", "type": "object", "properties": {
            "secret": {"type": "string", "writeOnly": True, "description": "a | b"}}},
        "token": {"title": "Bearer token", "type": "object", "properties": {
            "token": {"type": "string", "x-secret": True, "description": "the token"}}}},
        "properties": {"auth": {"oneOf": [{"$ref": "#/$defs/basic"}, {"$ref": "#/$defs/token"}],
                                "description": "how to sign in"},
                       "mode": {"enum": ["fast", "safe"], "default": "safe", "description": "the mode"}}}
    page = schema_docs.render(schema, "demo.json")
    assert "| `auth` | one of: [Basic](#basic), [Bearer token](#bearer-token) | **required** |" in page
    assert "| `mode` | string | `safe` | `fast`, `safe` | the mode |" in page
    assert "## Basic" in page and "| `secret` | string, **secret** |" in page and "a \\| b" in page
    assert "## Bearer token" in page and "| `token` | string, **secret** |" in page


def test_the_performance_charts_are_drawn_from_the_saved_results() -> None:
    drawn = charts.charts()
    assert sorted(drawn) == sorted(path.name for path in (DOCS / "charts").glob("*.svg"))
    for name, svg in drawn.items():
        assert (DOCS / "charts" / name).read_text() == svg, (
            f"docs/charts/{name} is not drawn from bench/results: run `python -m bench.charts` and commit it")
        assert f"charts/{name}" in (DOCS / "performance.md").read_text(), f"docs/performance.md does not show {name}"


def test_a_chart_follows_its_results(tmp_path: Path) -> None:
    for name in ("throttle", "polling", "download", "hostile_download"):
        figures = json.loads((ROOT / "bench" / "results" / f"{name}.json").read_text())
        if name == "throttle":
            figures["figures"]["rows"][0]["http_429"] = 999
        (tmp_path / f"{name}.json").write_text(json.dumps(figures))
    changed = charts.charts(tmp_path)["throttle.svg"]
    assert "999 HTTP 429" in changed and changed != charts.charts()["throttle.svg"]
